"""``dbank.hosting.RedisServer`` with what only tests need: a redis-py client, each new
database emptied before it is handed out, and a failed test (never a skipped one) when
``redis-server`` is missing."""

from __future__ import annotations

from typing import Self

import pytest
import redis

from dbank import hosting


class RedisServer(hosting.RedisServer):
    """A real ``redis-server`` on a free loopback port, as tests use it."""

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port, db=db)

    def start(self) -> Self:
        """Start the server; fails the test when ``redis-server`` is not on PATH."""
        missing = _missing_binary()
        if missing is not None:
            pytest.fail(f"the Redis store tests need redis-server: {missing}", pytrace=False)
        return super().start()

    def new_database(self) -> str:
        """The URL of a database no other caller got, emptied first."""
        url = super().new_database()
        with self.client(int(url.rsplit("/", 1)[1])) as client:
            client.flushdb()
        return url


def _missing_binary() -> str | None:
    """What is wrong when ``redis-server`` is not on PATH, else None."""
    try:
        hosting.redis_server_binary()
    except FileNotFoundError as exc:
        return str(exc)
    return None

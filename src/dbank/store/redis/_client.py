"""The connection to Redis, its Lua scripts, and the one place where redis-py's errors
become dbank's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript

from dbank.ledger import Unavailable
from dbank.store._errors import LeaseLost, StoreConflict
from dbank.store.redis._url import RedisAddress

CONNECT_TIMEOUT = 2.0
COMMAND_TIMEOUT = 10.0
"""Seconds before a command counts as failed; a commit's fsync takes milliseconds."""


def _script_text(name: str) -> str:
    return (resources.files("dbank.store.redis") / "lua" / f"{name}.lua").read_text()


_SCRIPT_TEXTS = {
    name: _script_text(name)
    for name in (
        "account_ops",
        "claim",
        "commit",
        "lease_acquire",
        "lease_release",
        "lease_renew",
        "upgrade",
    )
}
"""Read once per process; each client registers them (EVALSHA, loaded on first use)."""


@dataclass(frozen=True, slots=True)
class Scripts:
    account_ops: AsyncScript
    claim: AsyncScript
    commit: AsyncScript
    lease_acquire: AsyncScript
    lease_release: AsyncScript
    lease_renew: AsyncScript
    upgrade: AsyncScript

    @classmethod
    def register(cls, client: redis.asyncio.Redis) -> Scripts:
        return cls(**{name: client.register_script(text) for name, text in _SCRIPT_TEXTS.items()})


def connect(address: RedisAddress) -> redis.asyncio.Redis:
    """A client that never retries on its own: a commit whose reply was lost must come back
    as a failure, so that the writer reloads and sees whether it was stored."""
    return redis.asyncio.Redis(
        host=address.host,
        port=address.port,
        db=address.db,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=COMMAND_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )


def as_bytes(value: bytes | str) -> bytes:
    """A reply as bytes (this client never decodes replies; redis-py's types allow both)."""
    return value if isinstance(value, bytes) else value.encode()


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """Turn redis-py's errors, and the refusals of our scripts, into dbank's."""
    try:
        yield
    except redis.exceptions.ResponseError as exc:
        message = str(exc)
        if message.startswith("DBANK_CONFLICT"):
            raise StoreConflict(f"redis store could not {action}: {message[15:]}") from exc
        if message.startswith("DBANK_FENCED"):
            raise LeaseLost(f"redis store could not {action}: {message[13:]}") from exc
        raise Unavailable(f"redis store could not {action}: {message}") from exc
    except redis.exceptions.RedisError as exc:
        raise Unavailable(f"redis store could not {action}: {exc}") from exc
    except OSError as exc:
        raise Unavailable(f"redis store could not {action}: {exc}") from exc

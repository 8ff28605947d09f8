"""``redis://HOST:PORT/DB``: where a branch's Redis store is, parsed strictly."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORT = 6379


@dataclass(frozen=True, slots=True)
class RedisAddress:
    host: str
    port: int
    db: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"redis://{host}:{self.port}/{self.db}"


def parse_redis_url(text: str) -> RedisAddress:
    """Parse ``redis://HOST[:PORT][/DB]`` (port 6379 and database 0 by default).

    Raises:
        ValueError: anything else; the message says what is wrong.
    """
    expected = f"expected redis://HOST:PORT/DB, got {text!r}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError(f"{expected}: the port is not a number in 0-65535") from None
    if parts.scheme != "redis":
        raise ValueError(f"{expected}: the scheme must be redis://")
    if not parts.hostname:
        raise ValueError(f"{expected}: no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{expected}: credentials in the URL are not supported")
    if parts.query or parts.fragment:
        raise ValueError(f"{expected}: no query or fragment is allowed")
    db_text = parts.path.strip("/") or "0"
    if not db_text.isdigit():
        raise ValueError(f"{expected}: the database must be a number")
    if port == 0:
        raise ValueError(f"{expected}: port 0 is not a server's port")
    return RedisAddress(parts.hostname, port or DEFAULT_PORT, int(db_text))

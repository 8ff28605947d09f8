"""Whether a Redis server keeps every acknowledged write (design §7).

A Redis store is durable only with an append-only file fsynced before every reply, no
eviction, and no failover to a replica that may lag: anything less can lose ops a branch
has acknowledged and sent to other branches, which breaks I3 and with it the safety of
the whole bank, not only of this branch.
"""

from __future__ import annotations

from typing import Any

REQUIRED_SETTINGS = {
    "appendonly": "yes",
    "appendfsync": "always",
    "no-appendfsync-on-rewrite": "no",
    "maxmemory-policy": "noeviction",
}
"""Each setting that keeps acknowledged writes, with the value it must have."""


async def durability_problems(client: Any) -> list[str]:
    """What, in the server's running configuration, can lose acknowledged writes.

    ``client`` is a ``redis.asyncio.Redis``. A server that does not let its settings be read
    is a problem too: nothing vouches for it. Failover cannot be seen from here: only a
    server that is itself a replica is caught.
    """
    import redis.exceptions

    try:
        reply = await client.execute_command("CONFIG", "GET", *REQUIRED_SETTINGS)
        role = (await client.info("replication")).get("role", "master")
    except redis.exceptions.ResponseError as exc:
        return [f"its settings cannot be read (CONFIG GET refused: {exc})"]
    found = _as_dict(reply)
    problems = [
        f"{name} is {found.get(name, 'unset')!r}, must be {wanted!r}"
        for name, wanted in REQUIRED_SETTINGS.items()
        if found.get(name) != wanted
    ]
    if role != "master":
        problems.append(f"it is a {role}, not a primary")
    return problems


def _as_dict(reply: Any) -> dict[str, str]:
    if isinstance(reply, dict):
        items = list(reply.items())
    else:
        items = list(zip(reply[::2], reply[1::2], strict=True))
    return {_text(k): _text(v) for k, v in items}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

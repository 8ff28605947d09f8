"""Claiming a whole Redis database for one run of a bank.

Branches that keep their state in Redis keep it under their branch's keys
(``dbank:{bN}:``), which are the same in every run, so a run needs a database of its own:
state left by an earlier run of the same file would carry on under the same genesis op and
change the answers, and two runs at once would share their branches. ``claim_database``
checks that the Redis keeps acknowledged writes (as each branch does again) and claims the
database: it sets ``RUN_KEY`` unless it exists (``SET NX``: of two runs started at once,
one wins), then checks that this key is the only one. The state and the key stay after the
run, like a data directory, for anyone to look at; the next run needs another database, or
this one emptied.
"""

from __future__ import annotations

from redis.exceptions import RedisError

from dbank.store._errors import StoreUnusable, UnsafeSettings
from dbank.store.redis._client import connect
from dbank.store.redis._safety import durability_problems
from dbank.store.redis._url import RedisAddress

RUN_KEY = "dbank:run"
"""Says which run a Redis database belongs to; outside every branch's keys."""


async def claim_database(address: RedisAddress, *, holder: str, unsafe: bool = False) -> None:
    """Make the empty database at ``address`` belong to the run ``holder`` describes.

    Raises:
        UnsafeSettings: its settings can lose acknowledged writes (unless ``unsafe``).
        StoreUnusable: it cannot be reached, or holds another run's state or any key.
    """
    client = connect(address)
    flush = f"redis-cli -h {address.host} -p {address.port} -n {address.db} FLUSHDB"
    emptied = f"give an empty database, or empty this one ({flush})"
    try:
        problems = await durability_problems(client)
        if problems and not unsafe:
            raise UnsafeSettings(
                f"the Redis at {address} can lose acknowledged writes: {'; '.join(problems)}."
                " A branch that loses ops it has acknowledged endangers the whole bank"
            )
        if not await client.set(RUN_KEY, holder, nx=True):
            earlier = await client.get(RUN_KEY)
            other = earlier.decode() if isinstance(earlier, bytes) else "another dbank run"
            raise StoreUnusable(f"{address} holds the state of {other}; {emptied}")
        others = int(await client.dbsize()) - 1
        if others:
            await client.delete(RUN_KEY)
            keys = "1 key" if others == 1 else f"{others} keys"
            raise StoreUnusable(
                f"{address} is not empty ({keys}): a run keeps its branches' state in a"
                f" database of its own; {emptied}"
            )
    except (RedisError, OSError) as exc:
        raise StoreUnusable(f"cannot use {address}: {exc}") from None
    finally:
        await client.aclose()

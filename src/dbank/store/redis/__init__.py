"""The Redis backend: a branch's state under its own keys, each change one Lua script.

Its key schema is in ``_keys``, its scripts in ``lua/``; several processes may serve one
branch from one Redis (the lease in ``_lease``, commit notices in ``_notices``); every
stored value carries its row's digest (``_rows``, ``_verify``).
"""

from dbank.store.redis._claim import RUN_KEY, claim_database
from dbank.store.redis._keys import SCHEMA_VERSION, RedisKeys
from dbank.store.redis._lease import RedisLease
from dbank.store.redis._rows import DIGEST_WIDTH
from dbank.store.redis._safety import REQUIRED_SETTINGS, durability_problems
from dbank.store.redis._store import RedisStore
from dbank.store.redis._url import RedisAddress, parse_redis_url

__all__ = [
    "DIGEST_WIDTH",
    "REQUIRED_SETTINGS",
    "RUN_KEY",
    "SCHEMA_VERSION",
    "RedisAddress",
    "RedisKeys",
    "RedisLease",
    "RedisStore",
    "claim_database",
    "durability_problems",
    "parse_redis_url",
]

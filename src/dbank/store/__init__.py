"""Durable storage of a branch: one ``Store`` protocol, a backend per module, one way in.

``open_store(spec)`` is the one place a store is chosen and opened: a SQLite file (the
default), a Redis (``dbank.store.redis``), or memory (tests). A store that several
processes share is also a ``SharedStore`` (a replication lease, commit notices).
"""

from dbank.store._base import Commit, Snapshot, Store
from dbank.store._errors import (
    LeaseLost,
    StoreConflict,
    StoreCorrupt,
    StoreUnusable,
    UnsafeSettings,
)
from dbank.store._integrity import Verification, row_digest
from dbank.store._memory import MemoryStore
from dbank.store._open import StoreSpec, open_store, remember_branch, verify_store
from dbank.store._shared import Lease, SharedStore
from dbank.store._sqlite import SCHEMA_VERSION as SQLITE_SCHEMA_VERSION
from dbank.store._sqlite import SqliteStore
from dbank.store.redis import RedisAddress, RedisStore, claim_database, parse_redis_url

__all__ = [
    "SQLITE_SCHEMA_VERSION",
    "Commit",
    "Lease",
    "LeaseLost",
    "MemoryStore",
    "RedisAddress",
    "RedisStore",
    "SharedStore",
    "Snapshot",
    "SqliteStore",
    "Store",
    "StoreConflict",
    "StoreCorrupt",
    "StoreSpec",
    "StoreUnusable",
    "UnsafeSettings",
    "Verification",
    "claim_database",
    "open_store",
    "parse_redis_url",
    "remember_branch",
    "row_digest",
    "verify_store",
]

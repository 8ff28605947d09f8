"""Durable storage of a branch: one ``Store`` protocol, a backend per module."""

from dbank.store._base import Commit, Snapshot, Store
from dbank.store._errors import LeaseLost, StoreConflict, StoreUnusable, UnsafeSettings
from dbank.store._memory import MemoryStore
from dbank.store._redis import RedisStore
from dbank.store._redis_client import connect as connect_redis
from dbank.store._redis_lease import RedisLease
from dbank.store._redis_safety import durability_problems
from dbank.store._redis_url import RedisAddress, parse_redis_url
from dbank.store._sqlite import SqliteStore

__all__ = [
    "Commit",
    "LeaseLost",
    "MemoryStore",
    "RedisAddress",
    "RedisLease",
    "RedisStore",
    "Snapshot",
    "SqliteStore",
    "Store",
    "StoreConflict",
    "StoreUnusable",
    "UnsafeSettings",
    "connect_redis",
    "durability_problems",
    "parse_redis_url",
]

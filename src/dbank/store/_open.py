"""The one place a branch's store is chosen and opened."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dbank.store._base import Store
from dbank.store._memory import MemoryStore
from dbank.store._sqlite import SqliteStore
from dbank.store.redis import RedisAddress, RedisStore


@dataclass(frozen=True, slots=True)
class StoreSpec:
    """Which store a branch keeps its state in.

    Attributes:
        branch_id: the branch whose state it is (a store refuses another branch's data).
        path: the SQLite file, if the state is kept in one.
        redis: the Redis that keeps the state instead (each branch under its own keys).
        unsafe_redis: use that Redis even if its settings can lose acknowledged writes.
        replicated: the bank has other branches, so a shared store takes the replication
            lease when it is free (a bank of one branch needs none).

    With neither ``path`` nor ``redis`` the state is kept in memory: tests only, nothing
    survives the process.
    """

    branch_id: int
    path: Path | None = None
    redis: RedisAddress | None = None
    unsafe_redis: bool = False
    replicated: bool = False


async def open_store(spec: StoreSpec) -> Store:
    """Open the store ``spec`` names, ready for ``load``.

    Raises:
        StoreUnusable: the store cannot be opened or holds another branch's data; a Redis
            cannot be reached, or (``UnsafeSettings``) can lose acknowledged writes and
            ``unsafe_redis`` is not set.
    """
    if spec.redis is not None:
        return await _open_redis(spec, spec.redis)
    if spec.path is not None:
        return await SqliteStore.open(spec.path, branch_id=spec.branch_id)
    return MemoryStore()


async def _open_redis(spec: StoreSpec, address: RedisAddress) -> RedisStore:
    store = await RedisStore.open(address, branch_id=spec.branch_id, unsafe=spec.unsafe_redis)
    try:
        if spec.replicated:
            # Held when free: several processes may serve one branch, and the holder
            # alone runs the links.
            await store.lease.acquire()
    except BaseException:
        await store.close()
        raise
    return store

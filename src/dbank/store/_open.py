"""The one place a branch's store is chosen and opened, and checked before it serves."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from dbank.errors import Internal, Unavailable
from dbank.store._base import Store
from dbank.store._errors import StoreCorrupt, StoreUnusable
from dbank.store._integrity import Verification
from dbank.store._marker import check_marker, read_marker, remember
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


async def open_store(spec: StoreSpec, *, check: bool = True) -> Store:
    """Open the store ``spec`` names, ready for ``load``; with ``check``, first verify
    every stored row against its digest and the version vector against the ops
    (``Store.verify`` without replay; design §7.3).

    A SQLite file is created only in a directory that has no marker of a branch
    (``_marker``); where one is, the file must be there and hold the branch.

    Raises:
        StoreUnusable: the store cannot be opened or holds another branch's data (or the
            directory's marker names another branch); a Redis cannot be reached, or
            (``UnsafeSettings``) can lose acknowledged writes and ``unsafe_redis`` is not
            set.
        StoreCorrupt: a stored row is not what was written, or the directory held the
            branch's store and it is gone or empty. The message is one line: the store,
            the first bad row, and how many more there are.
    """
    store: Store
    if spec.redis is not None:
        store = await _open_redis(spec, spec.redis)
    elif spec.path is not None:
        marker = read_marker(spec.path)
        if marker is not None:
            check_marker(marker, spec.path, spec.branch_id)
        store = await SqliteStore.open(spec.path, branch_id=spec.branch_id, create=marker is None)
    else:
        return MemoryStore()
    if check:
        try:
            found = await store.verify()
        except BaseException:
            await store.close()
            raise
        if not found.ok:
            await store.close()
            raise StoreCorrupt(found.summary())
    return store


async def verify_store(spec: StoreSpec, *, replay: bool = True) -> Verification:
    """Check the store ``spec`` names offline (``dbank verify``): everything the start-up
    check does, and with ``replay`` the state and history index against the ops. A store
    that is missing or empty where the directory's marker says it held the branch is a
    problem found, as is a file SQLite cannot read, or a Redis without the branch's keys
    (which are not claimed). A Redis is checked whatever its settings. Opening an older
    SQLite file or older Redis keys upgrades them, as a branch would.

    Raises:
        StoreUnusable: the store cannot be reached, or holds another branch's data.
    """
    store: Store
    if spec.redis is not None:
        try:
            store = await RedisStore.open(
                spec.redis, branch_id=spec.branch_id, unsafe=True, create=False
            )
        except StoreCorrupt as exc:
            return _unreadable(f"{spec.redis}", exc.message)
    elif spec.path is not None:
        marker = read_marker(spec.path)
        if marker is not None:
            check_marker(marker, spec.path, spec.branch_id)
        try:
            store = await SqliteStore.open(spec.path, branch_id=spec.branch_id, create=False)
        except (StoreCorrupt, Internal) as exc:
            return _unreadable(str(spec.path), exc.message)
        except StoreUnusable:
            raise
        except Unavailable as exc:  # SQLite cannot read the file: not a database
            return _unreadable(str(spec.path), exc.message)
    else:
        store = MemoryStore()
    try:
        return await store.verify(replay=replay)
    finally:
        await store.close()


def _unreadable(where: str, why: str) -> Verification:
    found = Verification(where)
    found.problem(why)
    return found


async def remember_branch(spec: StoreSpec, genesis_digest: str) -> None:
    """Leave the marker of branch ``spec.branch_id`` of the bank with ``genesis_digest``
    beside its SQLite file (durably, once), so that a lost or emptied file is refused
    later instead of starting a new bank; a store in Redis or memory has none.

    Raises:
        StoreUnusable: the marker there names another branch, or cannot be written.
        Unavailable: ``GENESIS_MISMATCH``, the marker names another bank's genesis.
    """
    if spec.redis is None and spec.path is not None:
        await asyncio.to_thread(remember, spec.path, spec.branch_id, genesis_digest)


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

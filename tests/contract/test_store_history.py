"""The contract of ``Store.read_account_ops`` and of interest postings, for every backend,
and the upgrade of older SQLite files, whose history index and net credits are derived
from their ops.

Parametrized over the in-memory twin, SQLite (a real file per test) and Redis (a real
redis-server, a database per test).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dbank.ledger import (
    AccountType,
    Deposit,
    Grant,
    Interest,
    InterestPosting,
    Internal,
    LedgerState,
    Op,
    OpBody,
    OpenAccount,
    OpId,
    Transfer,
    VersionVector,
    Withdrawal,
    history_accounts,
)
from dbank.ledger.history import day_position, position
from dbank.store import SQLITE_SCHEMA_VERSION as SCHEMA_VERSION
from dbank.store import Commit, MemoryStore, RedisStore, SqliteStore, Store


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    made: Store
    if request.param == "memory":
        made = MemoryStore()
    elif request.param == "sqlite":
        made = await SqliteStore.open(tmp_path / "branch.sqlite3", branch_id=1)
    else:
        made = await RedisStore.open(request.getfixturevalue("redis_url"), branch_id=1)
    yield made
    await made.close()


class Bank:
    """Ops of two origins, made and applied the way replicas do, committed one by one."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.state = LedgerState()
        self.ops: list[Op] = []

    async def add(self, origin: int, body: OpBody, hlc: int) -> Op:
        seq = self.state.applied.get(origin, 0) + 1
        op = Op(OpId(origin, seq), self.state.version_vector(), hlc, f"r{hlc}", "USD", body)
        overlay = self.state.overlay()
        overlay.apply(op)
        await self.store.commit(Commit([op], overlay.delta(), []))
        self.state.absorb(overlay)
        self.ops.append(op)
        return op

    def history(self, account_id: str) -> list[Op]:
        found = [op for op in self.ops if account_id in history_accounts(op)]
        return sorted(found, key=position)


async def _bank(store: Store) -> Bank:
    bank = Bank(store)
    await bank.add(1, OpenAccount("a", AccountType.SAVINGS, "USD", "o"), 100)
    await bank.add(1, OpenAccount("b", AccountType.CHECKING, "USD", "o"), 101)
    # Two origins with interleaved clocks: history order is (hlc, origin, seq), not seq.
    for n in range(30):
        await bank.add(2 if n % 3 else 1, Deposit("a", n + 1), 1_000 - n * 10)
    await bank.add(1, Transfer("a", "b", 5), 2_000)
    await bank.add(1, Grant("a", 3, 2), 2_001)
    await bank.add(2, Withdrawal("a", 1), 2_000)  # same hlc as the transfer: origin decides
    await bank.add(1, Interest("a", 2, dt.date(1970, 1, 1), "1", 4), 2_002)
    return bank


async def _all(store: Store, account: str, snapshot: VersionVector, size: int) -> list[Op]:
    found: list[Op] = []
    after = None
    while True:
        page = await store.read_account_ops(account, after=after, snapshot=snapshot, limit=size)
        found += page
        if len(page) < size:
            return found
        after = position(page[-1])


async def test_history_is_every_balance_op_of_the_account_in_hlc_order(store: Store) -> None:
    bank = await _bank(store)
    vector = bank.state.version_vector()
    for account in ("a", "b"):
        expected = bank.history(account)
        got = await store.read_account_ops(account, after=None, snapshot=vector, limit=1000)
        assert got == expected
        for size in (1, 7, 36):
            assert await _all(store, account, vector, size) == expected
    assert not any(isinstance(op.body, Grant) for op in bank.history("a"))
    assert await store.read_account_ops("nobody", after=None, snapshot=vector, limit=10) == []


async def test_ops_outside_the_snapshot_are_skipped_not_counted(store: Store) -> None:
    bank = await _bank(store)
    snapshot = VersionVector({1: 5, 2: 3})
    covered = [op for op in bank.history("a") if op.id.seq <= snapshot[op.id.origin]]
    assert len(covered) < len(bank.history("a"))
    assert await _all(store, "a", snapshot, 2) == covered
    only_one = VersionVector({1: 50})
    assert all(op.id.origin == 1 for op in await _all(store, "a", only_one, 4))
    assert await store.read_account_ops("a", after=None, snapshot=VersionVector(), limit=5) == []


async def test_pages_do_not_change_as_writes_go_on(store: Store) -> None:
    bank = await _bank(store)
    snapshot = bank.state.version_vector()
    first = await store.read_account_ops("a", after=None, snapshot=snapshot, limit=10)
    # Later ops, some of them earlier in HLC order than the page's end.
    for n in range(5):
        await bank.add(2, Deposit("a", 1), 150 + n)
    rest = await _all_after(store, position(first[-1]), snapshot)
    assert first + rest == [op for op in bank.history("a") if op.id.seq <= snapshot[op.id.origin]]


async def _all_after(
    store: Store, after: tuple[int, int, int], snapshot: VersionVector
) -> list[Op]:
    return await store.read_account_ops("a", after=after, snapshot=snapshot, limit=10_000)


async def test_a_position_need_not_be_an_ops(store: Store) -> None:
    bank = await _bank(store)
    vector = bank.state.version_vector()
    start = await store.read_account_ops("a", after=(2_000, -1, -1), snapshot=vector, limit=100)
    assert start == [op for op in bank.history("a") if op.hlc >= 2_000]
    # A whole day after the epoch: nothing in this bank is that late.
    late = day_position(dt.date(1970, 1, 2))
    assert await store.read_account_ops("a", after=late, snapshot=vector, limit=100) == []


async def test_interest_postings_are_kept_and_loaded(store: Store) -> None:
    bank = await _bank(store)
    interest = bank.ops[-1]
    snapshot = await store.load()
    assert snapshot.state.postings == {
        "a": InterestPosting(dt.date(1970, 1, 1), interest.id, 2, "1", 4)
    }
    later = await bank.add(1, Interest("a", 0, dt.date(1970, 1, 3), "0", 9), 3_000)
    assert (await store.load()).state.postings["a"].op_id == later.id


def _as_of_version(path: Path, version: int) -> None:
    """Make the SQLite file at ``path`` look like one of an older schema ``version``: no
    net credits (before 3), no history rows (before 2), no digests (before 4)."""
    with sqlite3.connect(path) as db:
        for table in ("ops", "accounts", "rights", "applied", "outcomes", "postings"):
            db.execute(f"UPDATE {table} SET digest = ''")
        if version < 3:
            db.execute("DROP TABLE credits")
        if version < 2:
            db.execute("DELETE FROM history")
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(version),))
    db.close()


def _schema(path: Path) -> str:
    with sqlite3.connect(path) as db:
        (version,) = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    db.close()
    return str(version)


@pytest.mark.parametrize("version", [1, 2, 3])
async def test_an_older_sqlite_file_is_upgraded_from_its_ops(tmp_path: Path, version: int) -> None:
    path = tmp_path / "branch.sqlite3"
    store = await SqliteStore.open(path, branch_id=1)
    bank = await _bank(store)
    await store.close()
    _as_of_version(path, version)
    store = await SqliteStore.open(path, branch_id=1)
    try:
        vector = bank.state.version_vector()
        assert await _all(store, "a", vector, 1000) == bank.history("a")
        assert (await store.load()).state.credits == bank.state.credits
        assert (await store.verify(replay=True)).ok  # every row has its digest now
    finally:
        await store.close()
    assert _schema(path) == str(SCHEMA_VERSION)


async def test_an_upgrade_that_fails_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "branch.sqlite3"
    store = await SqliteStore.open(path, branch_id=1)
    await _bank(store)
    await store.close()
    _as_of_version(path, 1)
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO ops (origin, seq, hlc, data, digest) VALUES (9, 1, 1, x'00', '')")
    db.close()
    with pytest.raises(Internal, match="undecodable op"):
        await SqliteStore.open(path, branch_id=1)
    assert _schema(path) == "1"
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM history").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM credits").fetchone() == (0,)
    db.close()

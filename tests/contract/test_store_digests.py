"""Stores that cannot lie (design §7.3): every row carries its digest, checked on read, at
start (``open_store``) and by ``Store.verify``; a data directory remembers its branch.

Every backend keeps a sound store sound; SQLite files and Redis keys are then changed
behind the store's back, a byte at a time, and each change must be found, naming its row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis

from dbank.ledger import (
    AccountType,
    Deposit,
    IdempotencyKey,
    LedgerState,
    Op,
    OpBody,
    OpenAccount,
    OpId,
    Outcome,
    Transfer,
    Unavailable,
    VersionVector,
)
from dbank.store import (
    Commit,
    MemoryStore,
    RedisStore,
    SqliteStore,
    Store,
    StoreCorrupt,
    StoreSpec,
    StoreUnusable,
    open_store,
    parse_redis_url,
    remember_branch,
    row_digest,
    verify_store,
)
from dbank.store.redis import RedisKeys

BRANCH = 1


class _Bank:
    """Ops of branch 1 committed one by one, as the writer would."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.state = LedgerState()

    async def add(self, body: OpBody, key: IdempotencyKey) -> Op:
        seq = self.state.applied.get(BRANCH, 0) + 1
        op = Op(OpId(BRANCH, seq), VersionVector(self.state.applied), seq, key[1], "USD", body)
        overlay = self.state.overlay()
        overlay.apply(op)
        await self.store.commit(Commit([op], overlay.delta(), [(key, Outcome("fp", op.id))]))
        self.state.absorb(overlay)
        return op


async def _fill(store: Store) -> _Bank:
    bank = _Bank(store)
    await bank.add(OpenAccount("a", AccountType.CHECKING, "USD", "o"), ("a", "r1"))
    await bank.add(OpenAccount("b", AccountType.CHECKING, "USD", "o"), ("b", "r2"))
    await bank.add(Deposit("a", 10_100), ("a", "r3"))
    await bank.add(Transfer("a", "b", 100), ("a", "r4"))
    return bank


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    made: Store
    if request.param == "memory":
        made = MemoryStore()
    elif request.param == "sqlite":
        made = await SqliteStore.open(tmp_path / "branch-1.sqlite3", branch_id=BRANCH)
    else:
        made = await RedisStore.open(request.getfixturevalue("redis_url"), branch_id=BRANCH)
    yield made
    await made.close()


async def test_a_sound_store_verifies_with_and_without_replay(store: Store) -> None:
    await _fill(store)
    quick = await store.verify()
    assert quick.ok, quick.problems
    assert quick.rows["ops"] == 4
    full = await store.verify(replay=True)
    assert full.ok, full.problems
    assert full.replayed == 4


# SQLite, changed in place ----------------------------------------------------------------


def _sql(path: Path, statement: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute(statement)
    db.close()


def _flip_last_digit(column: str) -> str:
    """SQL that changes the last character of a text or blob ``column`` ('0'/'1' swap a
    digit: 10100 becomes 10101), keeping its type."""
    text = f"CAST({column} AS TEXT)"
    swapped = f"CASE substr({text}, -1) WHEN '0' THEN '1' ELSE '0' END"
    return f"substr({text}, 1, length({text}) - 1) || {swapped}"


SQLITE_CHANGES = {
    # A deposit's amount in its op's bytes: 10100 -> 10106-like, still valid JSON.
    "op": (
        "UPDATE ops SET data = CAST(replace(CAST(data AS TEXT), '10100', '10106') AS BLOB)"
        " WHERE seq = 3",
        "ops row origin=1, seq=3",
    ),
    "state": ("UPDATE rights SET amount = amount + 6 WHERE account_id = 'a'", "rights row"),
    "outcome": (
        "UPDATE outcomes SET data = CAST(replace(CAST(data AS TEXT), 'fp', 'fq') AS BLOB)"
        " WHERE request_id = 'r4'",
        "outcomes row scope='a', request_id='r4'",
    ),
}


@pytest.mark.parametrize("what", sorted(SQLITE_CHANGES))
async def test_a_changed_sqlite_row_is_found_at_start_on_read_and_by_verify(
    tmp_path: Path, what: str
) -> None:
    path = tmp_path / "branch-1.sqlite3"
    store = await SqliteStore.open(path, branch_id=BRANCH)
    await _fill(store)
    await store.close()
    statement, row = SQLITE_CHANGES[what]
    _sql(path, statement)

    with pytest.raises(StoreCorrupt, match=row) as refused:
        await open_store(StoreSpec(BRANCH, path=path))
    assert "\n" not in refused.value.message
    found = await verify_store(StoreSpec(BRANCH, path=path))
    assert not found.ok
    assert any(row in problem for problem in found.problems), found.problems

    store = await SqliteStore.open(path, branch_id=BRANCH)
    await _each_read_refuses(store, what, row)


async def test_a_state_row_rewritten_with_a_matching_digest_is_found_by_replay(
    tmp_path: Path,
) -> None:
    """A store whose rows and digests agree can still lie about the state: only replaying
    the ops finds it."""
    path = tmp_path / "branch-1.sqlite3"
    store = await SqliteStore.open(path, branch_id=BRANCH)
    await _fill(store)
    digest = row_digest("rights", "a", BRANCH, 10_006)  # what a careful forger would write
    await store.close()
    _sql(path, f"UPDATE rights SET amount = 10006, digest = '{digest}' WHERE account_id = 'a'")
    store = await SqliteStore.open(path, branch_id=BRANCH)
    try:
        assert (await store.verify()).ok
        found = await store.verify(replay=True)
        assert found.problems == [
            "rights row account_id='a', branch=1: stored 10006, the ops give 10000"
        ]
    finally:
        await store.close()


async def test_a_deleted_op_is_found_against_the_version_vector(tmp_path: Path) -> None:
    path = tmp_path / "branch-1.sqlite3"
    store = await SqliteStore.open(path, branch_id=BRANCH)
    await _fill(store)
    await store.close()
    _sql(path, "DELETE FROM ops WHERE seq = 4")
    with pytest.raises(StoreCorrupt, match="applied row origin=1: the version vector says 4"):
        await open_store(StoreSpec(BRANCH, path=path))


# Redis, changed behind the store's back -----------------------------------------------------


def _raw(url: str) -> redis.Redis:
    address = parse_redis_url(url)
    return redis.Redis(host=address.host, port=address.port, db=address.db)


def _replace_in(raw: redis.Redis, key: str, field: str, old: bytes, new: bytes) -> None:
    value = raw.hget(key, field)
    assert value is not None
    assert old in value
    raw.hset(key, field, value.replace(old, new))


REDIS_CHANGES: dict[str, tuple[Callable[[redis.Redis, RedisKeys], None], str]] = {
    "op": (
        lambda raw, keys: raw.lset(
            keys.ops(BRANCH), 2, raw.lindex(keys.ops(BRANCH), 2).replace(b"10100", b"10106")
        ),
        "ops row origin=1, seq=3",
    ),
    "state": (
        lambda raw, keys: _replace_in(raw, keys.rights, f"a {BRANCH}", b"10000", b"10006"),
        "rights row account_id='a', branch=1",
    ),
    "outcome": (
        lambda raw, keys: _replace_in(raw, keys.outcomes, "a\0r4", b"fp", b"fq"),
        "outcomes row scope='a', request_id='r4'",
    ),
}


@pytest.mark.parametrize("what", sorted(REDIS_CHANGES))
async def test_a_changed_redis_value_is_found_at_start_on_read_and_by_verify(
    redis_url: str, what: str
) -> None:
    store = await RedisStore.open(redis_url, branch_id=BRANCH)
    await _fill(store)
    await store.close()
    change, row = REDIS_CHANGES[what]
    with _raw(redis_url) as raw:
        change(raw, RedisKeys.of_branch(BRANCH))
    spec = StoreSpec(BRANCH, redis=parse_redis_url(redis_url))
    with pytest.raises(StoreCorrupt, match=row):
        await open_store(spec)
    found = await verify_store(spec)
    assert any(row in problem for problem in found.problems), found.problems
    store = await RedisStore.open(redis_url, branch_id=BRANCH)
    await _each_read_refuses(store, what, row)


# The data directory's marker --------------------------------------------------------------


async def _held(tmp_path: Path, genesis: str = "g1") -> StoreSpec:
    """A data directory that held branch 1's store, with its marker."""
    spec = StoreSpec(BRANCH, path=tmp_path / "branch-1.sqlite3")
    store = await open_store(spec)
    await remember_branch(spec, genesis)
    await _fill(store)
    await store.close()
    return spec


async def test_a_new_directory_gets_a_marker(tmp_path: Path) -> None:
    spec = await _held(tmp_path)
    marker = (tmp_path / "branch-1.json").read_text()
    assert '"branch_id": 1' in marker
    assert '"genesis_digest": "g1"' in marker
    store = await open_store(spec)  # the same branch and bank: opened as before
    await remember_branch(spec, "g1")
    await store.close()


@pytest.mark.parametrize("how", ["zero-length", "missing"])
async def test_a_store_gone_from_a_directory_that_held_a_branch_is_refused(
    tmp_path: Path, how: str
) -> None:
    spec = await _held(tmp_path)
    assert spec.path is not None
    _lose(spec.path, how)
    with pytest.raises(StoreCorrupt, match="held branch 1"):
        await open_store(spec)
    assert how == "missing" or spec.path.stat().st_size == 0  # nothing was created
    assert how == "zero-length" or not spec.path.exists()
    assert not (await verify_store(spec)).ok


def _lose(path: Path, how: str) -> None:
    for leftover in path.parent.glob(f"{path.name}-*"):  # -wal, -shm
        leftover.unlink()
    if how == "missing":
        path.unlink()
    else:
        path.write_bytes(b"")


async def test_a_marker_of_another_branch_or_bank_is_refused(tmp_path: Path) -> None:
    spec = await _held(tmp_path)
    store = await open_store(spec)
    with pytest.raises(Unavailable, match="genesis digest g1") as refused:
        await remember_branch(spec, "g2")
    assert refused.value.reason == "GENESIS_MISMATCH"
    await store.close()
    (tmp_path / "branch-1.json").rename(tmp_path / "branch-2.json")
    other = StoreSpec(2, path=tmp_path / "branch-2.sqlite3")
    (tmp_path / "branch-1.sqlite3").rename(tmp_path / "branch-2.sqlite3")
    with pytest.raises(StoreUnusable, match="held branch 1's store, not branch 2's"):
        await open_store(other)


async def test_verify_writes_nothing_to_a_redis_without_the_branch(redis_url: str) -> None:
    found = await verify_store(StoreSpec(BRANCH, redis=parse_redis_url(redis_url)))
    assert found.problems == [
        f"{parse_redis_url(redis_url)} key prefix 'dbank:{{b1}}:': no keys of branch 1"
    ]
    with _raw(redis_url) as raw:
        assert raw.dbsize() == 0


async def _each_read_refuses(store: Store, what: str, row: str) -> None:
    """The read of the changed row (``what``: op, state or outcome) raises
    ``StoreCorrupt`` naming it; the store is closed after."""
    try:
        read = {
            "op": lambda: store.read_ops(BRANCH, 0, 10),
            "state": store.load,
            "outcome": lambda: store.get_outcomes([("a", "r4")]),
        }[what]
        with pytest.raises(StoreCorrupt, match=row):
            await read()
    finally:
        await store.close()

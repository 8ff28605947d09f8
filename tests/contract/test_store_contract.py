"""One contract for every Store backend: what each method promises, checked the same way.

Parametrized over the in-memory twin, SQLite (a real file per test) and Redis (a real
redis-server, a database per test).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from dbank.branch import Writer
from dbank.ledger import (
    AccountType,
    Deposit,
    DepositCommand,
    Grant,
    HybridLogicalClock,
    IdempotencyKey,
    Interest,
    LedgerState,
    Op,
    OpBody,
    OpenAccount,
    OpenAccountCommand,
    OpId,
    Outcome,
    Transfer,
    VersionVector,
    Withdrawal,
    credit_limit,
    genesis_op,
)
from dbank.money import MAX_AMOUNT
from dbank.store import Commit, MemoryStore, RedisStore, SqliteStore, Store

BRANCH = 1


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    made: Store
    if request.param == "memory":
        made = MemoryStore()
    elif request.param == "sqlite":
        made = await SqliteStore.open(tmp_path / "branch.sqlite3", branch_id=BRANCH)
    else:
        url = request.getfixturevalue("redis_url")
        made = await RedisStore.open(url, branch_id=BRANCH)
    yield made
    await made.close()


def _open_op(seq: int, account_id: str) -> Op:
    return Op(
        OpId(BRANCH, seq),
        VersionVector({BRANCH: seq - 1}),
        seq,
        f"r{seq}",
        "USD",
        OpenAccount(account_id, AccountType.CHECKING, "USD", "o"),
    )


def _commit_of(state: LedgerState, ops: list[Op], key: IdempotencyKey) -> Commit:
    overlay = state.overlay()
    for op in ops:
        overlay.apply(op)
    return Commit(ops, overlay.delta(), [(key, Outcome("fp", ops[-1].id))])


async def test_commit_then_load_round_trips(store: Store) -> None:
    ops = [_open_op(1, "a"), _open_op(2, "b")]
    await store.commit(_commit_of(LedgerState(), ops, ("a", "r")))
    snapshot = await store.load()
    assert set(snapshot.state.accounts) == {"a", "b"}
    assert snapshot.state.version_vector() == VersionVector({BRANCH: 2})
    assert snapshot.last_hlc == 2
    assert await store.read_ops(BRANCH, 0, 10) == ops
    assert await store.read_ops(BRANCH, 1, 10) == ops[1:]
    assert await store.get_outcomes([("a", "r"), ("a", "other")]) == {
        ("a", "r"): Outcome("fp", OpId(1, 2))
    }


async def test_a_failed_commit_writes_nothing(store: Store) -> None:
    await store.commit(_commit_of(LedgerState(), [_open_op(1, "a")], ("a", "r")))
    before = await store.load()
    # The same op id again must be refused whole, together with the rest of its batch.
    duplicate = _commit_of(LedgerState(), [_open_op(1, "a")], ("z", "r"))
    with pytest.raises(Exception):  # noqa: B017, PT011 - each backend has its own error
        await store.commit(duplicate)
    after = await store.load()
    assert after.state.version_vector() == before.state.version_vector()
    assert await store.get_outcomes([("z", "r")]) == {}


async def test_transact_decides_last_with_the_stored_outcomes(store: Store) -> None:
    await store.commit(_commit_of(LedgerState(), [_open_op(1, "a")], ("a", "r")))
    state = (await store.load()).state
    keys = [("a", "r"), ("b", "r")]
    seen: list[Mapping[IdempotencyKey, Outcome]] = []

    def decide(found: Mapping[IdempotencyKey, Outcome]) -> Commit | None:
        # As the writer does: a request with a stored outcome is answered from it, the
        # others are carried out.
        seen.append(dict(found))
        new = [key for key in keys if key not in found]
        op = _open_op(2, "b")
        overlay = state.overlay()
        overlay.apply(op)
        return Commit([op], overlay.delta(), [(key, Outcome("new", op.id)) for key in new])

    await store.transact(keys, decide)
    # A store may guess first that no key has an outcome; the last call knows.
    assert seen[-1] == {("a", "r"): Outcome("fp", OpId(1, 1))}
    assert await store.get_outcomes(keys) == {
        ("a", "r"): Outcome("fp", OpId(1, 1)),
        ("b", "r"): Outcome("new", OpId(1, 2)),
    }
    assert (await store.load()).state.version_vector() == VersionVector({BRANCH: 2})


async def test_transact_looks_up_the_requests_that_decide_left_undecided(store: Store) -> None:
    # A retry of a request that succeeded may fail transiently when decided afresh (no
    # escrow here now, say): nothing to store, so no key collides, yet it must be answered
    # from its stored outcome.
    await store.commit(_commit_of(LedgerState(), [_open_op(1, "a")], ("a", "r")))
    seen: list[Mapping[IdempotencyKey, Outcome]] = []

    def transient(found: Mapping[IdempotencyKey, Outcome]) -> Commit | None:
        seen.append(dict(found))
        return None

    await store.transact([("a", "r")], transient)
    assert seen[-1] == {("a", "r"): Outcome("fp", OpId(1, 1))}


async def test_transact_writes_nothing_when_decide_fails(store: Store) -> None:
    await store.commit(_commit_of(LedgerState(), [_open_op(1, "a")], ("a", "r")))

    def failing(found: Mapping[IdempotencyKey, Outcome]) -> Commit | None:
        raise RuntimeError("decide failed")

    with pytest.raises(RuntimeError):
        await store.transact([("a", "r"), ("b", "r")], failing)
    assert (await store.load()).state.version_vector() == VersionVector({BRANCH: 1})
    assert await store.get_outcomes([("b", "r")]) == {}


async def test_load_returns_every_net_credit_whatever_its_sign_and_size(store: Store) -> None:
    # Branch 1 puts in all its credit limit allows, and branch 2 spends it after a grant:
    # -(2^62) is as low as a net credit goes in a bank of two branches.
    limit = credit_limit(1, (1, 2))
    state = LedgerState()
    genesis = genesis_op(
        account_id="g", currency="USD", owner="o", balance=MAX_AMOUNT, branch_ids=(1, 2)
    )
    batches: list[list[Op | tuple[int, OpBody]]] = [
        [genesis],
        [(1, OpenAccount("a", AccountType.SAVINGS, "USD", "o")), (1, Deposit("a", limit))],
        [(1, Grant("a", limit, to_branch=2)), (2, Withdrawal("a", limit))],
        [(2, Transfer("g", "a", 5)), (2, Interest("a", 7, dt.date(1970, 1, 1), "1", 5))],
    ]
    for n, batch in enumerate(batches):
        overlay = state.overlay()
        ops = [_applied(overlay, item, hlc=10 * n + i) for i, item in enumerate(batch)]
        await store.commit(Commit(ops, overlay.delta(), []))
        state.absorb(overlay)
        loaded = (await store.load()).state
        assert (dict(loaded.credits), dict(loaded.rights)) == (state.credits, state.rights)
    assert {k: v for k, v in loaded.credits.items() if v} == {
        ("g", 1): limit,
        ("g", 2): MAX_AMOUNT - limit - 5,
        ("a", 1): limit,
        ("a", 2): 5 + 7 - limit,
    }


def _applied(state: LedgerState, item: Op | tuple[int, OpBody], *, hlc: int) -> Op:
    """``item``, or the next op of ``(origin, body)``, applied to ``state``."""
    if isinstance(item, Op):
        op = item
    else:
        origin, body = item
        seq = state.applied.get(origin, 0) + 1
        op = Op(OpId(origin, seq), state.version_vector(), hlc, f"r{hlc}", "USD", body)
    state.apply(op)
    return op


async def test_same_request_id_from_many_tasks_is_applied_once(store: Store) -> None:
    state = LedgerState()
    writer = Writer(BRANCH, state, store, HybridLogicalClock(lambda: 0))
    writer.start()
    try:
        await writer.submit(OpenAccountCommand("acct", AccountType.CHECKING, "USD", "o", "open"))
        command = DepositCommand("acct", 5, "same-request")
        outcomes = await asyncio.gather(*(writer.submit(command) for _ in range(200)))
        assert len({o.op_id for o in outcomes}) == 1
        assert writer.state.balance("acct") == 5
        # A later retry, after the first attempt is settled, is answered from the store.
        assert (await writer.submit(command)).op_id == outcomes[0].op_id
    finally:
        await writer.stop()
    assert (await store.load()).state.balance("acct") == 5


async def test_sqlite_finds_outcomes_by_key_without_reading_the_others(tmp_path: Path) -> None:
    # White-box: SQLite's virtual machine steps, counted by a progress handler, stand for
    # the rows a lookup touches. A lookup that scanned every stored outcome (as a
    # row-value ``IN (VALUES ...)`` does) would take steps in proportion to the table.
    store = await SqliteStore.open(tmp_path / "branch.sqlite3", branch_id=BRANCH)
    try:
        state = LedgerState()
        ops = [_open_op(1, "a")]
        outcomes = [(("a", f"request-{i}"), Outcome("fp", OpId(BRANCH, 1))) for i in range(3000)]
        await store.commit(Commit(ops, _commit_of(state, ops, ("a", "r")).delta, outcomes))
        steps = 0

        def count() -> int:
            nonlocal steps
            steps += 1
            return 0

        # The connection belongs to the store's thread.
        await store._run(lambda: store._db.set_progress_handler(count, 1))
        found = await store.get_outcomes([("a", "request-7"), ("a", "request-2999"), ("a", "x")])
        await store._run(lambda: store._db.set_progress_handler(None, 1))
    finally:
        await store.close()
    assert set(found) == {("a", "request-7"), ("a", "request-2999")}
    assert steps < 300, f"looking up 3 of 3000 outcomes took {steps} SQLite steps"

"""The branch's writer over the in-memory store: exactly once, group commit, failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from dbank.branch import Writer
from dbank.ledger import (
    Aborted,
    AccountType,
    Command,
    Deposit,
    DepositCommand,
    EscrowShortfall,
    HybridLogicalClock,
    InsufficientFunds,
    LedgerState,
    Op,
    OpenAccount,
    OpenAccountCommand,
    OpId,
    Outcome,
    RequestIdReused,
    RequestInProgress,
    TransferCommand,
    Unavailable,
    WithdrawCommand,
)
from dbank.store import Commit, MemoryStore

WALL_MS = 1_700_000_000_000


class SpyStore(MemoryStore):
    """A MemoryStore that counts commits, can hold one at its start, or fail the next."""

    def __init__(self) -> None:
        super().__init__()
        self.commits: list[Commit] = []
        self.fail_next: Exception | None = None
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.committed = asyncio.Event()

    async def commit(self, commit: Commit) -> None:
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        await super().commit(commit)
        self.commits.append(commit)
        self.committed.set()

    def hold(self) -> None:
        """Hold the next commits until ``release``."""
        self.gate = asyncio.Event()
        self.entered.clear()
        self.committed.clear()

    def release(self) -> None:
        assert self.gate is not None
        self.gate.set()
        self.gate = None

    async def ops(self, origin: int = 1) -> list[Op]:
        return await self.read_ops(origin, 0, 10_000)


def state_view(state: LedgerState) -> tuple[Any, ...]:
    names = set(state.accounts) | {a for a, _ in state.rights}
    return (
        dict(state.accounts),
        {k: v for k, v in state.rights.items() if v},
        dict(state.applied),
        {a: state.balance(a) for a in names},
    )


MakeWriter = Callable[..., Writer]


@pytest.fixture
def store() -> SpyStore:
    return SpyStore()


@pytest.fixture
async def make_writer(store: SpyStore) -> AsyncIterator[MakeWriter]:
    writers: list[Writer] = []

    def make(state: LedgerState | None = None, branch: int = 1) -> Writer:
        clock = HybridLogicalClock(lambda: WALL_MS)
        writer = Writer(branch, state if state is not None else LedgerState(), store, clock)
        writer.start()
        writers.append(writer)
        return writer

    yield make
    if store.gate is not None:
        store.release()
    for writer in writers:
        await writer.stop()


@pytest.fixture
async def writer(make_writer: MakeWriter) -> Writer:
    w = make_writer()
    await w.submit(open_cmd("a"))
    await w.submit(open_cmd("b"))
    return w


def open_cmd(account: str, currency: str = "USD", rid: str | None = None) -> OpenAccountCommand:
    return OpenAccountCommand(account, AccountType.CHECKING, currency, "owner", rid or account)


async def test_a_write_is_durable_and_visible_when_it_returns(
    writer: Writer, store: SpyStore
) -> None:
    outcome = await writer.submit(DepositCommand("a", 250, "d1"))
    assert outcome.op_id == OpId(1, 3)
    assert outcome.balances == (("a", 250),)
    assert writer.state.balance("a") == 250
    assert writer.state.rights_of("a", 1) == 250
    ops = await store.ops()
    assert [op.id.seq for op in ops] == [1, 2, 3]
    assert ops[2].body == Deposit("a", 250)
    assert ops[2].request_id == "d1"
    assert ops[2].currency == "USD"
    assert ops[0].body == OpenAccount("a", AccountType.CHECKING, "USD", "owner")
    assert state_view((await store.load()).state) == state_view(writer.state)
    assert (await store.get_outcomes([("a", "d1")]))[("a", "d1")] == outcome


async def test_ops_carry_gapless_seqs_full_deps_and_rising_hlcs(
    writer: Writer, store: SpyStore
) -> None:
    for i in range(5):
        await writer.submit(DepositCommand("a", 10 + i, f"d{i}"))
    await writer.submit(TransferCommand("a", "b", 7, "t"))
    ops = await store.ops()
    assert [op.id for op in ops] == [OpId(1, s) for s in range(1, 9)]
    for op in ops:
        assert op.deps[1] == op.id.seq - 1
    hlcs = [op.hlc for op in ops]
    assert hlcs == sorted(set(hlcs))
    assert hlcs[0] >= WALL_MS << 16
    assert (writer.state.balance("a"), writer.state.balance("b")) == (53, 7)


async def test_a_retried_request_returns_its_outcome_and_applies_once(
    writer: Writer, store: SpyStore
) -> None:
    command = DepositCommand("a", 100, "retry-me")
    first = await writer.submit(command)
    commits = len(store.commits)
    again = await writer.submit(DepositCommand("a", 100, "retry-me", currency="USD"))
    assert again == first
    assert writer.state.balance("a") == 100
    assert len(await store.ops()) == 3
    assert len(store.commits) == commits  # nothing new to commit


async def test_a_definite_failure_is_stored_and_returned_to_retries(writer: Writer) -> None:
    command = WithdrawCommand("a", 500, "w1")
    with pytest.raises(InsufficientFunds) as first:
        await writer.submit(command)
    await writer.submit(DepositCommand("a", 1_000, "d1"))
    with pytest.raises(InsufficientFunds) as again:
        await writer.submit(command)
    assert again.value.message == first.value.message
    assert again.value.metadata == first.value.metadata
    assert writer.state.balance("a") == 1_000
    # A new request id decides afresh.
    outcome = await writer.submit(WithdrawCommand("a", 500, "w2"))
    assert outcome.balance("a") == 500


@pytest.mark.parametrize(
    "other",
    [
        DepositCommand("a", 101, "same"),
        WithdrawCommand("a", 100, "same"),
        TransferCommand("a", "b", 100, "same"),
        OpenAccountCommand("a", AccountType.SAVINGS, "USD", "x", "same"),
    ],
)
async def test_a_request_id_reused_with_other_parameters_is_refused(
    writer: Writer, store: SpyStore, other: Command
) -> None:
    await writer.submit(DepositCommand("a", 100, "same"))
    before = state_view(writer.state)
    with pytest.raises(RequestIdReused) as error:
        await writer.submit(other)
    assert error.value.metadata == {"request_id": "same"}
    assert state_view(writer.state) == before
    # The original request still gets its outcome.
    assert (await writer.submit(DepositCommand("a", 100, "same"))).balance("a") == 100


async def test_the_same_request_id_on_another_account_is_another_request(writer: Writer) -> None:
    await writer.submit(DepositCommand("a", 100, "same"))
    outcome = await writer.submit(DepositCommand("b", 100, "same"))
    assert outcome.balance("b") == 100


async def test_200_concurrent_copies_of_a_request_apply_once(
    writer: Writer, store: SpyStore
) -> None:
    command = TransferCommand("a", "b", 1, "hot")
    await writer.submit(DepositCommand("a", 10, "seed"))
    outcomes = await asyncio.gather(*(writer.submit(command) for _ in range(200)))
    assert len(set(outcomes)) == 1
    ops = await store.ops()
    assert sum(1 for op in ops if op.request_id == "hot") == 1
    assert (writer.state.balance("a"), writer.state.balance("b")) == (9, 1)


async def test_concurrent_copies_with_other_parameters_are_refused(
    writer: Writer, store: SpyStore
) -> None:
    store.hold()
    first = asyncio.create_task(writer.submit(DepositCommand("a", 5, "dup")))
    await store.entered.wait()  # the first attempt is being committed
    clash = asyncio.create_task(writer.submit(DepositCommand("a", 6, "dup")))
    copy = asyncio.create_task(writer.submit(DepositCommand("a", 5, "dup")))
    store.release()
    assert (await first).balance("a") == 5
    assert (await copy) == (await first)
    with pytest.raises(RequestIdReused):
        await clash
    assert writer.state.balance("a") == 5


async def test_concurrent_requests_are_group_committed(writer: Writer, store: SpyStore) -> None:
    before = len(store.commits)
    commands = [DepositCommand("a" if i % 2 else "b", i + 1, f"g{i}") for i in range(100)]
    outcomes = await asyncio.gather(*(writer.submit(c) for c in commands))
    commits = len(store.commits) - before
    assert 1 <= commits < len(commands)
    assert sum(len(c.ops) for c in store.commits[before:]) == 100
    assert len({o.op_id for o in outcomes}) == 100
    assert writer.state.balance("a") + writer.state.balance("b") == sum(range(1, 101))
    seqs = sorted(op.id.seq for op in await store.ops())
    assert seqs == list(range(1, 103))


async def test_requests_queue_up_behind_a_commit_and_go_in_one_batch(
    writer: Writer, store: SpyStore
) -> None:
    await writer.submit(DepositCommand("a", 1_000, "seed"))
    before = len(store.commits)
    store.hold()
    first = asyncio.create_task(writer.submit(DepositCommand("b", 1, "first")))
    await store.entered.wait()
    # Committed state only: the deposit being committed is not visible yet.
    assert writer.state.balance("b") == 0
    rest = [
        asyncio.create_task(writer.submit(WithdrawCommand("a", 10, f"w{i}"))) for i in range(50)
    ]
    store.release()
    await first
    results = await asyncio.gather(*rest)
    assert len(store.commits) - before == 2
    assert len(store.commits[-1].ops) == 50
    assert len(store.commits[-1].outcomes) == 50
    assert sorted(r.balance("a") for r in results) == list(range(500, 1_000, 10))
    assert writer.state.balance("a") == 500


async def test_a_batch_sees_its_own_earlier_ops(writer: Writer, store: SpyStore) -> None:
    store.hold()
    blocker = asyncio.create_task(writer.submit(DepositCommand("b", 1, "blocker")))
    await store.entered.wait()
    deposit = asyncio.create_task(writer.submit(DepositCommand("a", 100, "d")))
    withdrawals = [
        asyncio.create_task(writer.submit(WithdrawCommand("a", 60, f"w{i}"))) for i in range(2)
    ]
    store.release()
    await blocker
    assert (await deposit).balance("a") == 100
    assert (await withdrawals[0]).balance("a") == 40
    with pytest.raises(InsufficientFunds):
        await withdrawals[1]
    assert writer.state.balance("a") == 40


async def test_a_failed_batch_leaves_state_and_store_alone_and_the_next_works(
    writer: Writer, store: SpyStore
) -> None:
    await writer.submit(DepositCommand("a", 100, "seed"))
    before = state_view(writer.state)
    stored_ops = await store.ops()
    commits = len(store.commits)
    commands: list[Command] = [
        DepositCommand("a", 5, "x1"),
        WithdrawCommand("a", 50, "x2"),
        TransferCommand("a", "b", 10, "x3"),
        WithdrawCommand("a", 10**6, "x4"),  # a definite failure in the failed batch
        open_cmd("c"),
    ]
    store.fail_next = Unavailable("the disk is gone")
    results = await asyncio.gather(
        *(writer.submit(c) for c in commands),
        writer.submit(commands[0]),  # a copy waiting on the same attempt
        return_exceptions=True,
    )
    assert all(isinstance(r, Unavailable) for r in results), results
    assert all(r.transient for r in results if isinstance(r, Unavailable))
    assert state_view(writer.state) == before
    assert await store.ops() == stored_ops
    assert len(store.commits) == commits
    assert await store.get_outcomes([c.key for c in commands]) == {}

    # Nothing of the failed batch was stored, so retries decide afresh and apply once.
    outcomes = await asyncio.gather(*(writer.submit(c) for c in commands), return_exceptions=True)
    assert [type(r).__name__ for r in outcomes] == [
        "Outcome",
        "Outcome",
        "Outcome",
        "InsufficientFunds",
        "Outcome",
    ]
    assert (writer.state.balance("a"), writer.state.balance("b")) == (45, 10)
    assert "c" in writer.state.accounts
    ops = await store.ops()
    assert [op.id.seq for op in ops] == list(range(1, len(ops) + 1))  # no gap
    assert len(ops) == len(stored_ops) + 4
    assert state_view((await store.load()).state) == state_view(writer.state)


async def test_a_failure_fails_its_batch_only(writer: Writer, store: SpyStore) -> None:
    store.hold()
    blocker = asyncio.create_task(writer.submit(DepositCommand("b", 1, "blocker")))
    await store.entered.wait()
    queued = [
        asyncio.create_task(writer.submit(DepositCommand("a", i + 1, f"q{i}"))) for i in range(5)
    ]
    store.fail_next = RuntimeError("disk on fire")
    store.release()
    with pytest.raises(Unavailable):
        await blocker
    outcomes = await asyncio.gather(*queued)
    assert writer.state.balance("a") == 15
    assert writer.state.balance("b") == 0
    assert [o.op_id for o in outcomes] == [OpId(1, s) for s in range(3, 8)]


async def test_escrow_shortfall_is_transient_and_not_stored(
    make_writer: MakeWriter, store: SpyStore
) -> None:
    # Account "a" holds 100, all of it in branch 2's share.
    seed = LedgerState().overlay()
    ops = [
        Op(
            OpId(2, 1),
            seed.version_vector(),
            1,
            "o",
            "USD",
            OpenAccount("a", AccountType.CHECKING, "USD", "x"),
        ),
    ]
    seed.apply(ops[0])
    ops.append(Op(OpId(2, 2), seed.version_vector(), 2, "d", "USD", Deposit("a", 100)))
    seed.apply(ops[1])
    await store.commit(Commit(ops, seed.delta(), []))
    writer = make_writer((await store.load()).state, branch=1)
    commits = len(store.commits)

    command = WithdrawCommand("a", 60, "borrow")
    with pytest.raises(EscrowShortfall) as error:
        await writer.submit(command)
    assert isinstance(error.value, Aborted)
    assert error.value.shortfall == 60
    assert len(store.commits) == commits
    assert await store.get_outcomes([command.key]) == {}
    # A retry decides afresh (still short), rather than returning a stored outcome.
    with pytest.raises(EscrowShortfall):
        await writer.submit(command)
    # The writer originates at its own id, after the ops it has seen.
    outcome = await writer.submit(DepositCommand("a", 1, "d1"))
    assert outcome.op_id == OpId(1, 1)
    assert (await store.ops(1))[0].deps == seed.version_vector()


async def test_a_caller_that_goes_away_does_not_cancel_the_write(
    writer: Writer, store: SpyStore
) -> None:
    store.hold()
    command = DepositCommand("a", 7, "leaver")
    caller = asyncio.create_task(writer.submit(command))
    await store.entered.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    # A retry while the first attempt is still being committed waits for its outcome.
    retry = asyncio.create_task(writer.submit(command))
    store.release()
    outcome = await retry
    assert outcome.balance("a") == 7
    assert (await writer.submit(command)).op_id == outcome.op_id
    assert sum(1 for op in await store.ops() if op.request_id == "leaver") == 1


async def test_a_waiting_copy_is_not_cancelled_when_the_first_caller_goes_away(
    writer: Writer, store: SpyStore
) -> None:
    store.hold()
    command = DepositCommand("a", 7, "leaver")
    first = asyncio.create_task(writer.submit(command))
    copy = asyncio.create_task(writer.submit(command))  # waits for the first attempt
    await store.entered.wait()
    first.cancel()
    store.release()
    (result,) = await asyncio.gather(copy, return_exceptions=True)
    # The copy's own caller is still there: it must get the outcome, or be told to retry.
    assert isinstance(result, Outcome | RequestInProgress), repr(result)
    assert writer.state.balance("a") == 7


async def test_stop_finishes_queued_requests_then_refuses(
    make_writer: MakeWriter, store: SpyStore
) -> None:
    writer = make_writer()
    tasks = [asyncio.create_task(writer.submit(open_cmd(f"s{i}"))) for i in range(10)]
    await store.entered.wait()
    await writer.stop()
    assert all(t.done() for t in tasks)
    assert len([t.result() for t in tasks]) == 10
    with pytest.raises(Unavailable):
        await writer.submit(open_cmd("late"))
    await writer.stop()  # stopping twice is harmless


async def test_a_writer_restarted_from_its_store_continues_the_log(
    make_writer: MakeWriter, writer: Writer, store: SpyStore
) -> None:
    await writer.submit(DepositCommand("a", 30, "d1"))
    await writer.stop()
    snapshot = await store.load()
    again = make_writer(snapshot.state)
    assert state_view(again.state) == state_view(writer.state)
    # A retry of a request decided before the restart gets the stored outcome.
    assert (await again.submit(DepositCommand("a", 30, "d1"))).op_id == OpId(1, 3)
    assert (await again.submit(DepositCommand("a", 5, "d2"))).op_id == OpId(1, 4)
    assert again.state.balance("a") == 35

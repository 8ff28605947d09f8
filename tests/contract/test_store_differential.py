"""The same random work through SQLite and Redis leaves the same state in both.

Each example runs one sequence of requests (in bursts that the writer batches together,
request ids drawn from a small pool so that retries and reused ids happen, amounts up to
2^63 - 1, past each branch's credit limit) and other branches' ops through a real
``Writer`` on each store, then compares every answer, the loaded state (net credits too),
the op logs and the stored outcomes.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.redis_server import RedisServer

from dbank.branch import Writer
from dbank.ledger import (
    AccountType,
    Command,
    DbankError,
    DepositCommand,
    HybridLogicalClock,
    OpenAccountCommand,
    TransferCommand,
    WithdrawCommand,
    credit_limit,
)
from dbank.money import MAX_AMOUNT
from dbank.store import MemoryStore, RedisStore, SqliteStore, Store

HERE, THERE = 1, 2
LOCAL_ACCOUNTS = ("a", "b", "y")  # "y" is in JPY: transfers to it are refused
REMOTE_ACCOUNT = "r"

BANK = (HERE, THERE)
amounts = st.one_of(
    st.integers(1, 300),
    st.sampled_from((MAX_AMOUNT, MAX_AMOUNT - 1, MAX_AMOUNT // 2, MAX_AMOUNT // 4)),
)
request_ids = st.sampled_from([f"req-{i}" for i in range(6)])
accounts = st.sampled_from(LOCAL_ACCOUNTS)


@dataclass(frozen=True)
class Remote:
    """A deposit made at the other branch, whose op this branch then applies."""

    amount: int


def _local_commands() -> st.SearchStrategy[Command]:
    return st.one_of(
        st.builds(DepositCommand, accounts, amounts, request_ids),
        st.builds(WithdrawCommand, accounts, amounts, request_ids),
        st.builds(
            lambda pair, amount, rid: TransferCommand(pair[0], pair[1], amount, rid),
            st.permutations(LOCAL_ACCOUNTS),
            amounts,
            request_ids,
        ),
    )


bursts = st.lists(
    st.one_of(st.lists(_local_commands(), min_size=1, max_size=4), st.builds(Remote, amounts)),
    min_size=1,
    max_size=12,
)


def _opening() -> list[Command]:
    return [
        OpenAccountCommand(a, AccountType.CHECKING, "JPY" if a == "y" else "USD", "o", f"open-{a}")
        for a in LOCAL_ACCOUNTS
    ]


async def _answer(writer: Writer, command: Command) -> Any:
    try:
        outcome = await writer.submit(command)
    except DbankError as exc:
        return (type(exc).__name__, exc.reason)
    return (outcome.op_id, outcome.balances)


async def _run(store: Store, plan: list[list[Command] | Remote]) -> tuple[list[Any], Any]:
    """Play ``plan`` on ``store``; every answer, then everything the store holds."""
    writer, there_store = await _writer(HERE, store), MemoryStore()
    there = await _writer(THERE, there_store)
    writer.start()
    there.start()
    answers: list[Any] = []
    try:
        for command in _opening():
            answers.append(await _answer(writer, command))
        await there.submit(
            OpenAccountCommand(REMOTE_ACCOUNT, AccountType.CHECKING, "USD", "o", "o")
        )
        for n, step in enumerate(plan):
            if isinstance(step, Remote):
                await _answer(there, DepositCommand(REMOTE_ACCOUNT, step.amount, f"remote-{n}"))
                await writer.apply_remote(await there_store.read_ops(THERE, 0, 1000))
                continue
            answers += await asyncio.gather(*(_answer(writer, c) for c in step))
    finally:
        await writer.stop()
        await there.stop()
    return answers, await _contents(store, plan)


async def _writer(branch: int, store: Store) -> Writer:
    state = (await store.load()).state
    limit = credit_limit(branch, BANK)
    return Writer(branch, state, store, HybridLogicalClock(lambda: 0), credit_limit=limit)


async def _contents(store: Store, plan: list[list[Command] | Remote]) -> Any:
    snapshot = await store.load()
    state = snapshot.state
    keys = [c.key for step in plan if isinstance(step, list) for c in step]
    keys += [c.key for c in _opening()]
    keys += [
        (REMOTE_ACCOUNT, f"remote-{n}") for n, step in enumerate(plan) if isinstance(step, Remote)
    ]
    return (
        dict(state.accounts),
        {k: v for k, v in state.rights.items() if v},
        {k: v for k, v in state.credits.items() if v},
        dict(state.applied),
        snapshot.last_hlc,
        await store.read_ops(HERE, 0, 10_000),
        await store.read_ops(THERE, 0, 10_000),
        await store.get_outcomes(keys),
    )


async def _both(redis_url: str, plan: list[list[Command] | Remote]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = await SqliteStore.open(Path(tmp) / "b.sqlite3", branch_id=HERE)
        redis = await RedisStore.open(redis_url, branch_id=HERE)
        try:
            expected = await _run(sqlite, plan)
            found = await _run(redis, plan)
        finally:
            await sqlite.close()
            await redis.close()
    assert found[0] == expected[0], "the answers differ"
    assert found[1] == expected[1], "the stored contents differ"


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(plan=bursts)
def test_sqlite_and_redis_end_in_the_same_state(
    redis_server: RedisServer, plan: list[list[Command] | Remote]
) -> None:
    asyncio.run(_both(redis_server.new_database(), plan))

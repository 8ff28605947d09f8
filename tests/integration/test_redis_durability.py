"""A redis-server with the durable settings, killed with SIGKILL while a writer commits,
loses none of the commits it acknowledged."""

from __future__ import annotations

import asyncio

from support.redis_server import RedisServer

from dbank.branch import Writer
from dbank.ledger import (
    AccountType,
    DbankError,
    DepositCommand,
    HybridLogicalClock,
    OpenAccountCommand,
    OpId,
    Outcome,
)
from dbank.ledger.ops import Deposit
from dbank.store import RedisStore

BRANCH = 1
CLIENTS = 16
KILL_AFTER = 300


async def test_sigkill_after_acknowledged_commits_loses_none(
    own_redis_server: RedisServer,
) -> None:
    store = await RedisStore.open(own_redis_server.url(), branch_id=BRANCH)
    writer = Writer(BRANCH, (await store.load()).state, store, HybridLogicalClock(lambda: 0))
    writer.start()
    await writer.submit(OpenAccountCommand("acct", AccountType.CHECKING, "USD", "o", "open"))
    acknowledged: dict[str, Outcome] = {}
    amounts: dict[OpId, int] = {}
    enough = asyncio.Event()

    async def client(n: int) -> None:
        # Deposit until the store fails under us; only acknowledged deposits count.
        for i in range(10_000):
            command = DepositCommand("acct", n + 1, f"c{n}-{i}")
            try:
                outcome = await writer.submit(command)
            except DbankError:
                return
            acknowledged[command.request_id] = outcome
            assert outcome.op_id is not None
            amounts[outcome.op_id] = command.amount
            if len(acknowledged) >= KILL_AFTER:
                enough.set()

    clients = [asyncio.create_task(client(n)) for n in range(CLIENTS)]
    await enough.wait()
    own_redis_server.kill()  # while the clients keep committing
    await asyncio.gather(*clients)
    await writer.stop()
    await store.close()

    own_redis_server.start()
    reopened = await RedisStore.open(own_redis_server.url(), branch_id=BRANCH)
    try:
        stored = await reopened.get_outcomes([("acct", rid) for rid in acknowledged])
        assert stored == {("acct", rid): o for rid, o in acknowledged.items()}
        state = (await reopened.load()).state
        ops = await reopened.read_ops(BRANCH, 0, 100_000)
    finally:
        await reopened.close()
    assert len(acknowledged) >= KILL_AFTER
    # Every acknowledged deposit is stored as it was made, and the state is the sum of the
    # stored ops (deposits in flight at the kill may or may not have been stored).
    assert len(ops) == state.applied[BRANCH]
    stored_amounts = {op.id: op.body.amount for op in ops if isinstance(op.body, Deposit)}
    assert stored_amounts.items() >= amounts.items()
    assert state.balance("acct") == sum(stored_amounts.values())

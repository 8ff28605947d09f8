"""A branch killed with SIGKILL under load keeps every write it acknowledged."""

from __future__ import annotations

import asyncio
import contextlib

from support.secure import BankClient, start_branch

from dbank import DbankError, RetryPolicy
from dbank.hosting import BranchProcess
from dbank.ledger import OpId

WRITERS = 16
KILL_AFTER_ACKS = 300


async def test_sigkill_under_load_loses_no_acknowledged_write(fresh_branch: BranchProcess) -> None:
    accounts = [f"dur-{i}" for i in range(4)]
    async with BankClient(fresh_branch.address) as bank:
        for account in accounts:
            await bank.create_account(account_id=account, owner="o")

    attempted: dict[str, tuple[str, int]] = {}  # request id -> (account, amount)
    acked: dict[str, OpId] = {}
    enough = asyncio.Event()

    async def writer(index: int) -> None:
        no_retry = RetryPolicy(attempts=1)
        async with BankClient(fresh_branch.address, timeout=5, retry=no_retry) as bank:
            for n in range(100_000):
                request_id, account, amount = f"w{index}-{n}", accounts[n % 4], index + 1
                attempted[request_id] = (account, amount)
                try:
                    done = await bank.deposit(
                        account_id=account, amount=amount, request_id=request_id
                    )
                except DbankError:
                    return  # the branch is gone
                acked[request_id] = done.op_id
                if len(acked) >= KILL_AFTER_ACKS:
                    enough.set()

    tasks = [asyncio.create_task(writer(i)) for i in range(WRITERS)]
    await asyncio.wait_for(enough.wait(), timeout=60)
    fresh_branch.kill()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)

    restarted = start_branch(1, fresh_branch.data_dir)
    try:
        async with BankClient(restarted.address) as bank:
            before = {
                a.account_id: a.balance for a in await bank.get_balances(account_ids=accounts)
            }
            acked_sum = _sum(attempted, acked)
            attempted_sum = _sum(attempted, attempted)
            for account in accounts:
                assert acked_sum[account] <= before[account] <= attempted_sum[account]
            # Retrying every request: the acknowledged ones answer with their original op,
            # which proves they were durable; afterwards every deposit is in exactly once.
            for request_id, (account, amount) in attempted.items():
                done = await bank.deposit(account_id=account, amount=amount, request_id=request_id)
                if request_id in acked:
                    assert done.op_id == acked[request_id]
            after = {a.account_id: a.balance for a in await bank.get_balances(account_ids=accounts)}
        assert after == attempted_sum
    finally:
        assert restarted.stop() == 0


def _sum(attempted: dict[str, tuple[str, int]], which: dict[str, object]) -> dict[str, int]:
    total = {f"dur-{i}": 0 for i in range(4)}
    for request_id in which:
        account, amount = attempted[request_id]
        total[account] += amount
    return total


async def test_clean_restart_keeps_state(fresh_branch: BranchProcess) -> None:
    async with BankClient(fresh_branch.address) as bank:
        await bank.create_account(account_id="keep", owner="o")
        await bank.deposit(account_id="keep", amount=1234, request_id="keep-1")
    assert fresh_branch.stop() == 0
    restarted = start_branch(1, fresh_branch.data_dir)
    try:
        async with BankClient(restarted.address) as bank:
            assert (await bank.get_balance(account_id="keep")).balance == 1234
            await bank.deposit(account_id="keep", amount=1234, request_id="keep-1")
            assert (await bank.get_balance(account_id="keep")).balance == 1234
    finally:
        restarted.stop()

"""Two branch processes serving one branch from one Redis, at once: the commit script's
check of the version vector lets no process commit on a state another one changed, and a
writer that meets such a conflict takes in the other's commits and decides again, so
concurrent clients of both lose no update, never overdraw, and are all answered.

A bank of one branch needs no replication lease."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import unique_id
from support.secure import BankClient, start_branch

from dbank import InsufficientFunds
from dbank.hosting import BranchProcess
from dbank.store import RedisStore

CLIENTS = 64
OPS_PER_CLIENT = 12
OPENING = 1_000


@pytest.fixture
def two_processes(tmp_path: Path, redis_url: str) -> Iterator[list[BranchProcess]]:
    processes = [start_branch(1, tmp_path / f"p{n}", store=redis_url) for n in range(2)]
    yield processes
    for process in processes:
        assert process.stop() == 0, process.log()


async def test_two_processes_on_one_redis_lose_no_update(
    two_processes: list[BranchProcess], redis_url: str
) -> None:
    accounts = [unique_id("hot") for _ in range(4)]
    async with BankClient(two_processes[0].address) as setup:
        for account in accounts:
            await setup.create_account(account_id=account, owner="o")
            await setup.deposit(account_id=account, amount=OPENING)
    acknowledged = dict.fromkeys(accounts, OPENING)

    async def customer(seed: int) -> None:
        rng = random.Random(seed)
        async with BankClient(two_processes[seed % 2].address, timeout=30) as bank:
            for _ in range(OPS_PER_CLIENT):
                account, amount = rng.choice(accounts), rng.randint(1, 120)
                deposit = rng.random() < 0.5
                try:
                    if deposit:
                        done = await bank.deposit(account_id=account, amount=amount)
                    else:
                        done = await bank.withdraw(account_id=account, amount=amount)
                except InsufficientFunds:
                    continue
                acknowledged[account] += amount if deposit else -amount
                assert done.balance >= 0

    await asyncio.gather(*(customer(seed) for seed in range(CLIENTS)))
    store = await RedisStore.open(redis_url, branch_id=1)
    try:
        state = (await store.load()).state
    finally:
        await store.close()
    assert {a: state.balance(a) for a in accounts} == acknowledged
    assert all(balance >= 0 for balance in acknowledged.values())

"""Many clients at once: no update is lost, no balance goes negative."""

from __future__ import annotations

import asyncio
import random

from conftest import unique_id
from support.secure import BankClient

from dbank import InsufficientFunds
from dbank.hosting import BranchProcess

CLIENTS = 64
OPS_PER_CLIENT = 40
OPENING = 1_000


async def test_64_clients_lose_no_update(branch: BranchProcess) -> None:
    accounts = [unique_id("hot") for _ in range(4)]
    async with BankClient(branch.address) as setup:
        for account in accounts:
            await setup.create_account(account_id=account, owner="o")
            await setup.deposit(account_id=account, amount=OPENING)
    acknowledged = dict.fromkeys(accounts, OPENING)
    refused = 0

    async def customer(seed: int) -> None:
        nonlocal refused
        rng = random.Random(seed)
        # Each customer has its own channel, as separate programs would.
        async with BankClient(branch.address) as bank:
            for _ in range(OPS_PER_CLIENT):
                account, amount = rng.choice(accounts), rng.randint(1, 120)
                if rng.random() < 0.5:
                    done = await bank.deposit(account_id=account, amount=amount)
                    acknowledged[account] += amount
                else:
                    try:
                        done = await bank.withdraw(account_id=account, amount=amount)
                    except InsufficientFunds:
                        refused += 1
                        continue
                    acknowledged[account] -= amount
                assert done.balance >= 0

    await asyncio.gather(*(customer(seed) for seed in range(CLIENTS)))
    async with BankClient(branch.address) as bank:
        final = await bank.get_balances(account_ids=accounts)
    assert {a.account_id: a.balance for a in final} == acknowledged
    assert all(balance >= 0 for balance in acknowledged.values())

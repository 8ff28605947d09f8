"""Jepsen's "bank" workload on a real bank: accounts with a fixed total, concurrent
transfers at every branch, readers checking every read, and faults injected by progress
(after so many acknowledged transfers), never by the clock."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from dbank.client import BankClient, Session
from dbank.errors import DbankError, InsufficientFunds

Fault = Callable[["BankWorkload"], Awaitable[None]]
"""The fault schedule: runs beside the workload, which stops once it returns."""


class Branches(Protocol):
    """The branches the workload runs on (``dbank.hosting.ProxiedBank`` is one)."""

    @property
    def ids(self) -> list[int]:
        """Every branch's id, in order."""
        ...

    def address(self, branch_id: int) -> str:
        """Where branch ``branch_id`` serves now."""
        ...


Connect = Callable[..., BankClient]
"""Makes the workload's clients: ``BankClient`` itself for an ``--insecure`` bank, or one
that brings the bank's CA and a token (``functools.partial(BankClient, tls=..., token=...)``)."""


@dataclass
class BankWorkload:
    """Transfers among ``accounts``, which together hold ``total``, and reads of all their
    balances, at every branch of ``bank``. ``counts`` and ``violations`` say what happened:
    a violation is a read whose sum is not ``total`` or with a negative balance."""

    bank: Branches
    accounts: list[str]
    total: int
    workers_per_branch: int = 2
    connect: Connect = BankClient
    counts: dict[str, int] = field(
        default_factory=lambda: {"transfers": 0, "acked": 0, "reads": 0, "faults": 0}
    )
    violations: list[str] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _progress: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def setup(self, session: Session) -> None:
        """Open the accounts and spread the total evenly over them, each account's money
        deposited in equal parts at every branch, so every branch holds escrow of each."""
        ids = self.bank.ids
        each, rest = divmod(self.total, len(self.accounts) * len(ids))
        clients = [self.connect(self.bank.address(i), session=session) for i in ids]
        try:
            for k, account_id in enumerate(self.accounts):
                await clients[0].create_account(account_id=account_id, owner="bank")
                for n, client in enumerate(clients):
                    extra = rest if k == 0 and n == 0 else 0
                    await client.deposit(account_id=account_id, amount=each + extra)
        finally:
            for client in clients:
                await client.close()

    async def after_transfers(self, n: int, within: float = 30.0) -> None:
        """Wait until ``n`` more transfers have been acknowledged.

        Raises:
            TimeoutError: they were not within ``within`` seconds.
        """
        target = self.counts["acked"] + n
        async with self._progress:
            await asyncio.wait_for(
                self._progress.wait_for(lambda: self.counts["acked"] >= target), within
            )

    async def run(self, faults: Fault) -> None:
        """Run transfers and reads until ``faults`` returns."""

        async def schedule() -> None:
            try:
                await faults(self)
            finally:
                self._stop.set()

        ids = self.bank.ids
        workers = [
            self._transfers(i, random.Random(i * 100 + w))
            for i in ids
            for w in range(self.workers_per_branch)
        ]
        await asyncio.gather(schedule(), *workers, *(self._reads(i) for i in ids))

    async def _transfers(self, branch_id: int, rng: random.Random) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(DbankError):
                async with self.connect(self.bank.address(branch_id), timeout=2.0) as client:
                    while not self._stop.is_set():
                        await self._transfer(client, rng)

    async def _transfer(self, client: BankClient, rng: random.Random) -> None:
        source, target = rng.sample(self.accounts, 2)
        self.counts["transfers"] += 1
        with contextlib.suppress(InsufficientFunds):
            await client.transfer(
                from_account_id=source, to_account_id=target, amount=rng.randint(1, 300)
            )
            self.counts["acked"] += 1
            async with self._progress:
                self._progress.notify_all()

    async def _reads(self, branch_id: int) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(DbankError):
                async with self.connect(self.bank.address(branch_id), timeout=2.0) as client:
                    while not self._stop.is_set():
                        accounts = await client.get_balances(account_ids=self.accounts)
                        self._check(branch_id, [a.balance for a in accounts])

    def _check(self, branch_id: int, balances: list[int]) -> None:
        self.counts["reads"] += 1
        if sum(balances) != self.total or min(balances) < 0:
            self.violations.append(f"branch {branch_id} read {balances}")


async def converged(
    bank: Branches, account_ids: Sequence[str], session: Session, *, connect: Connect = BankClient
) -> list[int]:
    """The balances every replica holds once it covers ``session``.

    Raises:
        AssertionError: two replicas hold different balances.
    """
    seen: dict[int, list[int]] = {}
    for i in bank.ids:
        async with connect(bank.address(i), session=Session(session.token)) as client:
            accounts = await client.get_balances(account_ids=account_ids)
            seen[i] = [a.balance for a in accounts]
    if len({tuple(v) for v in seen.values()}) != 1:
        raise AssertionError(f"replicas differ: {seen}")
    return seen[bank.ids[0]]

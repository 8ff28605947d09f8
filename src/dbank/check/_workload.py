"""The customers of a check run: Jepsen's bank workload, extended, on any bank whose
branches have addresses.

Shared accounts hold a fixed opening total; workers transfer between random ones, deposit
to and withdraw from them, and read all their balances. Each worker also owns one account
that only it touches, and reads it back, so its own writes can be checked against its
reads (read-your-writes across branches). Every worker keeps one session and moves from
branch to branch at random, half of them writing at ``LOCAL`` and half at ``ALL``; a write
that gets no answer is retried with the same request id now and then, at the same branch
or at another (naming the first branch, as a client must). All of it is recorded in a
``History``; the randomness comes from the seed alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from dbank.check._checkers import Replica
from dbank.check._history import History, Kind, Operation, Outcome, effect
from dbank.client import (
    BalanceChange,
    BankClient,
    RetryPolicy,
    Session,
    TransferResult,
    WriteConcern,
)
from dbank.errors import AlreadyExists, DbankError, FailedPrecondition
from dbank.ledger import VersionVector

CURRENCY = "USD"
SHARED_ACCOUNTS = 6
OPENING_PER_BRANCH = 1_000
"""What each shared account gets at each branch at the start (so every branch holds escrow
of every shared account); each worker's own account gets a tenth of it."""
CALL_TIMEOUT = 2.0
SETTLE_WITHIN = 60.0
SETTLE_BACKOFF = 0.2
ONE_TRY = RetryPolicy(attempts=1)
"""The workload's calls are not retried by the client: a retry is the workload's choice,
recorded in the history."""


class Branches(Protocol):
    """What the workload needs of a bank (``dbank.hosting.ProxiedBank`` has it)."""

    @property
    def ids(self) -> list[int]:
        """Every branch's id, in order."""
        ...

    def address(self, branch_id: int) -> str:
        """Where branch ``branch_id`` serves now (a restarted branch may move)."""
        ...


Connect = Callable[..., BankClient]
"""Makes the workload's clients: ``BankClient`` for an ``--insecure`` bank, or one that
brings the bank's CA and a token."""


@dataclass
class _Worker:
    number: int
    rng: random.Random
    """What the worker does next: drawn the same way whatever the bank answers."""
    retries: random.Random
    """Whether and where it retries an unanswered write: drawn only when one happens,
    so apart from ``rng``, whose sequence then does not depend on the bank's timing."""
    concern: WriteConcern
    session: Session = field(default_factory=Session)
    clients: dict[tuple[int, str], BankClient] = field(default_factory=dict)


class Workload:
    def __init__(
        self,
        bank: Branches,
        *,
        seed: int,
        workers: int,
        connect: Connect = BankClient,
    ) -> None:
        self.bank = bank
        self.connect = connect
        rng = random.Random(seed)
        shared = tuple(f"shared-{k}" for k in range(SHARED_ACCOUNTS))
        private = {w: f"own-{w}" for w in range(workers)}
        opening = dict.fromkeys(shared, OPENING_PER_BRANCH * len(bank.ids))
        opening.update(dict.fromkeys(private.values(), OPENING_PER_BRANCH // 10 * len(bank.ids)))
        self.history = History(CURRENCY, opening, shared, private)
        self._workers = [
            _Worker(
                w,
                random.Random(rng.getrandbits(64)),
                random.Random(rng.getrandbits(64)),
                WriteConcern.LOCAL if w % 2 == 0 else WriteConcern.ALL,
            )
            for w in range(workers)
        ]
        self._setup = Session()
        self._acknowledged = 0
        self._progress = asyncio.Condition()

    @property
    def counts(self) -> dict[str, int]:
        """Operations by kind and outcome (``transfer/ok``...)."""
        counts: dict[str, int] = {}
        for op in self.history.operations:
            key = f"{op.kind}/{op.outcome}"
            counts[key] = counts.get(key, 0) + 1
        return counts

    async def setup(self) -> None:
        """Open every account and fund it in equal parts at every branch."""
        ids = self.bank.ids
        clients = [self.connect(self.bank.address(i), session=self._setup) for i in ids]
        try:
            each = len(ids)
            for account, opening in self.history.opening.items():
                await clients[0].create_account(account_id=account, owner="check")
                for client in clients:
                    await client.deposit(account_id=account, amount=opening // each)
        finally:
            await asyncio.gather(*(client.close() for client in clients))
        for worker in self._workers:
            worker.session.observe(self._setup.token)

    async def after_acknowledged(self, n: int, within: float = 30.0) -> None:
        """Wait until ``n`` more writes have been acknowledged (a fault schedule by
        progress, not by the clock).

        Raises:
            TimeoutError: they were not within ``within`` seconds.
        """
        target = self._acknowledged + n
        async with asyncio.timeout(within), self._progress:
            await self._progress.wait_for(lambda: self._acknowledged >= target)

    async def run(self, stop: asyncio.Event) -> None:
        """Every worker, until ``stop`` is set (a worker that fails stops them all)."""
        try:
            async with asyncio.TaskGroup() as workers:
                for worker in self._workers:
                    workers.create_task(self._work(worker, stop))
        finally:
            await self._close_clients()

    async def settle(self) -> None:
        """Retry every write whose outcome is unknown, with its request id, until the bank
        answers (at the branch that first took it): afterwards every request was applied
        once or refused. Call it once the faults are healed. A request still unanswered
        after ``SETTLE_WITHIN`` seconds in all stays so, for the checkers to report.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SETTLE_WITHIN):
                for attempts in list(self.history.requests().values()):
                    while effect(attempts) is Outcome.INFO:
                        if len(attempts) > 1:
                            await asyncio.sleep(SETTLE_BACKOFF)  # a pause between retries
                        first = attempts[0]
                        worker = self._workers[first.worker]
                        attempts.append(await self._write(worker, first, first.branch))
        await self._close_clients()

    async def final_state(self) -> dict[int, Replica]:
        """Every replica's balances and histories, read with a session that covers every
        write any worker saw: each branch answers once it holds all of them."""
        everything = VersionVector()
        for worker in self._workers:
            everything = everything.merge(worker.session.token)
        everything = everything.merge(self._setup.token)
        accounts = list(self.history.opening)
        replicas = {}
        for branch in self.bank.ids:
            session = Session(everything)
            async with self.connect(
                self.bank.address(branch), session=session, timeout=SETTLE_WITHIN
            ) as client:
                found = await client.get_balances(account_ids=accounts)
                entries = {}
                for account in accounts:
                    entries[account] = [
                        (t.request_id, str(t.op_id))
                        async for t in client.transactions(account_id=account)
                    ]
            replicas[branch] = Replica({a.account_id: a.balance for a in found}, entries)
        return replicas

    # One worker ---------------------------------------------------------------------------

    async def _work(self, worker: _Worker, stop: asyncio.Event) -> None:
        while not stop.is_set():
            branch = worker.rng.choice(self.bank.ids)
            kind, accounts, amount = self._next(worker)
            if kind is Kind.READ:
                await self._read(worker, branch, accounts)
            else:
                await self._attempt(worker, kind, branch, accounts, amount)

    def _next(self, worker: _Worker) -> tuple[Kind, tuple[str, ...], int]:
        """The worker's next operation: what, on which accounts, how much."""
        rng, shared = worker.rng, self.history.shared
        own = (self.history.private[worker.number],)
        roll = rng.random()
        if roll < 0.40:
            return Kind.TRANSFER, tuple(rng.sample(shared, 2)), rng.randint(1, 300)
        if roll < 0.60:
            return Kind.READ, shared, 0
        if roll < 0.70:
            return Kind.DEPOSIT, (rng.choice(shared),), rng.randint(1, 100)
        if roll < 0.80:
            return Kind.WITHDRAW, (rng.choice(shared),), rng.randint(1, 100)
        if roll < 0.87:
            return Kind.DEPOSIT, own, rng.randint(1, 50)
        if roll < 0.94:
            return Kind.WITHDRAW, own, rng.randint(1, 50)
        return Kind.READ, own, 0

    async def _attempt(
        self, worker: _Worker, kind: Kind, branch: int, accounts: tuple[str, ...], amount: int
    ) -> None:
        first = self.history.invoke(
            worker.number,
            kind,
            branch,
            f"{worker.rng.getrandbits(128):032x}",  # from the seed, as every choice here
            accounts,
            amount,
            worker.concern.name,
        )
        op = await self._call(worker, first, branch)
        # An unanswered write is retried with its request id half of the time, at once,
        # here or at another branch (which forwards it to the first).
        while op.outcome is Outcome.INFO and worker.retries.random() < 0.5:
            op = await self._write(worker, first, worker.retries.choice(self.bank.ids))

    async def _write(self, worker: _Worker, first: Operation, branch: int) -> Operation:
        retry = self.history.invoke(
            worker.number,
            first.kind,
            branch,
            first.request_id,
            first.accounts,
            first.amount,
            worker.concern.name,
            retry_of=first.index,
        )
        return await self._call(worker, retry, branch, first_branch=first.branch)

    async def _call(
        self, worker: _Worker, op: Operation, branch: int, first_branch: int = 0
    ) -> Operation:
        forwarded = first_branch if first_branch and first_branch != branch else 0
        try:
            client = self._client(worker, branch)
            if op.kind is Kind.TRANSFER:
                answer: BalanceChange | TransferResult = await client.transfer(
                    from_account_id=op.accounts[0],
                    to_account_id=op.accounts[1],
                    amount=op.amount,
                    request_id=op.request_id,
                    request_branch=forwarded,
                )
            else:
                change = client.deposit if op.kind is Kind.DEPOSIT else client.withdraw
                answer = await change(
                    account_id=op.accounts[0],
                    amount=op.amount,
                    request_id=op.request_id,
                    request_branch=forwarded,
                )
        except DbankError as exc:
            await self._failed(worker, branch, op, exc)
        else:
            self.history.complete(op, Outcome.OK, op_id=str(answer.op_id))
            self._acknowledged += 1
            async with self._progress:
                self._progress.notify_all()
        return op

    async def _read(self, worker: _Worker, branch: int, accounts: tuple[str, ...]) -> None:
        op = self.history.invoke(worker.number, Kind.READ, branch, "", accounts)
        try:
            found = await self._client(worker, branch).get_balances(account_ids=accounts)
        except DbankError as exc:
            await self._failed(worker, branch, op, exc)
            return
        by_id = {a.account_id: a for a in found}
        self.history.complete(
            op,
            Outcome.OK,
            balances=tuple(by_id[a].balance for a in accounts),
            withdrawable=tuple(by_id[a].withdrawable_here for a in accounts),
        )

    def _client(self, worker: _Worker, branch: int) -> BankClient:
        # A restarted branch serves on another address: a client per address.
        key = (branch, self.bank.address(branch))
        client = worker.clients.get(key)
        if client is None:
            client = worker.clients[key] = self.connect(
                key[1],
                session=worker.session,
                write_concern=worker.concern,
                timeout=CALL_TIMEOUT,
                retry=ONE_TRY,
            )
        return client

    async def _failed(self, worker: _Worker, branch: int, op: Operation, error: DbankError) -> None:
        outcome = _outcome_of(error)
        self.history.complete(op, outcome, error=error.reason)
        if outcome is Outcome.INFO:
            # No answer: the channel may be to a branch that has gone; a new one next time.
            for key in [k for k in worker.clients if k[0] == branch]:
                await worker.clients.pop(key).close()

    async def _close_clients(self) -> None:
        clients: list[BankClient] = []
        for worker in self._workers:
            clients += worker.clients.values()
            worker.clients.clear()
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


def _outcome_of(error: DbankError) -> Outcome:
    """``fail`` (nothing applied, ever) only for the refusals a branch stores as the
    request's outcome, so that a retry gets it again: a failed precondition (insufficient
    funds...) and a request id reused. Anything else is ``info``: no answer, an answer the
    branch could not finish, or a refusal made before the request id was looked up
    (which says nothing of an earlier attempt that may have been applied)."""
    return Outcome.FAIL if isinstance(error, (FailedPrecondition, AlreadyExists)) else Outcome.INFO


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

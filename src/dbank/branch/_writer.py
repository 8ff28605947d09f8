"""The branch's single writer: decides requests, originates ops, applies other branches'
ops, and group-commits it all.

Work queues up while the previous batch is being made durable; the next batch takes all of
it. Other branches' ops are applied in causal order: an op whose deps this replica lacks is
held back in memory until they arrive. Local requests are decided against the committed
state plus the batch's own earlier ops. Ops, state and outcomes go into one store
transaction (one fsync), and nothing is answered before that commit returns, so every
acknowledged write is durable, and only durable ops are ever published to other branches.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dbank._log_limit import RepeatLimiter
from dbank.branch._recent import RecentOps
from dbank.branch._watch import VectorWatch
from dbank.ledger import (
    Aborted,
    Command,
    DbankError,
    HybridLogicalClock,
    IdempotencyKey,
    InvariantViolation,
    LedgerState,
    Op,
    OpId,
    Outcome,
    ReplicationHalted,
    RequestIdReused,
    Unavailable,
    VersionVector,
    fingerprint_of,
    plan,
    request_key,
)
from dbank.ledger.ops import Grant
from dbank.money import MAX_AMOUNT
from dbank.store import Commit, Store, StoreConflict

log = logging.getLogger(__name__)

MAX_BATCH = 512
ORIGINATION_WAIT = 5.0
CONFLICT_ATTEMPTS = 24
"""How many times a batch is decided again when other processes serving the same branch
keep committing first; then its requests get the conflict (UNAVAILABLE, retryable)."""
CONFLICT_BACKOFF = 0.002
"""Seconds; the n-th attempt after a conflict waits up to n times this."""


@dataclass(slots=True)
class _Pending:
    command: Command
    future: asyncio.Future[Outcome]
    final: bool
    hold: tuple[str, int] | None


@dataclass(slots=True)
class _Group:
    """The entries of one batch request: decided in one writer batch, in their order, and
    committed in one transaction; if ``atomic``, all of them or none."""

    entries: list[_Pending]
    atomic: bool
    holds: Mapping[str, int]
    """Per account, the held escrow that is the group's to spend (``Writer.hold``)."""


@dataclass(slots=True)
class _Remote:
    ops: Sequence[Op]
    future: asyncio.Future[None]
    seal: int = 0
    """An HLC timestamp that every op decided in this item's batch or later must follow."""
    refresh: bool = False
    """Take in other processes' commits to the store before deciding the batch."""


_STOP = None


@dataclass(slots=True)
class _BatchResult:
    """What one batch decided, kept apart until its commit succeeds."""

    settled: list[tuple[_Pending, Outcome | DbankError]] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    held: dict[OpId, Op] = field(default_factory=dict)
    halted: dict[int, str] = field(default_factory=dict)


class Writer:
    """Owns the branch's ``LedgerState``: only the writer changes it, and only after the
    store has committed the change. ``state`` is always the committed state, and
    ``committed`` publishes its version vector after every commit. ``credit_limit`` is the
    most this branch's own ops may add to an account, net (``dbank.ledger.credit_limit``
    of the bank's branches; the default is that of a bank of one branch)."""

    def __init__(
        self,
        branch_id: int,
        state: LedgerState,
        store: Store,
        clock: HybridLogicalClock,
        *,
        credit_limit: int = MAX_AMOUNT,
    ) -> None:
        self.branch_id = branch_id
        self.credit_limit = credit_limit
        self.state = state
        self.committed = VectorWatch(state.version_vector())
        self.recent = RecentOps()
        self.halted: dict[int, str] = {}
        self._store = store
        self._clock = clock
        self._queue: asyncio.Queue[_Pending | _Group | _Remote | None] = asyncio.Queue()
        self._in_flight: dict[IdempotencyKey, asyncio.Future[Outcome]] = {}
        self._held: dict[OpId, Op] = {}
        self._holds: dict[str, int] = {}
        self._may_originate = asyncio.Event()
        self._may_originate.set()
        self._task: asyncio.Task[None] | None = None
        self._quiet = RepeatLimiter(log)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"writer-{self.branch_id}")

    async def stop(self) -> None:
        """Finish the work queued so far, then stop."""
        if self._task is None:
            return
        self._queue.put_nowait(_STOP)
        await self._task
        self._task = None
        self._quiet.flush()  # the counts of failures not yet said

    # Origination gate (design §4: recover this branch's own log before originating) ----

    def pause_origination(self) -> None:
        self._may_originate.clear()

    def resume_origination(self) -> None:
        self._may_originate.set()

    # Escrow held for writes that borrowed it ---------------------------------------------

    def hold(self, account_id: str, amount: int) -> None:
        """Keep ``amount`` of this branch's share of the account for one waiting write:
        other writes and grants see only the rest."""
        self._holds[account_id] = self._holds.get(account_id, 0) + amount

    def spare(self, account_id: str) -> int:
        """This branch's committed share of the account that no waiting write holds."""
        held = self.state.rights_of(account_id, self.branch_id)
        return held - self._holds.get(account_id, 0)

    def release(self, account_id: str, amount: int) -> None:
        left = self._holds[account_id] - amount
        if left:
            self._holds[account_id] = left
        else:
            del self._holds[account_id]

    # Work -------------------------------------------------------------------------------

    async def submit(
        self, command: Command, *, final: bool = True, hold: tuple[str, int] | None = None
    ) -> Outcome:
        """Carry out ``command`` once, durably, and return its outcome.

        ``final`` goes to the planner (see ``plan``): whether every branch has been asked
        for escrow. ``hold`` is ``(account_id, amount)`` of the held escrow (``hold()``)
        that is this command's to spend.
        A request id seen before returns its stored outcome and applies nothing; one that is
        being applied right now waits for that attempt.

        Raises:
            RequestIdReused: the request id was first used with other parameters.
            DbankError: the request's definite failure, or a transient one (``Aborted``,
                ``Unavailable``) after which the same request may be retried.
        """
        if self._task is None:
            raise Unavailable("the branch is shutting down")
        await self._origination_allowed()
        future = self._in_flight.get(command.key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            future.add_done_callback(_retrieve)
            self._in_flight[command.key] = future
            self._queue.put_nowait(_Pending(command, future, final, hold))
        # Shielded: a caller that goes away must not cancel a write that is queued anyway
        # and that other attempts with the same request id may be waiting for.
        return _matching(command, await asyncio.shield(future))

    async def submit_many(
        self,
        commands: Sequence[Command],
        *,
        atomic: bool,
        final: bool = True,
        holds: Mapping[str, int] | None = None,
    ) -> list[Outcome | DbankError]:
        """Carry out ``commands`` in one writer batch, in their order, and return each one's
        outcome or error (in the same order; nothing is raised for one entry).

        ``final`` as for ``submit``; ``holds``: per account, the held escrow (``hold()``)
        that is the batch's to spend.
        With ``atomic``, either every entry's op is committed or none is, and nothing is
        stored for a refused atomic batch: each refused entry gets its own error and every
        other one ``Aborted`` (``BATCH_ABORTED``). An atomic batch one of whose request ids
        is being carried out right now is refused whole (``REQUEST_IN_PROGRESS``).
        The request ids of ``commands`` must differ from each other.
        """
        if self._task is None:
            raise Unavailable("the branch is shutting down")
        await self._origination_allowed()
        loop = asyncio.get_running_loop()
        waiting: list[asyncio.Future[Outcome]] = []
        entries: list[_Pending] = []
        if atomic and any(command.key in self._in_flight for command in commands):
            raise Aborted(
                "a request id of this batch is being carried out by another request; retry",
                reason="REQUEST_IN_PROGRESS",
            )
        for command in commands:
            future = self._in_flight.get(command.key)
            if future is None:
                future = loop.create_future()
                future.add_done_callback(_retrieve)
                self._in_flight[command.key] = future
                entries.append(_Pending(command, future, final, None))
            waiting.append(future)
        if entries:
            self._queue.put_nowait(_Group(entries, atomic, holds or {}))
        results: list[Outcome | DbankError] = []
        for command, future in zip(commands, waiting, strict=True):
            try:
                results.append(_matching(command, await asyncio.shield(future)))
            except DbankError as exc:
                results.append(exc)
        return results

    async def _origination_allowed(self) -> None:
        if not self._may_originate.is_set():
            try:
                await asyncio.wait_for(self._may_originate.wait(), ORIGINATION_WAIT)
            except TimeoutError:
                raise Unavailable("the branch is recovering its log from its peers") from None

    async def decided(self, command: Command) -> Outcome | None:
        """The outcome of ``command``'s request id if this replica has one: decided here,
        being decided here now, or learned from the op that carried it out elsewhere; None
        if it has none.

        Raises:
            RequestIdReused: the request id was first used with other parameters.
            DbankError: the request's stored definite failure.
        """
        future = self._in_flight.get(command.key)
        if future is not None:
            return _matching(command, await asyncio.shield(future))
        stored = await self._store.get_outcomes([command.key])
        outcome = stored.get(command.key)
        return None if outcome is None else _matching(command, outcome)

    async def apply_remote(self, ops: Sequence[Op]) -> None:
        """Apply other branches' ops (or this branch's own, recovered from a peer) in causal
        order; returns once every op that was ready is durable. Ops whose deps are missing
        stay held in memory until the deps arrive.

        Raises:
            ReplicationHalted: an op comes from an origin whose ops are refused.
        """
        for op in ops:
            reason = self.halted.get(op.id.origin)
            if reason is not None:
                raise ReplicationHalted(
                    f"ops from branch {op.id.origin} are refused: {reason}",
                    origin=str(op.id.origin),
                )
        await self._through_writer(_Remote(ops, self._new_future()))

    async def seal(self, hlc: int) -> None:
        """Make every op this branch originates from now on later than ``hlc``, and return
        once every op it originated before is durable; afterwards ``committed`` holds all
        of this branch's ops at or before ``hlc``. The clock moves inside the writer, between
        batches, so no op being decided meanwhile can slip under it."""
        await self._through_writer(_Remote((), self._new_future(), seal=hlc))

    async def refresh(self) -> None:
        """Take in what other processes serving this branch committed to the same store
        (``Store.catch_up``); returns once ``committed`` includes it."""
        await self._through_writer(_Remote((), self._new_future(), refresh=True))

    def _new_future(self) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        return future

    async def _through_writer(self, item: _Remote) -> None:
        if self._task is None:
            raise Unavailable("the branch is shutting down")
        self._queue.put_nowait(item)
        await asyncio.shield(item.future)

    def halt(self, origin: int, reason: str) -> None:
        """Refuse every further op from ``origin`` (fail-stop)."""
        log.critical("refusing every further op from branch %d: %s", origin, reason)
        self.halted[origin] = reason

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is _STOP:
                    self._queue.put_nowait(_STOP)
                    break
                batch.append(item)
            try:
                await self._process_deciding_again(batch)
            except StoreConflict as exc:
                # Contention, not a fault: nothing was written and the state is what this
                # writer committed last; the requests may be retried.
                log.warning("other processes kept committing first; %d items refused", len(batch))
                self._fail(batch, Unavailable(f"the branch is busy: {exc}; retry"))
            except Unavailable as exc:
                # The store's own failure (a full disk, Redis gone), said in its message:
                # expected while it lasts, and it fails every batch, so one line without a
                # traceback, then a count.
                self._quiet.warning(
                    ("batch", exc.reason),
                    "writer batch failed; reloading state from the store: %s",
                    exc,
                )
                self._fail(batch, Unavailable(f"the store failed: {exc}"))
                await self._reload()
            except Exception as exc:
                log.exception("writer batch failed; reloading state from the store")
                self._fail(batch, Unavailable(f"the store failed: {exc}"))
                await self._reload()

    def _fail(self, batch: list[_Pending | _Group | _Remote], failure: DbankError) -> None:
        for item in batch:
            if isinstance(item, _Pending):
                self._settle(item, failure)
            elif isinstance(item, _Group):
                for entry in item.entries:
                    self._settle(entry, failure)
            elif not item.future.done():
                item.future.set_exception(failure)

    async def _process_deciding_again(self, batch: list[_Pending | _Group | _Remote]) -> None:
        """Process the batch; if the store says another process serving this branch
        committed first (``StoreConflict``: nothing was written), take in what it
        committed and decide the whole batch again on that state."""
        if any(isinstance(item, _Remote) and item.refresh for item in batch):
            await self._catch_up()
        for attempt in range(1, CONFLICT_ATTEMPTS):
            try:
                await self._process(batch)
                return
            except StoreConflict:
                # Jittered backoff, not a wait for an event: two processes that conflicted
                # and retried in step would conflict again.
                await asyncio.sleep(random.uniform(0, CONFLICT_BACKOFF * attempt))
                await self._catch_up()
        await self._process(batch)

    async def _catch_up(self) -> None:
        """Apply what other processes serving this branch committed to the same store."""
        ops = await self._store.catch_up()
        for op in ops:
            self.state.apply(op)
            self._clock.observe(op.hlc)
        if ops:
            self.recent.extend(ops)
            self.committed.publish(self.state.version_vector())

    async def _process(self, batch: list[_Pending | _Group | _Remote]) -> None:
        for item in batch:
            if isinstance(item, _Remote) and item.seal:
                self._clock.observe(item.seal)
        pending = [entry for item in batch for entry in _entries(item)]
        remote = [op for item in batch if isinstance(item, _Remote) for op in item.ops]
        overlay = self.state.overlay()
        result = _BatchResult()
        clock_before = self._clock.last

        def decide(stored: Mapping[IdempotencyKey, Outcome]) -> Commit | None:
            # Runs inside the store's transaction: it reads the committed state, which only
            # this writer changes, and only after the commit. The store may call it again
            # with more stored outcomes; each call decides the whole batch afresh, from the
            # same clock (the timestamps of a decision that was not committed went nowhere).
            nonlocal overlay, result
            self._clock.rewind(clock_before)
            overlay = self.state.overlay()
            result = _BatchResult()
            learned = self._apply_remote(overlay, remote, result)
            outcomes: list[tuple[IdempotencyKey, Outcome]] = []
            reserved = dict(self._holds)
            for item in batch:
                if isinstance(item, _Group) and item.atomic:
                    self._decide_atomic(overlay, item, stored, reserved, result, outcomes)
                    continue
                if isinstance(item, _Group):
                    _spend_holds(reserved, item.holds)
                for entry in _entries(item):
                    decision = self._decide_stored(overlay, entry, stored, reserved, result.ops)
                    if isinstance(decision, Outcome) and entry.command.key not in stored:
                        outcomes.append((entry.command.key, decision))
                    result.settled.append((entry, decision))
            if not (result.ops or outcomes):
                return None
            return Commit(result.ops, overlay.delta(), outcomes, learned)

        await self._store.transact([p.command.key for p in pending], decide)
        self.state.absorb(overlay)
        self._finish(batch, result)

    def _finish(self, batch: list[_Pending | _Group | _Remote], result: _BatchResult) -> None:
        """After the commit: publish the new state and answer everyone in the batch."""
        self._held = result.held
        for origin, reason in result.halted.items():
            self.halt(origin, reason)
        if result.ops:
            self.recent.extend(result.ops)
            self.committed.publish(self.state.version_vector())
        for pending, decision in result.settled:
            self._settle(pending, decision)
        for item in batch:
            if isinstance(item, _Remote) and not item.future.done():
                item.future.set_result(None)

    def _apply_remote(
        self, overlay: LedgerState, incoming: list[Op], result: _BatchResult
    ) -> list[tuple[IdempotencyKey, Outcome]]:
        """Apply every held or incoming op that is ready, in causal order; keep the rest.
        Only incoming ops can make a held op ready: without them there is nothing to do."""
        if not incoming:
            result.held = self._held
            return []
        held = dict(self._held)
        for op in incoming:
            if not overlay.has_applied(op) and op.id.origin not in self.halted:
                held.setdefault(op.id, op)
        learned: list[tuple[IdempotencyKey, Outcome]] = []
        # HLC order extends causal order (an op's deps all have smaller timestamps), so one
        # pass in that order applies every chain that is ready.
        for op in sorted(held.values(), key=lambda o: o.hlc):
            if overlay.has_applied(op) or op.id.origin in result.halted:
                del held[op.id]
            elif overlay.is_ready(op):
                del held[op.id]
                try:
                    overlay.apply(op)
                except InvariantViolation as exc:
                    result.halted[op.id.origin] = str(exc)
                    continue
                self._clock.observe(op.hlc)
                result.ops.append(op)
                learned.extend(_learned_outcome(overlay, op))
        result.held = held
        return learned

    def _decide_stored(
        self,
        overlay: LedgerState,
        item: _Pending,
        stored: Mapping[IdempotencyKey, Outcome],
        reserved: dict[str, int],
        ops: list[Op],
    ) -> Outcome | DbankError:
        """The stored outcome of the item's request id, else ``_decide``'s. An item that
        brings held escrow frees it for the rest of the batch once decided: it is the
        item's to spend, not to keep from the items after it."""
        decision = stored.get(item.command.key)
        if decision is not None:
            return decision
        if item.hold is not None:
            account, amount = item.hold
            reserved[account] = reserved.get(account, 0) - amount
        return self._decide(overlay, item, reserved, ops)

    def _decide_atomic(
        self,
        overlay: LedgerState,
        group: _Group,
        stored: Mapping[IdempotencyKey, Outcome],
        reserved: dict[str, int],
        result: _BatchResult,
        outcomes: list[tuple[IdempotencyKey, Outcome]],
    ) -> None:
        """Decide every entry of an atomic group in a state of its own, and keep it only if
        none is refused; otherwise nothing of the group is applied or stored."""
        trial = overlay.overlay()
        kept = dict(reserved)
        _spend_holds(kept, group.holds)
        ops: list[Op] = []
        decisions = [self._decide_stored(trial, e, stored, kept, ops) for e in group.entries]
        refused = [not isinstance(d, Outcome) or bool(d.error_type) for d in decisions]
        if not any(refused):
            overlay.absorb(trial)
            reserved.update(kept)
            result.ops.extend(ops)
            for entry, decision in zip(group.entries, decisions, strict=True):
                assert isinstance(decision, Outcome)  # none refused
                if entry.command.key not in stored:
                    outcomes.append((entry.command.key, decision))
                result.settled.append((entry, decision))
            return
        aborted = batch_aborted(refused.index(True))
        for index, (entry, decision) in enumerate(zip(group.entries, decisions, strict=True)):
            if refused[index]:
                error = decision if isinstance(decision, DbankError) else decision.error()
            else:
                error = aborted
            assert error is not None
            result.settled.append((entry, error))

    def _decide(
        self,
        overlay: LedgerState,
        item: _Pending,
        reserved: Mapping[str, int],
        ops: list[Op],
    ) -> Outcome | DbankError:
        """Plan and apply one command in ``overlay``: its definite outcome, or the
        transient error it got (not stored, so a retry decides again)."""
        command = item.command
        try:
            currency, body = plan(
                overlay,
                command,
                branch=self.branch_id,
                final=item.final,
                reserved=reserved,
                credit_limit=self.credit_limit,
            )
        except DbankError as exc:
            if exc.transient:
                return exc
            return Outcome.failure(command.fingerprint, exc)
        seq = overlay.applied.get(self.branch_id, 0) + 1
        op = Op(
            id=OpId(self.branch_id, seq),
            deps=VersionVector({**overlay.applied, self.branch_id: seq - 1}),
            hlc=self._clock.tick(),
            request_id=command.request_id,
            currency=currency,
            body=body,
            caller=command.caller,
        )
        overlay.apply(op)
        ops.append(op)
        balances = tuple((a, overlay.balance(a)) for a in op.accounts())
        return Outcome(command.fingerprint, op.id, balances)

    def _settle(self, pending: _Pending, result: Outcome | DbankError) -> None:
        self._in_flight.pop(pending.command.key, None)
        if pending.future.done():
            return
        if isinstance(result, Outcome):
            pending.future.set_result(result)
        else:
            pending.future.set_exception(result)

    async def _reload(self) -> None:
        try:
            snapshot = await self._store.load()
        except Unavailable as exc:
            self._quiet.warning(
                ("reload", exc.reason),
                "reloading the state failed; keeping the last committed state: %s",
                exc,
            )
            return
        except Exception:
            log.exception("reloading the state failed; keeping the last committed state")
            return
        self.state = snapshot.state
        self._clock.observe(snapshot.last_hlc)
        self.committed.publish(self.state.version_vector())


def batch_aborted(entry: int) -> Aborted:
    """What each other entry of an atomic batch gets when entry ``entry`` is refused."""
    return Aborted(
        f"the atomic batch was refused because of entry {entry}: nothing of it was applied",
        reason="BATCH_ABORTED",
        entry=str(entry),
    )


def _spend_holds(reserved: dict[str, int], holds: Mapping[str, int]) -> None:
    """Free a group's held escrow for the group's own entries."""
    for account, amount in holds.items():
        reserved[account] = reserved.get(account, 0) - amount


def _entries(item: _Pending | _Group | _Remote) -> list[_Pending]:
    if isinstance(item, _Pending):
        return [item]
    if isinstance(item, _Group):
        return item.entries
    return []


def _learned_outcome(state: LedgerState, op: Op) -> list[tuple[IdempotencyKey, Outcome]]:
    """The outcome another branch stored for the request ``op`` carried out, so that a
    retry of that request sent here is answered with it."""
    if not op.request_id or isinstance(op.body, Grant):
        return []
    accounts = op.accounts()
    balances = tuple((a, state.balance(a)) for a in accounts)
    key = (accounts[0], request_key(op.caller, op.request_id))
    return [(key, Outcome(fingerprint_of(op.body), op.id, balances))]


def _matching(command: Command, outcome: Outcome) -> Outcome:
    if outcome.fingerprint != command.fingerprint:
        raise RequestIdReused(
            f"request id {command.request_id!r} was used for another request",
            request_id=command.request_id,
        )
    error = outcome.error()
    if error is not None:
        raise error
    return outcome


def _retrieve(future: asyncio.Future[Any]) -> None:
    # Mark a failure as seen even when every waiter has gone away.
    if not future.cancelled():
        future.exception()

"""The branch's single writer: decides requests, originates ops, group-commits them.

Requests queue up while the previous batch is being made durable; the next batch takes all
of them, decides each against the committed state plus the batch's own earlier ops, and
commits ops, state and outcomes in one store transaction (one fsync). Every request is
answered only after that commit returns, so every acknowledged write is durable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from dbank.ledger import (
    Command,
    DbankError,
    HybridLogicalClock,
    IdempotencyKey,
    LedgerState,
    Op,
    OpId,
    Outcome,
    RequestIdReused,
    Unavailable,
    VersionVector,
    plan,
)
from dbank.store import Commit, Store

log = logging.getLogger(__name__)

MAX_BATCH = 512


@dataclass(slots=True)
class _Pending:
    command: Command
    future: asyncio.Future[Outcome]


_STOP = None


class Writer:
    """Owns the branch's ``LedgerState``: only the writer changes it, and only after the
    store has committed the change. ``state`` is always the committed state."""

    def __init__(
        self, branch_id: int, state: LedgerState, store: Store, clock: HybridLogicalClock
    ) -> None:
        self.branch_id = branch_id
        self.state = state
        self._store = store
        self._clock = clock
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._in_flight: dict[IdempotencyKey, asyncio.Future[Outcome]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"writer-{self.branch_id}")

    async def stop(self) -> None:
        """Finish every request queued so far, then stop."""
        if self._task is None:
            return
        self._queue.put_nowait(_STOP)
        await self._task
        self._task = None

    async def submit(self, command: Command) -> Outcome:
        """Carry out ``command`` once, durably, and return its outcome.

        A request id seen before returns its stored outcome and applies nothing; one that is
        being applied right now waits for that attempt.

        Raises:
            RequestIdReused: the request id was first used with other parameters.
            DbankError: the request's definite failure, or a transient one (``Aborted``,
                ``Unavailable``) after which the same request may be retried.
        """
        if self._task is None:
            raise Unavailable("the branch is shutting down")
        future = self._in_flight.get(command.key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            future.add_done_callback(_retrieve)
            self._in_flight[command.key] = future
            self._queue.put_nowait(_Pending(command, future))
        # Shielded: a caller that goes away must not cancel a write that is queued anyway
        # and that other attempts with the same request id may be waiting for.
        return _matching(command, await asyncio.shield(future))

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
                await self._process(batch)
            except Exception as exc:
                log.exception("writer batch failed; reloading state from the store")
                for pending in batch:
                    self._settle(pending, Unavailable(f"the store failed: {exc}"))
                await self._reload()

    async def _process(self, batch: list[_Pending]) -> None:
        overlay = self.state.overlay()
        results: list[tuple[_Pending, Outcome | DbankError]] = []

        def decide(stored: Mapping[IdempotencyKey, Outcome]) -> Commit | None:
            # Runs inside the store's transaction (possibly on its thread): it reads the
            # committed state, which only this writer changes, and only after it returns.
            results.clear()
            ops: list[Op] = []
            outcomes: list[tuple[IdempotencyKey, Outcome]] = []
            for pending in batch:
                command = pending.command
                result: Outcome | DbankError | None = stored.get(command.key)
                if result is None:
                    result = self._decide(overlay, command, ops)
                    if isinstance(result, Outcome):
                        outcomes.append((command.key, result))
                results.append((pending, result))
            return Commit(ops, overlay.delta(), outcomes) if outcomes else None

        await self._store.transact([p.command.key for p in batch], decide)
        self.state.absorb(overlay)
        for pending, result in results:
            self._settle(pending, result)

    def _decide(
        self, overlay: LedgerState, command: Command, ops: list[Op]
    ) -> Outcome | DbankError:
        """Plan and apply ``command`` in ``overlay``: its definite outcome, or the transient
        error it got (not stored, so a retry decides again)."""
        try:
            currency, body = plan(overlay, command, branch=self.branch_id)
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
        except Exception:
            log.exception("reloading the state failed; keeping the last committed state")
            return
        self.state = snapshot.state
        self._clock.observe(snapshot.last_hlc)


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


def _retrieve(future: asyncio.Future[Outcome]) -> None:
    # Mark a failure as seen even when every waiter has gone away.
    if not future.cancelled():
        future.exception()

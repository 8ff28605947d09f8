"""What a check run saw: every operation a customer invoked, with its outcome, and every
fault injected, each on one clock (integer nanoseconds since the run began).

An operation's outcome is ``ok`` (the bank answered with success), ``fail`` (it answered
with a refusal, so nothing was applied: insufficient funds, say) or ``info`` (no answer
came, so it may or may not have been applied: a timeout, an unreachable branch). A retry
with the same request id is an operation of its own that names the one it retries; a
request's effect is its attempts' together: applied if any attempt was ``ok``, never if
one was ``fail``, and unknown otherwise.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any


class Kind(enum.StrEnum):
    DEPOSIT = "deposit"
    WITHDRAW = "withdraw"
    TRANSFER = "transfer"
    READ = "read"


class Outcome(enum.StrEnum):
    PENDING = "pending"
    OK = "ok"
    FAIL = "fail"
    INFO = "info"


WRITES = frozenset({Kind.DEPOSIT, Kind.WITHDRAW, Kind.TRANSFER})


@dataclass(slots=True)
class Operation:
    """One call a customer made. ``accounts``: the account of a deposit or withdrawal,
    ``(from, to)`` of a transfer, every account a read asked for; ``balances`` and
    ``withdrawable`` (the answering branch's escrow share of each) are a read's answer."""

    index: int
    worker: int
    kind: Kind
    branch: int
    request_id: str
    accounts: tuple[str, ...]
    amount: int
    concern: str
    invoked_ns: int
    completed_ns: int | None = None
    outcome: Outcome = Outcome.PENDING
    error: str = ""
    balances: tuple[int, ...] = ()
    withdrawable: tuple[int, ...] = ()
    op_id: str = ""
    retry_of: int | None = None

    @property
    def latency_ns(self) -> int | None:
        return None if self.completed_ns is None else self.completed_ns - self.invoked_ns


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault window: ``kind`` (cut, one-way, isolate, kill, slow) on ``targets``."""

    kind: str
    targets: tuple[int, ...]
    start_ns: int
    end_ns: int

    def describe(self) -> str:
        arrow = " -> " if self.kind == "one-way" else " "
        return f"{self.kind} {arrow.join(str(t) for t in self.targets)}".strip()


@dataclass(slots=True)
class History:
    """A run's operations in the order they were invoked, its faults, and its accounts'
    opening balances (``private``: each worker's own account, which only it touches)."""

    currency: str
    opening: dict[str, int]
    shared: tuple[str, ...]
    private: dict[int, str]
    operations: list[Operation] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    clock: Callable[[], int] = time.monotonic_ns
    """Nanoseconds of the clock the run goes by (a simulated one, in a simulation)."""
    began: int = -1
    """``clock()`` when the run began (``start``); until then, when the history was made."""

    def __post_init__(self) -> None:
        self.began = self.clock()

    def start(self) -> None:
        """The run begins now: times are counted from here."""
        self.began = self.clock()

    def now(self) -> int:
        return self.clock() - self.began

    def invoke(
        self,
        worker: int,
        kind: Kind,
        branch: int,
        request_id: str,
        accounts: tuple[str, ...],
        amount: int = 0,
        concern: str = "",
        retry_of: int | None = None,
    ) -> Operation:
        operation = Operation(
            len(self.operations),
            worker,
            kind,
            branch,
            request_id,
            accounts,
            amount,
            concern,
            self.now(),
            retry_of=retry_of,
        )
        self.operations.append(operation)
        return operation

    def complete(self, operation: Operation, outcome: Outcome, **answer: Any) -> None:
        operation.completed_ns = self.now()
        operation.outcome = outcome
        for name, value in answer.items():
            setattr(operation, name, value)

    def requests(self) -> dict[str, list[Operation]]:
        """Every write's attempts, by request id, in order."""
        attempts: dict[str, list[Operation]] = {}
        for operation in self.writes():
            attempts.setdefault(operation.request_id, []).append(operation)
        return attempts

    def writes(self) -> Iterator[Operation]:
        return (op for op in self.operations if op.kind in WRITES)

    def to_json(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "opening": self.opening,
            "shared": list(self.shared),
            "private": {str(worker): account for worker, account in self.private.items()},
            "operations": [asdict(op) for op in self.operations],
            "faults": [asdict(fault) for fault in self.faults],
        }


def effect(attempts: list[Operation]) -> Outcome:
    """A request's effect from its attempts: ``ok`` if one was applied, ``fail`` if one was
    refused (and so none was), ``info`` if no attempt was answered."""
    outcomes = {attempt.outcome for attempt in attempts}
    if Outcome.OK in outcomes:
        return Outcome.OK
    if Outcome.FAIL in outcomes:
        return Outcome.FAIL
    return Outcome.INFO

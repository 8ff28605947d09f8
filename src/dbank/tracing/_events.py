"""What a trace records: one event of one process, with its Lamport clock value.

The processes are the customers of a scenario and the branches. A customer request (a
scenario event) is followed through the real protocol, step by step::

    customer c   REQUEST_SENT           to branch b
    branch b     REQUEST_RECEIVED       from customer c
    branch b     EXECUTED               the request's op committed (or its answer decided)
    branch b     PROPAGATION_SENT       to branch p: the op in a replication batch
    branch p     PROPAGATION_RECEIVED   from branch b
    branch p     PROPAGATION_EXECUTED   the op durable at p (p then acknowledges the batch)
    branch b     ACK_RECEIVED           from branch p: p's acknowledgement of that batch
    branch b     REPLY_SENT             to customer c

A query stops after its execution. Sends and receives of other messages (a customer's
receipt of the reply, a branch's acknowledgement itself) tick the clocks but are not
recorded: no output shape prints them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Role", "Step", "TraceEvent"]


class Role(StrEnum):
    """The kind of process an event happened at."""

    CUSTOMER = "customer"
    BRANCH = "branch"


class Step(StrEnum):
    """Which step of a customer request an event is (see the module's docstring)."""

    REQUEST_SENT = "request_sent"
    REQUEST_RECEIVED = "request_received"
    EXECUTED = "executed"
    PROPAGATION_SENT = "propagation_sent"
    PROPAGATION_RECEIVED = "propagation_received"
    PROPAGATION_EXECUTED = "propagation_executed"
    ACK_RECEIVED = "ack_received"
    REPLY_SENT = "reply_sent"


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One recorded event.

    Attributes:
        role, pid: the process it happened at: customer ``pid`` or branch ``pid``.
        clock: the process's Lamport clock value at the event.
        request: the customer request it belongs to (the scenario's event id).
        interface: what the request asks: ``deposit``, ``withdraw`` or ``query``.
        step: which step of the request it is.
        peer: the process at the other end of a send or receive (a branch for a
            customer, a customer for ``REQUEST_RECEIVED`` and ``REPLY_SENT``, else a
            branch); ``None`` for a local step.
    """

    role: Role
    pid: int
    clock: int
    request: int
    interface: str
    step: Step
    peer: int | None = None

    def to_line(self) -> str:
        """The event as one line of JSON (without the newline)."""
        fields = [self.role.value, self.pid, self.clock, self.request, self.interface]
        return json.dumps([*fields, self.step.value, self.peer])

    @classmethod
    def from_line(cls, line: str) -> TraceEvent:
        """The event ``to_line`` wrote.

        Raises:
            ValueError: the line is not one.
        """
        try:
            role, pid, clock, request, interface, step, peer = json.loads(line)
            event = cls(Role(role), pid, clock, request, interface, Step(step), peer)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not a trace event: {line[:80]!r}") from exc
        numbers = (pid, clock, request) if peer is None else (pid, clock, request, peer)
        if not isinstance(interface, str) or not all(type(n) is int for n in numbers):
            raise ValueError(f"not a trace event: {line[:80]!r}")
        return event

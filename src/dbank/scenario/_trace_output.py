"""A run's Lamport trace written in the shapes of the P2 assignments.

**Fall 2023** (the output of a ``customer-requests`` file) has three parts: the customers'
events, the branches' events, and every event in one flat list::

    customers  {"id": 1, "type": "customer", "events": [{"customer-request-id": 1,
                "logical_clock": 1, "interface": "deposit",
                "comment": "event_sent from customer 1"}]}
    branches   {"id": 1, "type": "branch", "events": [{"customer-request-id": 1,
                "logical_clock": 2, "interface": "deposit",
                "comment": "event_recv from customer 1"}, {..., "interface":
                "propagate_deposit", "comment": "event_sent to branch 2"}, ...]}
    all        {"id": 2, "customer-request-id": 1, "type": "branch", "logical_clock": 5,
                "interface": "propagate_deposit", "comment": "event_recv from branch 1"}

**2022** (``--lamport`` beside a classic file's output): per branch its events, then per
customer request the events of every branch, each named ``INTERFACE_STEP``::

    {"pid": 2, "data": [{"id": 2, "name": "deposit_request", "clock": 2}, ...]}
    {"eventid": 2, "data": [{"clock": 2, "name": "deposit_request"}, ...]}

with the steps ``request``, ``execute``, ``propagate_request`` (received from the
branch that executed it), ``propagate_execute``, ``propagate_response`` (that branch's
acknowledgement, received) and ``response``. Queries are not in it: they change nothing
and go nowhere, and the 2022 shape shows only the requests that propagate.

Each process's events are listed in the order it recorded them, which is the order they
happened in (so a reader can check that its clock increased along them); the flat list
and the per-request lists, which mix processes, are ordered by request, then clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from dbank.scenario._output import JsonObject
from dbank.scenario._scenario import Interface, Scenario
from dbank.tracing import Role, Step, TraceEvent

__all__ = ["Fall2023Trace", "classic_trace", "fall_2023_trace"]

_FALL_2023_STEPS = frozenset(
    {Step.REQUEST_SENT, Step.REQUEST_RECEIVED, Step.PROPAGATION_SENT, Step.PROPAGATION_RECEIVED}
)
_CLASSIC_NAMES = {
    Step.REQUEST_RECEIVED: "request",
    Step.EXECUTED: "execute",
    Step.PROPAGATION_RECEIVED: "propagate_request",
    Step.PROPAGATION_EXECUTED: "propagate_execute",
    Step.ACK_RECEIVED: "propagate_response",
    Step.REPLY_SENT: "response",
}


class Fall2023Trace(NamedTuple):
    """The three parts of a Fall 2023 trace, each a JSON document."""

    customer_events: list[JsonObject]
    branch_events: list[JsonObject]
    all_events: list[JsonObject]


def fall_2023_trace(scenario: Scenario, events: Sequence[TraceEvent]) -> Fall2023Trace:
    """The Fall 2023 trace of a run of ``scenario`` that recorded ``events`` (each
    process's in the order it recorded them): its customers in input order, its branches
    by id, each listed even without events."""
    shown = [e for e in events if e.step in _FALL_2023_STEPS]
    customer_ids = list(dict.fromkeys(customer.id for customer in scenario.customers))
    customers = [_process(Role.CUSTOMER, pid, shown) for pid in customer_ids]
    branches = [_process(Role.BRANCH, pid, shown) for pid in sorted(scenario.branches)]
    flat = [
        {"id": e.pid, "customer-request-id": e.request, "type": e.role.value, **_fall_2023(e)}
        for e in sorted(shown, key=_by_request)
    ]
    return Fall2023Trace(customers, branches, flat)


def classic_trace(scenario: Scenario, events: Sequence[TraceEvent]) -> list[JsonObject]:
    """The 2022 trace of a run of ``scenario`` that recorded ``events`` (each process's in
    the order it recorded them): its branches by id, then its requests by id."""
    shown = [
        e
        for e in events
        if e.step in _CLASSIC_NAMES and e.role is Role.BRANCH and e.interface != Interface.QUERY
    ]
    document: list[JsonObject] = []
    for pid in sorted(scenario.branches):
        data = [
            {"id": e.request, "name": _classic_name(e), "clock": e.clock}
            for e in shown
            if e.pid == pid
        ]
        document.append({"pid": pid, "data": data})
    for request in sorted({e.request for e in shown}):
        theirs = sorted((e for e in shown if e.request == request), key=_by_clock)
        data = [{"clock": e.clock, "name": _classic_name(e)} for e in theirs]
        document.append({"eventid": request, "data": data})
    return document


def _process(role: Role, pid: int, shown: list[TraceEvent]) -> JsonObject:
    mine = [
        {"customer-request-id": e.request, **_fall_2023(e)}
        for e in shown
        if e.role is role and e.pid == pid
    ]
    return {"id": pid, "type": role.value, "events": mine}


def _fall_2023(event: TraceEvent) -> JsonObject:
    match event.step:
        case Step.REQUEST_SENT:
            interface, comment = event.interface, f"event_sent from customer {event.pid}"
        case Step.REQUEST_RECEIVED:
            interface, comment = event.interface, f"event_recv from customer {event.peer}"
        case Step.PROPAGATION_SENT:
            interface, comment = (
                f"propagate_{event.interface}",
                f"event_sent to branch {event.peer}",
            )
        case _:
            interface, comment = (
                f"propagate_{event.interface}",
                f"event_recv from branch {event.peer}",
            )
    return {"logical_clock": event.clock, "interface": interface, "comment": comment}


def _classic_name(event: TraceEvent) -> str:
    return f"{event.interface}_{_CLASSIC_NAMES[event.step]}"


def _by_clock(event: TraceEvent) -> tuple[int, int, int]:
    return event.clock, event.role is Role.BRANCH, event.pid


def _by_request(event: TraceEvent) -> tuple[int, int, int, int]:
    return event.request, *_by_clock(event)

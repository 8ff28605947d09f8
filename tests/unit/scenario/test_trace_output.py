"""The P2 trace shapes, written from the events of a small run recorded by hand.

The run: customer 1 deposits 10 at branch 1, which propagates it to branch 2, then
queries branch 2. Its events are what the recorders write for it, in their order.
"""

from __future__ import annotations

from dbank.scenario import (
    Customer,
    Event,
    Interface,
    Scenario,
    Variant,
    classic_trace,
    fall_2023_trace,
)
from dbank.tracing import Role, Step, TraceEvent

C, B = Role.CUSTOMER, Role.BRANCH
SCENARIO = Scenario(
    Variant.P2_FALL_2023,
    400,
    (2, 1),
    (Customer(1, (Event(Interface.DEPOSIT, 10, 1, id=1), Event(Interface.QUERY, 0, 2, id=2))),),
)
EVENTS = [
    TraceEvent(C, 1, 1, 1, "deposit", Step.REQUEST_SENT, 1),
    TraceEvent(C, 1, 10, 2, "query", Step.REQUEST_SENT, 2),
    TraceEvent(B, 1, 2, 1, "deposit", Step.REQUEST_RECEIVED, 1),
    TraceEvent(B, 1, 3, 1, "deposit", Step.EXECUTED),
    TraceEvent(B, 1, 4, 1, "deposit", Step.PROPAGATION_SENT, 2),
    TraceEvent(B, 1, 7, 1, "deposit", Step.ACK_RECEIVED, 2),
    TraceEvent(B, 1, 8, 1, "deposit", Step.REPLY_SENT, 1),
    TraceEvent(B, 2, 5, 1, "deposit", Step.PROPAGATION_RECEIVED, 1),
    TraceEvent(B, 2, 6, 1, "deposit", Step.PROPAGATION_EXECUTED),
    TraceEvent(B, 2, 11, 2, "query", Step.REQUEST_RECEIVED, 1),
    TraceEvent(B, 2, 12, 2, "query", Step.EXECUTED),
    TraceEvent(B, 2, 13, 2, "query", Step.REPLY_SENT, 1),
]


def _f23(request: int, clock: int, interface: str, comment: str) -> dict[str, object]:
    return {
        "customer-request-id": request,
        "logical_clock": clock,
        "interface": interface,
        "comment": comment,
    }


def test_fall_2023_parts() -> None:
    trace = fall_2023_trace(SCENARIO, EVENTS)
    sent, sent_query = (
        _f23(1, 1, "deposit", "event_sent from customer 1"),
        _f23(2, 10, "query", "event_sent from customer 1"),
    )
    at_1 = [
        _f23(1, 2, "deposit", "event_recv from customer 1"),
        _f23(1, 4, "propagate_deposit", "event_sent to branch 2"),
    ]
    at_2 = [
        _f23(1, 5, "propagate_deposit", "event_recv from branch 1"),
        _f23(2, 11, "query", "event_recv from customer 1"),
    ]
    assert trace.customer_events == [{"id": 1, "type": "customer", "events": [sent, sent_query]}]
    assert trace.branch_events == [
        {"id": 1, "type": "branch", "events": at_1},
        {"id": 2, "type": "branch", "events": at_2},
    ]
    flat = [
        (1, "customer", sent),
        (1, "branch", at_1[0]),
        (1, "branch", at_1[1]),
        (2, "branch", at_2[0]),
        (1, "customer", sent_query),
        (2, "branch", at_2[1]),
    ]
    assert trace.all_events == [
        {"id": pid, "customer-request-id": e["customer-request-id"], "type": kind, **e}
        for pid, kind, e in flat
    ]
    assert list(trace.all_events[0]) == [
        "id",
        "customer-request-id",
        "type",
        "logical_clock",
        "interface",
        "comment",
    ]


def test_every_branch_and_customer_is_listed_even_without_events() -> None:
    trace = fall_2023_trace(SCENARIO, [])
    assert trace.customer_events == [{"id": 1, "type": "customer", "events": []}]
    assert [b["id"] for b in trace.branch_events] == [1, 2]
    assert trace.all_events == []


def test_2022_shape_lists_each_branch_then_each_request_without_queries() -> None:
    assert classic_trace(SCENARIO, EVENTS) == [
        {
            "pid": 1,
            "data": [
                {"id": 1, "name": "deposit_request", "clock": 2},
                {"id": 1, "name": "deposit_execute", "clock": 3},
                {"id": 1, "name": "deposit_propagate_response", "clock": 7},
                {"id": 1, "name": "deposit_response", "clock": 8},
            ],
        },
        {
            "pid": 2,
            "data": [
                {"id": 1, "name": "deposit_propagate_request", "clock": 5},
                {"id": 1, "name": "deposit_propagate_execute", "clock": 6},
            ],
        },
        {
            "eventid": 1,
            "data": [
                {"clock": 2, "name": "deposit_request"},
                {"clock": 3, "name": "deposit_execute"},
                {"clock": 5, "name": "deposit_propagate_request"},
                {"clock": 6, "name": "deposit_propagate_execute"},
                {"clock": 7, "name": "deposit_propagate_response"},
                {"clock": 8, "name": "deposit_response"},
            ],
        },
    ]


def test_a_process_keeps_the_order_it_recorded_its_events_in() -> None:
    # Not sorted by clock: a clock that went backwards must stay visible to a checker.
    trace = fall_2023_trace(SCENARIO, [EVENTS[4], EVENTS[2]])
    assert [e["logical_clock"] for e in trace.branch_events[0]["events"]] == [4, 2]
    classic = classic_trace(SCENARIO, [EVENTS[2], EVENTS[5], EVENTS[3]])
    assert [e["clock"] for e in classic[0]["data"]] == [2, 7, 3]

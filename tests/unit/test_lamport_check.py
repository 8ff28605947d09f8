"""The trace checker of the tests (``support.lamport_check``): it passes a trace that the
real recorders wrote, and it fails every kind of broken trace.

The trace is of a bank of three branches where customer 1 deposits at branch 1 and then
customer 2 at branch 2; the recorders are driven the way the protocol drives them, with
the stamps passed along as the messages would carry them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from support.lamport_check import classic_problems, fall_2023_problems

from dbank.ledger import Deposit, Op, OpId, VersionVector
from dbank.ledger.codec import encode_op
from dbank.scenario import (
    Customer,
    Event,
    Fall2023Trace,
    Interface,
    Scenario,
    Variant,
    classic_trace,
    fall_2023_trace,
)
from dbank.tracing import CustomerTrace, lamport_metadata, lamport_of, open_branch_trace, read_trace

BRANCHES = (1, 2, 3)
REQUESTS = ((1, 1, 1), (2, 2, 2))
"""(customer, request, branch): each customer deposits at its own branch."""
SCENARIO = Scenario(
    Variant.P2_FALL_2023,
    300,
    BRANCHES,
    tuple(Customer(c, (Event(Interface.DEPOSIT, 5, b, id=r),)) for c, r, b in REQUESTS),
)


def _record_run(directory: Path) -> None:
    customers = CustomerTrace(directory)
    traces = {i: open_branch_trace(directory, i) for i in BRANCHES}
    for customer, request, branch in REQUESTS:
        origin = traces[branch]
        assert origin is not None
        with customers.request(customer, request, "deposit", branch) as request_id:
            stamp = lamport_of(customers.sending())
            assert stamp is not None
            origin.request_received(stamp, (customer, request), "deposit")
            op = Op(OpId(branch, 1), VersionVector(), 1, request_id, "JPY", Deposit("a", 5))
            for peer in BRANCHES:
                trace = traces[peer]
                if peer == branch or trace is None:
                    continue
                batch = origin.sending([op], peer)
                ack = trace.acking(trace.received([encode_op(op)], batch, branch), branch)
                origin.acked([op], ack, peer)
            reply = origin.replying((customer, request), "deposit", request_id)
            customers.replied(lamport_metadata(reply))
    customers.close()
    for trace in traces.values():
        assert trace is not None
        trace.close()


class Traces(NamedTuple):
    fall_2023: Fall2023Trace
    classic: list[Any]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Traces:
    directory = tmp_path_factory.mktemp("trace")
    _record_run(directory)
    events = read_trace(directory, BRANCHES)
    return Traces(fall_2023_trace(SCENARIO, events), classic_trace(SCENARIO, events))


def _fall_2023(trace: Fall2023Trace) -> list[str]:
    return fall_2023_problems(*trace, branches=BRANCHES, writes=[1, 2])


def _classic(document: list[Any]) -> list[str]:
    return classic_problems(document, branches=BRANCHES, writes=[1, 2])


def test_a_recorded_trace_passes(recorded: Traces) -> None:
    assert _fall_2023(recorded.fall_2023) == []
    assert _classic(recorded.classic) == []


def _branch(trace: Fall2023Trace, pid: int) -> list[dict[str, Any]]:
    return next(b["events"] for b in trace.branch_events if b["id"] == pid)


def _receive_before_send(traces: Traces) -> None:
    trace = traces.fall_2023
    received = next(e for e in _branch(trace, 3) if e["comment"] == "event_recv from branch 1")
    received["logical_clock"] = 1
    _match_flat(trace)


def _clock_goes_back(traces: Traces) -> None:
    trace = traces.fall_2023
    events = _branch(trace, 1)
    events[0], events[1] = events[1], events[0]


def _missing_at_a_branch(traces: Traces) -> None:
    trace = traces.fall_2023
    events = _branch(trace, 3)
    events[:] = [e for e in events if e["customer-request-id"] != 2]
    _match_flat(trace)


def _misspelt(traces: Traces) -> None:
    trace = traces.fall_2023
    trace.all_events[2]["interface"] = "propogate_deposit"


def _flat_list_short(traces: Traces) -> None:
    trace = traces.fall_2023
    del trace.all_events[-1]


def _customer_never_sent(traces: Traces) -> None:
    trace = traces.fall_2023
    trace.customer_events[1]["events"].clear()
    _match_flat(trace)


def _match_flat(trace: Fall2023Trace) -> None:
    """Make the flat list agree with the other parts again, so that only the change made
    to them can be found."""
    trace.all_events[:] = [
        {"id": p["id"], "customer-request-id": e["customer-request-id"], "type": p["type"], **e}
        for part in (trace.customer_events, trace.branch_events)
        for p in part
        for e in p["events"]
    ]


def _data(document: list[Any], pid: int) -> list[dict[str, Any]]:
    return next(entry["data"] for entry in document if entry.get("pid") == pid)


def _sync_requests(document: list[Any]) -> None:
    """Rebuild the per-request lists from the branches' lists."""
    branches = [entry for entry in document if "pid" in entry]
    requests = sorted({e["id"] for b in branches for e in b["data"]})
    document[len(branches) :] = [
        {
            "eventid": r,
            "data": [
                {"clock": e["clock"], "name": e["name"]}
                for b in branches
                for e in b["data"]
                if e["id"] == r
            ],
        }
        for r in requests
    ]


def _propagated_before_executed(traces: Traces) -> None:
    document = traces.classic
    received = next(e for e in _data(document, 2) if e["name"] == "deposit_propagate_request")
    received["clock"] = 1
    _sync_requests(document)


def _ack_before_execution(traces: Traces) -> None:
    document = traces.classic
    acks = [e for e in _data(document, 1) if e["name"] == "deposit_propagate_response"]
    for ack in acks:
        ack["clock"] = 3
    _sync_requests(document)


def _branch_left_out(traces: Traces) -> None:
    document = traces.classic
    _data(document, 3).clear()
    _sync_requests(document)


def _requests_disagree(traces: Traces) -> None:
    document = traces.classic
    document[-1]["data"].pop()


@pytest.mark.parametrize(
    ("breakage", "found"),
    [
        (_receive_before_send, "branch 3, request 1: received from branch 1 at 1"),
        (_clock_goes_back, "branch 1: clock does not strictly increase"),
        (_missing_at_a_branch, "request 2: at branches [1, 2], not at [1, 2, 3]"),
        (_misspelt, "spelled 'propogate_'"),
        (_flat_list_short, "the flat list does not hold exactly"),
        (_customer_never_sent, "received from customer 2 at"),
        (_propagated_before_executed, "request 1: at branch 2 propagate_request [1]"),
        (_ack_before_execution, "branch 1: clock does not strictly increase"),
        (_ack_before_execution, "request 1: acks at [3, 3]"),
        (_branch_left_out, "not at every one of [1, 2, 3]"),
        (_requests_disagree, "per-request lists do not hold exactly"),
    ],
)
def test_a_broken_trace_fails(
    recorded: Traces, breakage: Callable[[Traces], None], found: str
) -> None:
    traces = copy.deepcopy(recorded)
    breakage(traces)
    problems = _fall_2023(traces.fall_2023) + _classic(traces.classic)
    assert any(found in problem for problem in problems), problems

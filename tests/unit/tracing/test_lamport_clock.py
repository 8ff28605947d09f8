"""The Lamport clock, the event lines, and the tags that carry a request on the wire."""

from __future__ import annotations

import uuid

import pytest

from dbank.tracing import (
    LamportClock,
    Role,
    Step,
    TraceEvent,
    customer_request_of,
    lamport_metadata,
    lamport_of,
    request_of,
    tagged_request_id,
)


def test_a_tick_takes_the_next_value() -> None:
    clock = LamportClock()
    assert clock.time == 0
    assert [clock.tick(), clock.tick(), clock.tick()] == [1, 2, 3]
    assert clock.time == 3


def test_a_receive_lands_after_the_send_and_after_every_earlier_event() -> None:
    clock = LamportClock()
    assert clock.receive(7) == 8  # the sender was ahead
    clock.tick()
    assert clock.receive(2) == 10  # this process was ahead
    assert clock.receive(10) == 11  # equal: still strictly after both


def test_an_event_survives_its_line() -> None:
    events = [
        TraceEvent(Role.BRANCH, 2, 5, 1, "deposit", Step.PROPAGATION_RECEIVED, 1),
        TraceEvent(Role.CUSTOMER, 1, 1, 0, "query", Step.REQUEST_SENT, 3),
        TraceEvent(Role.BRANCH, 3, 9, 4, "withdraw", Step.EXECUTED),
    ]
    for event in events:
        assert TraceEvent.from_line(event.to_line()) == event


@pytest.mark.parametrize(
    "line",
    [
        "",
        "{}",
        '["branch", 1, 2, 3, "deposit", "executed"]',
        '["teller", 1, 2, 3, "deposit", "executed", null]',
        '["branch", 1, 2, 3, "deposit", "sleeping", null]',
        '["branch", "1", 2, 3, "deposit", "executed", null]',
        '["branch", 1, 2.5, 3, "deposit", "executed", null]',
        '["branch", 1, 2, 3, 4, "executed", null]',
    ],
)
def test_a_line_that_is_not_an_event_is_refused(line: str) -> None:
    with pytest.raises(ValueError, match="not a trace event"):
        TraceEvent.from_line(line)


def test_a_tagged_request_id_gives_back_its_request_and_is_fresh_each_time() -> None:
    first, second = tagged_request_id(42), tagged_request_id(42)
    assert first != second
    assert request_of(first) == request_of(second) == 42
    assert request_of(tagged_request_id(0)) == 0
    assert 1 <= len(tagged_request_id(10**17).encode()) <= 64


@pytest.mark.parametrize("request_id", [str(uuid.uuid4()), "", "cr1", "cr-1-" + "0" * 32])
def test_other_request_ids_are_not_traced(request_id: str) -> None:
    assert request_of(request_id) is None


def test_metadata_carries_a_stamp_and_a_customer_request() -> None:
    metadata = [*lamport_metadata(12), ("dbank-customer-request", "3/7"), ("other", b"x")]
    assert lamport_of(metadata) == 12
    assert customer_request_of(metadata) == (3, 7)
    assert lamport_of(None) is None
    assert customer_request_of([]) is None


@pytest.mark.parametrize("stamp", ["", "-1", "1.5", "²", "x"])
def test_a_malformed_stamp_is_no_stamp(stamp: str) -> None:
    assert lamport_of([("dbank-lamport", stamp)]) is None


@pytest.mark.parametrize("value", ["3", "3/", "/7", "3/x", "a/7", "3-7"])
def test_a_malformed_customer_request_is_none(value: str) -> None:
    assert customer_request_of([("dbank-customer-request", value)]) is None

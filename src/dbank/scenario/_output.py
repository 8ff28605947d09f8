"""Writing the results of a run as the output document of the input's variant.

The shapes, one element per customer entry unless said otherwise::

    P1 classic     {"id": 2, "recv": [{"interface": "deposit", "result": "success"},
                                      {"interface": "query", "result": "success", "money": 570}]}
    P1 Fall 2023   {"id": 2, "recv": [{"interface": "deposit", "result": "success"},
                                      {"interface": "query", "balance": 570}]}
    P3 classic     {"id": 1, "balance": 400}      the balance of the entry's last query;
                                                  an entry without a query is left out
    P3 Fall 2023   {"id": 1, "recv": [{"interface": "query", "balance": 400, "branch": 2}]}
                                                  one element per event, not per entry

P2 Fall 2023 output is a Lamport-clock trace, which the results do not hold: it is written
from a traced run's events (``_trace_output``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from dbank.scenario._results import EventResult
from dbank.scenario._scenario import Customer, Interface, Scenario, Variant

__all__ = ["JsonObject", "build_output", "render_output"]

JsonObject = dict[str, object]
"""One JSON object of the output document, ready for ``json.dumps``."""

_Answered = list[tuple[Customer, list[EventResult]]]


def build_output(scenario: Scenario, results: Sequence[EventResult]) -> list[JsonObject]:
    """The output document of ``scenario`` in its own variant.

    Args:
        scenario: the scenario that ran.
        results: one result per event of ``scenario.events``, in that order.

    Raises:
        ValueError: ``results`` are not the results of ``scenario.events``, one each in order.
        NotImplementedError: the variant's output is a Lamport trace (P2 Fall 2023).
    """
    answered = _answered(scenario, results)
    match scenario.variant:
        case Variant.P1_CLASSIC:
            return _per_entry(answered, _p1_classic)
        case Variant.P1_FALL_2023:
            return _per_entry(answered, _fall_2023)
        case Variant.P3_CLASSIC:
            return _last_balances(answered)
        case Variant.P3_FALL_2023:
            return _per_event(answered)
        case Variant.P2_FALL_2023:
            raise NotImplementedError(
                "P2 Fall 2023 output is a Lamport-clock trace: see fall_2023_trace"
            )


def render_output(document: list[JsonObject]) -> str:
    """The output document as text: two-space indents and a final newline, like the
    conformance files."""
    return json.dumps(document, indent=2) + "\n"


def _answered(scenario: Scenario, results: Sequence[EventResult]) -> _Answered:
    """Each customer entry with the results of its own events."""
    events = scenario.events
    if len(results) != len(events):
        raise ValueError(f"{len(results)} results for {len(events)} events")
    for position, (result, event) in enumerate(zip(results, events, strict=True)):
        if result.event != event:
            raise ValueError(f"result {position} answers {result.event}, not {event}")
    answered: _Answered = []
    start = 0
    for customer in scenario.customers:
        end = start + len(customer.events)
        answered.append((customer, list(results[start:end])))
        start = end
    return answered


def _per_entry(answered: _Answered, row: Callable[[EventResult], JsonObject]) -> list[JsonObject]:
    return [
        {"id": customer.id, "recv": [row(result) for result in rs]} for customer, rs in answered
    ]


def _p1_classic(result: EventResult) -> JsonObject:
    if result.event.interface is Interface.QUERY:
        return {"interface": "query", "result": "success", "money": result.balance}
    return {"interface": result.event.interface.value, "result": result.result}


def _fall_2023(result: EventResult) -> JsonObject:
    if result.event.interface is Interface.QUERY:
        return {"interface": "query", "balance": result.balance}
    return {"interface": result.event.interface.value, "result": result.result}


def _last_balances(answered: _Answered) -> list[JsonObject]:
    document: list[JsonObject] = []
    for customer, results in answered:
        balances = [result.balance for result in results if result.balance is not None]
        if balances:
            document.append({"id": customer.id, "balance": balances[-1]})
    return document


def _per_event(answered: _Answered) -> list[JsonObject]:
    return [
        {"id": customer.id, "recv": [{**_fall_2023(result), "branch": result.branch}]}
        for customer, results in answered
        for result in results
    ]

"""The reference model's rules and the output shapes, on small hand-made scenarios."""

from __future__ import annotations

import json

import pytest

from dbank.scenario import (
    Customer,
    Event,
    EventResult,
    Interface,
    Scenario,
    Variant,
    build_output,
    render_output,
    run_model,
)

Q, D, W = Interface.QUERY, Interface.DEPOSIT, Interface.WITHDRAW


def scenario(variant: Variant, *customers: Customer, opening: int = 100) -> Scenario:
    return Scenario(variant, opening, (1, 2), customers)


def test_a_withdraw_larger_than_the_balance_fails_and_changes_nothing() -> None:
    events = (Event(W, 101, 1), Event(Q, 0, 2), Event(W, 100, 2), Event(Q, 0, 1))
    results = run_model(scenario(Variant.P1_FALL_2023, Customer(1, events)))
    assert results == [
        EventResult(events[0], "failure"),
        EventResult(events[1], "success", 100),
        EventResult(events[2], "success"),
        EventResult(events[3], "success", 0),
    ]


def test_deposits_always_succeed_and_every_event_sees_every_earlier_one() -> None:
    first = Customer(1, (Event(D, 50, 1),))
    second = Customer(2, (Event(Q, 0, 2), Event(D, 1, 2), Event(Q, 0, 2)))
    results = run_model(scenario(Variant.P1_FALL_2023, first, second, opening=0))
    assert [(r.result, r.balance) for r in results] == [
        ("success", None),
        ("success", 50),
        ("success", None),
        ("success", 51),
    ]


def test_p1_classic_output_prints_failures_and_query_money() -> None:
    s = scenario(Variant.P1_CLASSIC, Customer(2, (Event(W, 500, 2), Event(Q, 0, 2))))
    assert build_output(s, run_model(s)) == [
        {
            "id": 2,
            "recv": [
                {"interface": "withdraw", "result": "failure"},
                {"interface": "query", "result": "success", "money": 100},
            ],
        }
    ]


def test_p3_classic_output_is_the_last_query_of_each_entry_that_queried() -> None:
    s = scenario(
        Variant.P3_CLASSIC,
        Customer(7, (Event(Q, 0, 1), Event(D, 5, 2), Event(Q, 0, 2), Event(D, 5, 1))),
        Customer(8, (Event(D, 5, 1),)),
    )
    assert build_output(s, run_model(s)) == [{"id": 7, "balance": 105}]


def test_p3_fall_2023_output_is_one_element_per_event_with_its_branch() -> None:
    s = scenario(Variant.P3_FALL_2023, Customer(7, (Event(W, 500, 2), Event(Q, 0, 1))))
    assert build_output(s, run_model(s)) == [
        {"id": 7, "recv": [{"interface": "withdraw", "result": "failure", "branch": 2}]},
        {"id": 7, "recv": [{"interface": "query", "balance": 100, "branch": 1}]},
    ]


def test_p2_fall_2023_output_is_a_trace_not_written_here() -> None:
    s = scenario(Variant.P2_FALL_2023, Customer(1, (Event(D, 5, 1, id=1),)))
    with pytest.raises(NotImplementedError, match="Lamport"):
        build_output(s, run_model(s))


def test_results_must_be_the_scenarios_events_in_order() -> None:
    events = (Event(D, 5, 1), Event(D, 6, 1))
    s = scenario(Variant.P1_FALL_2023, Customer(1, events))
    results = run_model(s)
    with pytest.raises(ValueError, match="1 results for 2 events"):
        build_output(s, results[:1])
    with pytest.raises(ValueError, match="result 0 answers"):
        build_output(s, results[::-1])


@pytest.mark.parametrize(
    ("event", "result", "balance"),
    [
        (Event(Q, 0, 1), "success", None),
        (Event(Q, 0, 1), "failure", 5),
        (Event(D, 5, 1), "success", 5),
        (Event(W, 5, 1), "maybe", None),
    ],
)
def test_contradictory_results_are_refused(event: Event, result: str, balance: int | None) -> None:
    with pytest.raises(ValueError, match=r"query|balance|result"):
        EventResult(event, result, balance)  # type: ignore[arg-type]


def test_render_output_is_two_space_json_with_a_final_newline() -> None:
    document: list[dict[str, object]] = [{"id": 1, "balance": 0}]
    assert render_output(document) == '[\n  {\n    "id": 1,\n    "balance": 0\n  }\n]\n'
    assert json.loads(render_output(document)) == document

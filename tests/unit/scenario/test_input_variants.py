"""Reading each variant into one ``Scenario``: detection, branches, ids, placeholders."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from dbank.scenario import Customer, Event, Interface, Scenario, Variant, load_scenario

Q, D, W = Interface.QUERY, Interface.DEPOSIT, Interface.WITHDRAW


def load(tmp_path: Path, entries: list[object]) -> Scenario:
    path = tmp_path / "input.json"
    path.write_text(json.dumps(entries))
    return load_scenario(path)


def branches(*ids: int, balance: int = 100) -> list[object]:
    return [{"id": i, "type": "branch", "balance": balance} for i in ids]


def test_p1_classic_drops_the_query_placeholder(tmp_path: Path) -> None:
    scenario = load(
        tmp_path,
        [
            {
                "id": 12,
                "type": "customer",
                "events": [
                    {"id": 1, "interface": "query", "money": 999},
                    {"id": 2, "interface": "withdraw", "money": 30},
                ],
            },
            *branches(7, 3, 12),
        ],
    )
    assert scenario == Scenario(
        variant=Variant.P1_CLASSIC,
        opening_balance=100,
        branches=(7, 3, 12),
        customers=(Customer(12, (Event(Q, 0, 12, id=1), Event(W, 30, 12, id=2))),),
    )


def test_p1_fall_2023_events_run_at_the_customer_entrys_branch(tmp_path: Path) -> None:
    scenario = load(
        tmp_path,
        [
            *branches(1, 2),
            {"id": 2, "type": "customer", "events": [{"interface": "deposit", "money": 5}]},
            {"id": 1, "type": "customer", "events": [{"id": 9, "interface": "query"}]},
        ],
    )
    assert scenario.variant is Variant.P1_FALL_2023
    assert scenario.customers == (
        Customer(2, (Event(D, 5, 2, id=None),)),
        Customer(1, (Event(Q, 0, 1, id=9),)),
    )


def test_p2_fall_2023_ids_are_customer_request_ids(tmp_path: Path) -> None:
    request = {"customer-request-id": 4, "interface": "withdraw", "money": 10}
    scenario = load(
        tmp_path, [*branches(1), {"id": 1, "type": "customer", "customer-requests": [request]}]
    )
    assert scenario.variant is Variant.P2_FALL_2023
    assert scenario.events == (Event(W, 10, 1, id=4),)


@pytest.mark.parametrize(
    ("member", "variant"), [("dest", Variant.P3_CLASSIC), ("branch", Variant.P3_FALL_2023)]
)
def test_p3_events_name_their_branch_and_customers_are_not_branches(
    tmp_path: Path, member: str, variant: Variant
) -> None:
    events = [
        {"id": 1, "interface": "deposit", "money": 400, member: 5},
        {"id": 2, "interface": "query", member: 6},
    ]
    scenario = load(tmp_path, [{"id": 42, "type": "customer", "events": events}, *branches(5, 6)])
    assert scenario.variant is variant
    assert scenario.customers == (Customer(42, (Event(D, 400, 5, id=1), Event(Q, 0, 6, id=2))),)


def test_repeated_customer_and_event_ids_are_kept_as_listed(tmp_path: Path) -> None:
    same = {"id": 3, "interface": "query"}
    entry = {"id": 1, "type": "customer", "events": [same, same]}
    scenario = load(tmp_path, [*branches(1), entry, entry])
    assert [c.id for c in scenario.customers] == [1, 1]
    assert len(scenario.events) == 4


def test_a_file_with_only_branches_is_a_scenario_without_customers(tmp_path: Path) -> None:
    scenario = load(tmp_path, branches(1, 2, balance=0))
    assert scenario == Scenario(Variant.P1_FALL_2023, 0, (1, 2), ())


def test_a_scenario_is_frozen(tmp_path: Path) -> None:
    scenario = load(tmp_path, branches(1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        scenario.opening_balance = 5  # type: ignore[misc]


def test_variant_names_for_people() -> None:
    assert [v.display_name for v in Variant] == [
        "P1 classic",
        "P1 Fall 2023",
        "P2 Fall 2023",
        "P3 classic",
        "P3 Fall 2023",
    ]

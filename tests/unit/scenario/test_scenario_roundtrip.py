"""Properties: every valid scenario survives being written as its variant's file and read
back; the reference model and the output agree on the document's shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scenario_support import input_document, scenarios

from dbank.scenario import (
    Customer,
    Interface,
    Scenario,
    Variant,
    build_output,
    load_scenario,
    run_model,
)

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scenarios")


@PROPERTY_SETTINGS
@given(
    scenario=scenarios(),
    branches_at=st.lists(st.booleans(), max_size=12),
    indent=st.sampled_from([None, 0, 2, 4, "\t"]),
)
def test_a_written_scenario_loads_back_equal(
    workdir: Path, scenario: Scenario, branches_at: list[bool], indent: int | str | None
) -> None:
    path = workdir / "input.json"
    path.write_text(json.dumps(input_document(scenario, branches_at), indent=indent))
    assert load_scenario(path) == scenario


@PROPERTY_SETTINGS
@given(scenario=scenarios())
def test_the_output_has_one_element_per_entry_or_per_event(scenario: Scenario) -> None:
    results = run_model(scenario)
    assert [result.event for result in results] == list(scenario.events)
    if scenario.variant is Variant.P2_FALL_2023:
        return
    document = build_output(scenario, results)
    json.dumps(document)  # plain JSON values only
    if scenario.variant in (Variant.P1_CLASSIC, Variant.P1_FALL_2023):
        shape = [(element["id"], _length(element["recv"])) for element in document]
        assert shape == [(c.id, len(c.events)) for c in scenario.customers]
    elif scenario.variant is Variant.P3_FALL_2023:
        assert len(document) == len(scenario.events)
    else:
        queried = [c for c in scenario.customers if Interface.QUERY in _interfaces(c)]
        assert [element["id"] for element in document] == [c.id for c in queried]


def _length(value: object) -> int:
    assert isinstance(value, list)
    return len(value)


def _interfaces(customer: Customer) -> set[Interface]:
    return {event.interface for event in customer.events}

"""The public conformance cases against the reference model.

For every case with an ``expected.json`` (P1 and P3), reading the input, running the
reference model and writing the output gives the expected document, compared as parsed
JSON and also byte for byte (the expected files are two-space JSON). P2 inputs are read and
recognised here; their Lamport traces come from real runs (``test_lamport_traces``).

Cases live in ``cases/<case>/``, copied verbatim (``cases/PROVENANCE.md``); a new folder
there is picked up without editing this file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbank.scenario import Variant, build_output, load_scenario, render_output, run_model

CASES = Path(__file__).parent / "cases"
WITH_EXPECTED = sorted(p.parent.name for p in CASES.glob("*/expected.json"))
ALL_CASES = sorted(p.parent.name for p in CASES.glob("*/input.json"))

VARIANTS = {
    "p1-classic": Variant.P1_CLASSIC,
    "p1-fall2023-50": Variant.P1_FALL_2023,
    "p1-fall2023-small": Variant.P1_FALL_2023,
    "p2-classic": Variant.P1_CLASSIC,  # P2 classic input is spelled like P1 classic
    "p2-fall2023": Variant.P2_FALL_2023,
    "p3-classic-monotonic-writes": Variant.P3_CLASSIC,
    "p3-classic-read-your-writes": Variant.P3_CLASSIC,
    "p3-fall2023": Variant.P3_FALL_2023,
    "p3-fall2023-walk": Variant.P3_FALL_2023,
}


def test_every_case_is_known() -> None:
    assert sorted(VARIANTS) == ALL_CASES


@pytest.mark.parametrize("case", ALL_CASES)
def test_the_input_loads_as_its_variant(case: str) -> None:
    scenario = load_scenario(CASES / case / "input.json")
    assert scenario.variant is VARIANTS[case]
    assert scenario.events, "every public case has events"


@pytest.mark.parametrize("case", WITH_EXPECTED)
def test_the_model_gives_the_expected_output(case: str) -> None:
    scenario = load_scenario(CASES / case / "input.json")
    expected_text = (CASES / case / "expected.json").read_text()
    document = build_output(scenario, run_model(scenario))
    assert document == json.loads(expected_text)
    assert render_output(document) == expected_text

"""The P2 cases played by ``dbank run`` on real branches, their traces checked by the rules.

``p2-fall2023`` (``customer-requests``): the output is the flat list of every event, and
``--trace-dir`` holds all three parts. ``p2-classic`` (spelled like P1 classic): the
output is the usual one, and ``--lamport`` writes the 2022-shape trace beside it. Both run
with forked branch processes and with ``--in-process``. Clock values differ from run to
run; what is checked is that the trace obeys the rules (``support.lamport_check``) and
holds every request's events.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.lamport_check import classic_problems, fall_2023_problems
from test_run_conformance import CASES, dbank_run

from dbank.scenario import Interface, Scenario, build_output, load_scenario, run_model

MODES = [pytest.param((), id="forked"), pytest.param(("--in-process",), id="in-process")]


def _writes(scenario: Scenario) -> list[int]:
    """The requests that change the balance, which every branch must see."""
    return [
        result.event.id
        for result in run_model(scenario)
        if result.event.interface is not Interface.QUERY
        and result.result == "success"
        and result.event.id is not None
    ]


@pytest.mark.parametrize("mode", MODES)
def test_p2_fall_2023_writes_its_trace(mode: tuple[str, ...], tmp_path: Path) -> None:
    case = CASES / "p2-fall2023" / "input.json"
    scenario = load_scenario(case)
    trace_dir, output = tmp_path / "trace", tmp_path / "output.json"
    done = dbank_run(case, "-o", output, "--trace-dir", trace_dir, *mode)
    assert done.returncode == 0, done.stderr
    parts = [
        json.loads((trace_dir / name).read_text())
        for name in ("customer-events.json", "branch-events.json", "all-events.json")
    ]
    assert json.loads(output.read_text()) == parts[2]
    problems = fall_2023_problems(*parts, branches=scenario.branches, writes=_writes(scenario))
    assert problems == []
    sent = [e["customer-request-id"] for c in parts[0] for e in c["events"]]
    assert sent == [event.id for event in scenario.events]  # each request sent once, in order


def test_p2_fall_2023_without_a_trace_dir_prints_the_flat_list() -> None:
    done = dbank_run(CASES / "p2-fall2023" / "input.json")
    assert done.returncode == 0, done.stderr
    flat = json.loads(done.stdout)
    assert {e["customer-request-id"] for e in flat} == set(range(1, 7))
    assert {e["type"] for e in flat} == {"customer", "branch"}


@pytest.mark.parametrize("mode", MODES)
def test_p2_classic_writes_the_2022_trace_beside_its_output(
    mode: tuple[str, ...], tmp_path: Path
) -> None:
    case = CASES / "p2-classic" / "input.json"
    scenario = load_scenario(case)
    output, lamport = tmp_path / "output.json", tmp_path / "lamport.json"
    done = dbank_run(case, "-o", output, "--lamport", lamport, *mode)
    assert done.returncode == 0, done.stderr
    assert json.loads(output.read_text()) == build_output(scenario, run_model(scenario))
    trace = json.loads(lamport.read_text())
    writes = _writes(scenario)
    assert classic_problems(trace, branches=scenario.branches, writes=writes) == []
    assert [entry["eventid"] for entry in trace if "eventid" in entry] == writes

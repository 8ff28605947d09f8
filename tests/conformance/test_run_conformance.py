"""The public conformance cases played by ``dbank run`` on real branches.

For every case with an ``expected.json`` (P1 and P3), ``dbank run`` as a real subprocess
(one forked process per branch) writes the expected document, compared as parsed JSON and
byte for byte; one case also runs with ``--in-process``, and one writes to standard output.
A new case folder in ``cases/`` is picked up without editing this file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CASES = Path(__file__).parent / "cases"
WITH_EXPECTED = sorted(p.parent.name for p in CASES.glob("*/expected.json"))

DEADLINE = 120.0
"""Generous: the 50-branch case takes about ten seconds on two idle cores."""


def dbank_run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dbank", "run", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )


@pytest.mark.parametrize("case", WITH_EXPECTED)
def test_dbank_run_writes_the_expected_output(case: str, tmp_path: Path) -> None:
    output = tmp_path / "output.json"
    done = dbank_run(CASES / case / "input.json", "-o", output)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    expected = (CASES / case / "expected.json").read_text()
    assert json.loads(output.read_text()) == json.loads(expected)
    assert output.read_text() == expected


def test_in_process_branches_write_the_same_output() -> None:
    case = CASES / "p3-fall2023-walk"  # ten branches, sixty events
    done = dbank_run(case / "input.json", "--in-process")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (case / "expected.json").read_text()


def test_without_o_the_output_goes_to_standard_output() -> None:
    done = dbank_run(CASES / "p1-classic" / "input.json")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (CASES / "p1-classic" / "expected.json").read_text()

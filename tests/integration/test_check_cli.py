"""``dbank check --processes``: a short run on real branch processes under faults, its
verdicts, its report and its pictures; and its flags' mistakes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DBANK = [sys.executable, "-m", "dbank"]
CHECKERS = [
    "no_negative",
    "read_totals",
    "sessions",
    "final_balances",
    "no_duplicates",
    "acknowledged_everywhere",
    "converged",
]


def test_a_short_run_under_faults_passes_every_check_and_writes_its_report(
    tmp_path: Path,
) -> None:
    report = tmp_path / "report"
    done = subprocess.run(
        [*DBANK, "check", "--processes", "--duration", "8", "--seed", "3", "--report", report],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "--seed 3" in done.stderr
    summary = json.loads((report / "report.json").read_text())
    assert summary["ok"] is True
    assert [v["name"] for v in summary["verdicts"]] == CHECKERS
    assert all(v["ok"] and v["checked"] > 0 for v in summary["verdicts"])
    assert summary["faults"], "the schedule injected no fault"
    assert summary["operations"]["transfer"]["ok"] > 0
    history = json.loads((report / "history.json").read_text())
    assert len(history["operations"]) == sum(
        n for outcomes in summary["operations"].values() for n in outcomes.values()
    )
    for picture in ("latency.png", "throughput.png", "totals.png"):
        assert (report / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in CHECKERS:
        assert name in done.stdout


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ([], "--processes"),
        (["--processes", "--branches", "1"], "--branches"),
        (["--processes", "--duration", "1"], "--duration"),
        (["--processes", "--seed", "-4"], "--seed"),
    ],
)
def test_a_mistake_in_the_flags_is_one_line_and_status_2(args: list[str], said: str) -> None:
    done = subprocess.run([*DBANK, "check", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert said in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr

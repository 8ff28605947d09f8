"""``dbank run``'s trace flags refused before anything starts: one line, exit status 2."""

from __future__ import annotations

from pathlib import Path

from test_run import run

CASES = Path(__file__).resolve().parents[1] / "conformance" / "cases"


def test_lamport_with_a_fall_2023_trace_input_is_refused(tmp_path: Path) -> None:
    case = CASES / "p2-fall2023" / "input.json"
    done = run(case, "--lamport", tmp_path / "lamport.json")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: --lamport: {case} is P2 Fall 2023 input")
    assert not (tmp_path / "lamport.json").exists()


def test_a_trace_dir_that_cannot_be_made_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    trace_dir = tmp_path / "file" / "trace"
    done = run(CASES / "p2-fall2023" / "input.json", "--trace-dir", trace_dir)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"error: {trace_dir}: cannot write a trace there: Not a directory\n"

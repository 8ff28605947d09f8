"""``dbank run`` as a user runs it: a real subprocess that forks real branch processes.

Bad files stop before anything starts; a run ends with no process left behind however it
ends (a branch killed mid-run, Ctrl-C, SIGTERM, the runner itself killed); random small
scenarios give what the reference model gives.

"No process left behind" is checked without psutil, two ways: the runner's ``--verbose``
lines name every branch's pid, and each must be gone; and no process may remain whose
command line holds the test's own input file (forked children keep the runner's command
line, so this also finds a child whose pid was never printed).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbank.scenario import build_output, load_scenario, run_model

DBANK_RUN = (sys.executable, "-m", "dbank", "run")
DEADLINE = 30.0
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "p1-classic" / "input.json"


def write_scenario(path: Path, branches: list[int], events: int, balance: int = 400) -> Path:
    """A P1 Fall 2023 file: ``events`` customer entries, a deposit and a query each,
    spread over the branches."""
    document: list[object] = [{"id": i, "type": "branch", "balance": balance} for i in branches]
    for n in range(events):
        steps = [{"interface": "deposit", "money": 1 + n % 7}, {"interface": "query"}]
        document.append({"id": branches[n % len(branches)], "type": "customer", "events": steps})
    path.write_text(json.dumps(document))
    return path


def run(*args: str | Path, timeout: float = DEADLINE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DBANK_RUN, *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


class Runner:
    """A ``dbank run --verbose`` in the background, read line by line from its stderr.

    Its stores go next to the input file, not to a temporary directory of its own, which
    a runner killed outright could not remove."""

    def __init__(self, input_path: Path) -> None:
        self.marker = str(input_path)
        data = input_path.parent / f"{input_path.stem}-data"
        self.process = subprocess.Popen(
            [*DBANK_RUN, "--verbose", str(input_path), "--data", str(data)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.pids: dict[int, int] = {}
        self.lines: list[str] = []
        self._buffer = b""

    def wait_for_line(self, prefix: str, deadline: float = DEADLINE) -> str:
        """Read stderr until a line starts with ``prefix``; note branch pids on the way."""
        assert self.process.stderr is not None
        fd = self.process.stderr.fileno()
        end = time.monotonic() + deadline
        while True:
            while b"\n" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\n", 1)
                line = raw.decode()
                self.lines.append(line)
                self._note_pid(line)
                if line.startswith(prefix):
                    return line
            readable, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
            chunk = os.read(fd, 65536) if readable else b""
            if not chunk:
                raise AssertionError(f"no line {prefix!r} on stderr:\n" + "\n".join(self.lines))
            self._buffer += chunk

    def _note_pid(self, line: str) -> None:
        # "branch 3: pid 1234, 127.0.0.1:5555"
        if line.startswith("branch ") and ": pid " in line:
            branch, pid = line.removeprefix("branch ").split(": pid ")
            self.pids[int(branch)] = int(pid.split(",")[0])

    def finish(self) -> tuple[int, str]:
        """Wait for the runner's exit; its status and the rest of its stderr."""
        assert self.process.stderr is not None
        rest = self.process.stderr.read().decode()
        self.process.stderr.close()
        return self.process.wait(timeout=DEADLINE), "\n".join(self.lines) + "\n" + rest


@contextmanager
def background_run(input_path: Path) -> Iterator[Runner]:
    runner = Runner(input_path)
    try:
        yield runner
    finally:
        if runner.process.poll() is None:
            runner.process.kill()
            runner.process.wait()
        if runner.process.stderr is not None:
            runner.process.stderr.close()


def processes_with(marker: str) -> list[int]:
    """Live (not zombie) processes whose command line contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # ended meanwhile
        if marker.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def wait_gone(pids: list[int], deadline: float = DEADLINE) -> list[int]:
    """Wait (on pidfds, no polling) until each of ``pids`` has exited; those still left."""
    left = []
    end = time.monotonic() + deadline
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            readable, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
        finally:
            os.close(fd)
        if not readable:
            left.append(pid)
    return left


def assert_nothing_left(runner: Runner) -> None:
    assert runner.pids, "the runner named no branch pids"
    assert wait_gone(list(runner.pids.values())) == []
    assert processes_with(runner.marker) == []


# Bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("", "$: the file is empty"),
        ("[", "line 1, column 2: malformed JSON"),
        ('{"type": "branch"}', "$: expected a list"),
        ('[{"id": 1, "type": "branch", "balance": 400}, {"id": 2, "type": "branch"}]', "$[1]"),
        (
            '[{"id": 1, "type": "branch", "balance": 400},'
            ' {"id": 2, "type": "branch", "balance": 500}]',
            "$[1].balance",
        ),
    ],
    ids=["empty", "malformed", "not-a-list", "missing-balance", "balances-disagree"],
)
def test_a_bad_file_exits_2_with_one_line_naming_it(
    tmp_path: Path, content: str, where: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    done = run(path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"{path}: {where}"), done.stderr


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    done = run(tmp_path / "absent.json")
    assert done.returncode == 2
    assert (
        done.stderr
        == f"{tmp_path / 'absent.json'}: $: cannot read the file: No such file or directory\n"
    )


def test_a_data_directory_that_is_not_empty_is_refused(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("")
    done = run(EXAMPLE, "--data", tmp_path)
    assert done.returncode == 2
    assert (
        done.stderr
        == f"error: {tmp_path}: not empty; give a new or empty directory for the branches' data\n"
    )


# Running ----------------------------------------------------------------------------------


def test_branch_ids_are_any_positive_ints_and_data_keeps_their_stores(tmp_path: Path) -> None:
    path = write_scenario(tmp_path / "input.json", [30, 7, 1000], events=4, balance=10)
    output = tmp_path / "output.json"
    done = run(path, "-o", output, "--data", tmp_path / "data")
    assert done.returncode == 0, done.stderr
    scenario = load_scenario(path)
    assert json.loads(output.read_text()) == build_output(scenario, run_model(scenario))
    stores = sorted(p.name for p in (tmp_path / "data").glob("*.sqlite3"))
    assert stores == ["branch-1000.sqlite3", "branch-30.sqlite3", "branch-7.sqlite3"]


# Random small scenarios, written as P1 or P3 files: amounts small next to the opening
# balance, so that withdrawals fail, and succeed beyond one branch's escrow share.
_BRANCHES = st.lists(st.integers(1, 1000), min_size=1, max_size=4, unique=True)


@st.composite
def scenario_documents(draw: st.DrawFn) -> list[object]:
    branches = draw(_BRANCHES)
    balance = draw(st.integers(0, 300))
    per_event = draw(st.booleans())  # P3 Fall 2023 (a branch per event) or P1 Fall 2023
    document: list[object] = [{"id": i, "type": "branch", "balance": balance} for i in branches]
    for _ in range(draw(st.integers(1, 4))):
        at = st.sampled_from(branches)
        customer = draw(st.integers(1, 100) if per_event else at)
        events = []
        for _ in range(draw(st.integers(1, 5))):
            event: dict[str, object] = {
                "interface": draw(st.sampled_from(["query", "deposit", "withdraw"]))
            }
            if event["interface"] != "query":
                event["money"] = draw(st.integers(1, 250))
            if per_event:
                event["branch"] = draw(at)
            events.append(event)
        document.append({"id": customer, "type": "customer", "events": events})
    return document


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=scenario_documents())
def test_random_scenarios_give_what_the_model_gives(tmp_path: Path, document: list[object]) -> None:
    path = tmp_path / "random.json"
    path.write_text(json.dumps(document))
    done = run(path)
    assert done.returncode == 0, done.stderr
    scenario = load_scenario(path)
    assert json.loads(done.stdout) == build_output(scenario, run_model(scenario))


# Ending early leaves nothing behind ------------------------------------------------------


def test_a_branch_killed_mid_run_stops_the_run_and_every_other_branch(tmp_path: Path) -> None:
    path = write_scenario(tmp_path / "long.json", [1, 2, 3], events=2000)
    with background_run(path) as runner:
        runner.wait_for_line("event 5:")
        os.kill(runner.pids[2], signal.SIGKILL)
        status, stderr = runner.finish()
    assert status == 1
    assert "error: branch 2 exited (killed by SIGKILL)" in stderr
    assert_nothing_left(runner)


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_a_signal_to_the_runner_stops_every_branch(
    tmp_path: Path, signum: signal.Signals, status: int
) -> None:
    path = write_scenario(tmp_path / "long.json", [1, 2, 3], events=2000)
    with background_run(path) as runner:
        runner.wait_for_line("event 5:")
        runner.process.send_signal(signum)
        assert runner.finish()[0] == status
    assert_nothing_left(runner)


def test_a_runner_killed_outright_takes_its_branches_with_it(tmp_path: Path) -> None:
    path = write_scenario(tmp_path / "long.json", [1, 2, 3], events=2000)
    with background_run(path) as runner:
        runner.wait_for_line("event 5:")
        runner.process.kill()  # no cleanup: the kernel's parent-death signal must do it
        runner.finish()
    assert_nothing_left(runner)


def test_signalled_while_starting_leaves_nothing_behind(tmp_path: Path) -> None:
    path = write_scenario(tmp_path / "input.json", [1, 2, 3, 4], events=2)
    with background_run(path) as runner:
        runner.wait_for_line("branch 4: pid")
        runner.process.send_signal(signal.SIGINT)
        assert runner.finish()[0] == 130
    assert_nothing_left(runner)

"""How long ``dbank run`` takes on a scenario file, end to end, against a same-run baseline.

What is measured: the wall-clock time of ``python -m dbank run INPUT -o FILE`` as a
subprocess, from its start to its exit: interpreter start, imports, reading the file,
starting one branch per branch id (forked processes, or ``--in-process``), waiting until
every branch is connected to all of its peers, the account and its escrow, every event, and
stopping every branch. Each run's output is checked against the reference model (and the
case's ``expected.json`` when there is one): a fast wrong answer is not a result.

Two baselines, measured in the same run, since shared machines drift and ratios are the
figures to compare across machines and days:

* ``python -c "import dbank.server"``: the interpreter and the imports that every ``dbank
  run`` pays before it does anything;
* the floor, ``benchmarks/scenario_floor.py``: the same file's connections and
  messages (one process per branch, the full mesh of streams, every write sent to every
  other branch and acknowledged) on bare ``grpc.aio`` processes that do no work. What
  ``dbank run`` takes beyond it is dbank's; the floor itself is what this machine's gRPC
  costs for that pattern, and no run with the same pattern can be faster.

Usage: ``python benchmarks/scenario_run.py [--input FILE]... [--repeat 3] [--modes
processes,in-process] [--timeout 600]``; by default the 50-branch public case
``tests/conformance/cases/p1-fall2023-50``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dbank.scenario import build_output, load_scenario, run_model

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = ROOT / "tests" / "conformance" / "cases" / "p1-fall2023-50" / "input.json"
FLOOR_SCRIPT = Path(__file__).with_name("scenario_floor.py")
MODES = {"processes": (), "in-process": ("--in-process",)}


def timed(command: list[str], timeout: float) -> tuple[float, subprocess.CompletedProcess[str]]:
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - began, done


def baseline(repeat: int) -> list[float]:
    command = [sys.executable, "-c", "import dbank.server"]
    return [timed(command, 60)[0] for _ in range(repeat)]


def floor(path: Path, repeat: int, timeout: float) -> list[float]:
    """``scenario_floor.py`` on the file's branches and events as dbank reads them."""
    scenario = load_scenario(path)
    plan = {
        "branches": list(scenario.branches),
        "events": [[event.branch, event.interface.value] for event in scenario.events],
    }
    times = []
    with tempfile.TemporaryDirectory(prefix="dbank-floor-") as tmp:
        plan_path = Path(tmp) / "plan.json"
        plan_path.write_text(json.dumps(plan))
        command = [sys.executable, str(FLOOR_SCRIPT), str(plan_path)]
        for _ in range(repeat):
            seconds, done = timed(command, timeout)
            if done.returncode != 0:
                raise SystemExit(f"{path} (floor) failed: {done.stderr.strip()}")
            times.append(seconds)
            print(f"  floor: {seconds:.2f} s ({done.stdout.strip()})", flush=True)
    return times


def run_case(path: Path, mode: str, repeat: int, timeout: float) -> list[float]:
    scenario = load_scenario(path)
    expected = build_output(scenario, run_model(scenario))
    times = []
    with tempfile.TemporaryDirectory(prefix="dbank-bench-") as tmp:
        output = Path(tmp) / "output.json"
        command = [sys.executable, "-m", "dbank", "run", str(path), "-o", str(output)]
        for _ in range(repeat):
            seconds, done = timed([*command, *MODES[mode]], timeout)
            if done.returncode != 0:
                raise SystemExit(f"{path} ({mode}) failed: {done.stderr.strip()}")
            if json.loads(output.read_text()) != expected:
                raise SystemExit(f"{path} ({mode}): the output differs from the model's")
            times.append(seconds)
            print(f"  {mode}: {seconds:.2f} s", flush=True)
    return times


def describe(times: list[float]) -> str:
    return (
        f"median {statistics.median(times):.2f} s"
        f" (min {min(times):.2f}, max {max(times):.2f}, n={len(times)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, action="append", help="scenario file(s)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per file and mode")
    parser.add_argument("--modes", default="processes,in-process", help="comma-separated")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    args = parser.parse_args()
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")

    print(
        f"machine: {os.cpu_count()} cpus, {platform.machine()}, {platform.system()}"
        f" {platform.release()}, Python {platform.python_version()},"
        f" load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    imports = baseline(max(args.repeat, 3))
    print(f"baseline python -c 'import dbank.server': {describe(imports)}")
    for path in args.input or [DEFAULT_INPUT]:
        scenario = load_scenario(path)
        print(
            f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:"
            f" {len(scenario.branches)} branches, {len(scenario.events)} events"
        )
        bare = floor(path, args.repeat, args.timeout)
        print(f"  floor: {describe(bare)}")
        for mode in modes:
            times = run_case(path, mode, args.repeat, args.timeout)
            median = statistics.median(times)
            print(
                f"  {mode}: {describe(times)}; {median / statistics.median(imports):.1f}x the"
                f" imports, {median / statistics.median(bare):.2f}x the floor"
            )


if __name__ == "__main__":
    main()

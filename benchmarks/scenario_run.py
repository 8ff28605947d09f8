"""How long ``dbank run`` takes on a scenario file, end to end, against a same-run baseline.

What is measured: the wall-clock time of ``python -m dbank run INPUT -o FILE`` as a
subprocess, from its start to its exit: interpreter start, imports, reading the file,
starting one branch per branch id (forked processes, or ``--in-process``), every event, and
stopping every branch; and the CPU time of all its processes. The default modes are the
default run (TLS and tokens) and ``--insecure``, in turns, and their ratio is printed.
Each run's output is checked against the reference model (and the
case's ``expected.json`` when there is one): a fast wrong answer is not a result.

Two baselines, measured in the same run, since shared machines drift and ratios are the
figures to compare across machines and days:

* ``python -c "import dbank.server"``: the interpreter and the imports that every ``dbank
  run`` pays before it does anything;
* with ``--floor``, ``benchmarks/scenario_floor.py``: the file's connections and messages
  as ``dbank run`` made them before its branches streamed to a few peers each (the full
  mesh of streams, every write sent to every other branch and acknowledged) on bare
  ``grpc.aio`` processes that do no work: what that pattern costs this machine's gRPC.

Usage: ``python benchmarks/scenario_run.py [--input FILE]... [--repeat 5] [--modes
processes,insecure,in-process] [--floor] [--timeout 600]``; by default the 50-branch public case
``tests/conformance/cases/p1-fall2023-50``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dbank.scenario import build_output, load_scenario, run_model

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = ROOT / "tests" / "conformance" / "cases" / "p1-fall2023-50" / "input.json"
FLOOR_SCRIPT = Path(__file__).with_name("scenario_floor.py")
MODES = {
    "processes": (),
    "insecure": ("--insecure",),
    "in-process": ("--in-process",),
}
"""``processes`` is the default: forked branch processes on a throwaway PKI (TLS between
every two processes, tokens); ``insecure`` the same plaintext; ``in-process`` every branch
in the runner's event loop."""


@dataclass
class Runs:
    """One mode's runs: wall-clock seconds, and CPU seconds of every process (user and
    system, the runner and its branches)."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def timed(
    command: list[str], timeout: float
) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done


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
            seconds, _, done = timed(command, timeout)
            if done.returncode != 0:
                raise SystemExit(f"{path} (floor) failed: {done.stderr.strip()}")
            times.append(seconds)
            print(f"  floor: {seconds:.2f} s ({done.stdout.strip()})", flush=True)
    return times


def run_case(path: Path, modes: list[str], repeat: int, timeout: float) -> dict[str, Runs]:
    """Every mode once per round, in turn, so that the machine's drift spreads over all."""
    scenario = load_scenario(path)
    expected = build_output(scenario, run_model(scenario))
    runs = {mode: Runs() for mode in modes}
    with tempfile.TemporaryDirectory(prefix="dbank-bench-") as tmp:
        output = Path(tmp) / "output.json"
        command = [sys.executable, "-m", "dbank", "run", str(path), "-o", str(output)]
        for _ in range(repeat):
            for mode in modes:
                wall, cpu, done = timed([*command, *MODES[mode]], timeout)
                if done.returncode != 0:
                    raise SystemExit(f"{path} ({mode}) failed: {done.stderr.strip()}")
                if json.loads(output.read_text()) != expected:
                    raise SystemExit(f"{path} ({mode}): the output differs from the model's")
                runs[mode].wall.append(wall)
                runs[mode].cpu.append(cpu)
                print(f"  {mode}: {wall:.2f} s, {cpu:.2f} s of CPU", flush=True)
    return runs


def describe(times: list[float]) -> str:
    return (
        f"median {statistics.median(times):.2f} s"
        f" (min {min(times):.2f}, max {max(times):.2f}, n={len(times)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, action="append", help="scenario file(s)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per file and mode")
    parser.add_argument("--modes", default="processes,insecure", help="comma-separated")
    parser.add_argument(
        "--floor", action="store_true", help="also time scenario_floor.py (full mesh, ALL)"
    )
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
    imports = statistics.median(baseline(max(args.repeat, 3)))
    print(f"baseline python -c 'import dbank.server': median {imports:.2f} s")
    for path in args.input or [DEFAULT_INPUT]:
        scenario = load_scenario(path)
        print(
            f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:"
            f" {len(scenario.branches)} branches, {len(scenario.events)} events"
        )
        bare = statistics.median(floor(path, args.repeat, args.timeout)) if args.floor else None
        runs = run_case(path, modes, args.repeat, args.timeout)
        for mode, done in runs.items():
            median = statistics.median(done.wall)
            against = "" if bare is None else f", {median / bare:.2f}x the floor"
            print(
                f"  {mode}: {describe(done.wall)}; CPU median {statistics.median(done.cpu):.2f}"
                f" s; {median / imports:.1f}x the imports{against}"
            )
        if "processes" in runs and "insecure" in runs:
            secure, plain = runs["processes"].wall, runs["insecure"].wall
            pairs = sorted(a / b for a, b in zip(secure, plain, strict=True))
            print(
                f"  secure / insecure: {statistics.median(secure) / statistics.median(plain):.2f}"
                f" (medians); per round {', '.join(f'{r:.2f}' for r in pairs)}"
            )


if __name__ == "__main__":
    main()

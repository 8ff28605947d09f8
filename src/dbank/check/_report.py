"""A check run's report: ``report.json`` (the counts of operations by kind and outcome,
the faults, each checker's verdict with its first and worst anomaly) and three pictures
with every fault window shaded: latency over time, throughput over time, and the total of
the shared accounts over time as each branch answered it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from dbank.check._history import History, Kind, Outcome
from dbank.check._processes import CheckRun

NS = 1_000_000_000
COLORS = {Outcome.OK: "tab:green", Outcome.FAIL: "tab:orange", Outcome.INFO: "tab:red"}


def summary(run: CheckRun) -> dict[str, Any]:
    history = run.workload.history
    by_kind: dict[str, dict[str, int]] = {}
    for op in history.operations:
        kinds = by_kind.setdefault(op.kind.value, {})
        kinds[op.outcome.value] = kinds.get(op.outcome.value, 0) + 1
    errors = Counter(op.error for op in history.operations if op.error)
    return {
        "mode": "processes",
        "branches": run.branches,
        "duration_s": run.duration,
        "seed": run.seed,
        "ok": run.ok,
        "operations": by_kind,
        "errors_by_reason": dict(errors.most_common()),
        "faults": [
            {
                "kind": f.kind,
                "targets": list(f.targets),
                "start_ms": f.start_ns // 1_000_000,
                "end_ms": f.end_ns // 1_000_000,
            }
            for f in history.faults
        ],
        "verdicts": [verdict.to_json() for verdict in run.verdicts],
    }


def write_report(run: CheckRun, directory: Path) -> list[Path]:
    """Write ``report.json``, ``history.json`` and the pictures into ``directory`` (made if
    missing); the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    report = directory / "report.json"
    report.write_text(json.dumps(summary(run), indent=2) + "\n")
    history = directory / "history.json"
    history.write_text(json.dumps(run.workload.history.to_json()) + "\n")
    return [report, history, *_pictures(run.workload.history, directory)]


def _pictures(history: History, directory: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only, no screen
    import matplotlib.pyplot as plt

    done = [op for op in history.operations if op.completed_ns is not None]
    end = max((op.completed_ns or 0 for op in done), default=NS) / NS
    paths = []

    figure, axes = plt.subplots(figsize=(10, 4))
    for outcome, color in COLORS.items():
        ops = [op for op in done if op.outcome is outcome]
        axes.scatter(
            [(op.completed_ns or 0) / NS for op in ops],
            [(op.latency_ns or 0) / 1e6 for op in ops],
            s=4,
            color=color,
            label=outcome.value,
        )
    axes.set(xlabel="seconds", ylabel="latency (ms)", yscale="log", title="Latency")
    paths.append(_finish(figure, axes, history, end, directory / "latency.png"))

    figure, axes = plt.subplots(figsize=(10, 4))
    seconds = int(end) + 1
    for outcome, color in COLORS.items():
        per_second = [0] * seconds
        for op in done:
            if op.outcome is outcome:
                per_second[min(seconds - 1, int((op.completed_ns or 0) / NS))] += 1
        axes.step(range(seconds), per_second, where="post", color=color, label=outcome.value)
    axes.set(xlabel="seconds", ylabel="operations per second", title="Throughput")
    paths.append(_finish(figure, axes, history, end, directory / "throughput.png"))

    figure, axes = plt.subplots(figsize=(10, 4))
    shared = set(history.shared)
    reads = [op for op in done if op.kind is Kind.READ and op.outcome is Outcome.OK]
    for branch in sorted({op.branch for op in reads}):
        mine = [op for op in reads if op.branch == branch and set(op.accounts) == shared]
        axes.plot(
            [(op.completed_ns or 0) / NS for op in mine],
            [sum(op.balances) for op in mine],
            marker=".",
            linewidth=0.8,
            label=f"branch {branch}",
        )
    axes.set(
        xlabel="seconds",
        ylabel=f"total of the shared accounts ({history.currency})",
        title="The bank's total as each branch answered it",
    )
    paths.append(_finish(figure, axes, history, end, directory / "totals.png"))
    return paths


def _finish(figure: Any, axes: Any, history: History, end: float, path: Path) -> Path:
    import matplotlib.pyplot as plt

    for fault in history.faults:
        axes.axvspan(fault.start_ns / NS, fault.end_ns / NS, color="grey", alpha=0.2)
        axes.annotate(
            fault.describe(),
            (fault.start_ns / NS, 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=7,
            va="top",
        )
    axes.set_xlim(0, end)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path

"""``dbank check``: prove a bank safe under faults, on real processes, with a report."""

from __future__ import annotations

import random
import sys
import traceback
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dbank.check import CheckRun, run_processes, write_report
from dbank.cli._common import OneLineCommand

CHECKER_CRASHED = 3
"""Exit status when the checker itself failed (not the bank): its result says nothing."""


@click.command(cls=OneLineCommand)
@click.option(
    "--processes",
    is_flag=True,
    help="Run real `dbank branch` processes on loopback behind TCP proxies this command"
    " controls, with SIGKILL and restart, cut, one-way cut and slowed links.",
)
@click.option(
    "--branches", type=click.IntRange(2, 9), default=3, show_default=True, help="Branches."
)
@click.option(
    "--duration",
    type=click.FloatRange(min=5.0),
    default=20.0,
    show_default=True,
    help="Seconds of workload and faults (at least 5: room for a fault), before the bank"
    " heals and is checked.",
)
@click.option("--seed", type=click.IntRange(min=0), help="Seed of the workload and the faults.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write report.json, history.json and pictures (PNG) here.",
)
@click.option(
    "--insecure", is_flag=True, help="Plaintext branches without tokens (default: TLS, tokens)."
)
def check(
    processes: bool,
    branches: int,
    duration: float,
    seed: int | None,
    report_dir: Path | None,
    insecure: bool,
) -> None:
    """Run Jepsen's bank workload on a bank under faults and check every promise.

    Customers transfer, deposit, withdraw and read at every branch with session tokens
    and both write concerns, retrying unanswered requests with their request ids, while
    faults drawn from the seed come and go. Then the faults heal, every request is
    settled, and checkers read the whole history and every replica: no balance or escrow
    share negative, totals within what the writes allow, every read of a customer's own
    account showing its own acknowledged writes and never losing one it showed, final
    balances exact, no request applied twice, every acknowledged write everywhere, all
    replicas identical.

    Exit status 0 when every check passes, 1 when one found an anomaly (the seed that
    replays the run is printed), 3 when the checker itself failed.
    """
    if not processes:
        raise click.UsageError("choose how to run the bank: --processes")
    seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
    console = Console(stderr=True)
    console.print(
        f"dbank check --processes --branches {branches} --duration {duration:g} --seed {seed}"
    )
    try:
        run = _run(console, branches, duration, seed, insecure)
    except Exception as exc:
        _crashed(console, exc)
    Console().print(_verdicts(run))
    if report_dir is not None:
        try:
            written = write_report(run, report_dir)
        except Exception as exc:
            _crashed(console, exc)
        for path in written:
            console.print(f"wrote {path}")
    if not run.ok:
        again = f"dbank check --processes --branches {branches} --duration {duration:g}"
        console.print(f"anomalies found; run it again with: {again} --seed {seed}")
        sys.exit(1)


def _crashed(console: Console, exc: Exception) -> NoReturn:
    traceback.print_exc(file=sys.stderr)
    console.print(f"the checker itself failed: {type(exc).__name__}: {exc}")
    sys.exit(CHECKER_CRASHED)


def _run(console: Console, branches: int, duration: float, seed: int, insecure: bool) -> CheckRun:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=not console.is_terminal,
    ) as progress:
        task = progress.add_task("starting", total=1.0)

        def tell(done: float, what: str) -> None:
            progress.update(task, completed=done, description=what)

        return run_processes(
            branches=branches, duration=duration, seed=seed, insecure=insecure, progress=tell
        )


def _verdicts(run: CheckRun) -> Table:
    counts = run.workload.counts
    title = ", ".join(f"{key} {n}" for key, n in sorted(counts.items()))
    faults = ", ".join(fault.describe() for fault in run.workload.history.faults) or "none"
    table = Table(title=f"{title}\nfaults: {faults}", title_justify="left")
    table.add_column("check")
    table.add_column("verdict")
    table.add_column("checked", justify="right")
    table.add_column("first anomaly")
    for verdict in run.verdicts:
        first = verdict.anomalies[0].description if verdict.anomalies else ""
        shown = "[green]ok[/green]" if verdict.ok else f"[red]{len(verdict.anomalies)} found[/red]"
        table.add_row(verdict.name, shown, str(verdict.checked), first)
    return table

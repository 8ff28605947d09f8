"""``dbank run``: a classic customers-and-branches scenario file on real branches."""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dbank.cli._common import OneLineCommand, fail, store_options
from dbank.ledger import DbankError
from dbank.store import RedisAddress

if TYPE_CHECKING:  # the scenario runner is imported only by ``dbank run``
    from dbank.scenario import EventResult, Scenario
    from dbank.tracing import TraceEvent


@click.command(cls=OneLineCommand)
@click.argument("input_path", metavar="INPUT.json", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "output_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the output here instead of to standard output.",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the branches' SQLite files in DIR (new or empty); default: a temporary "
    "directory, removed after.",
)
@store_options(
    "Keep the branches' state in this Redis database instead of SQLite files: it must be"
    " empty, and the run's state stays there."
)
@click.option(
    "--in-process",
    is_flag=True,
    help="Host every branch in this process's event loop, not one process per branch.",
)
@click.option(
    "--lamport",
    "lamport_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the run's Lamport-clock trace to FILE, in the 2022 shape (not for a "
    "P2 Fall 2023 file, whose output is its trace).",
)
@click.option(
    "--trace-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Record the run's Lamport-clock trace in DIR (made if missing, kept): each "
    "process's events, and for a P2 Fall 2023 file the three parts of its trace "
    "(customer-events.json, branch-events.json, all-events.json).",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Run the branches plaintext and without authentication, instead of on a"
    " throwaway PKI (TLS between every two processes, a token for the customers).",
)
@click.option("-v", "--verbose", is_flag=True, help="Report each step on standard error.")
def run(
    input_path: Path,
    output_path: Path | None,
    data_dir: Path | None,
    store: RedisAddress | None,
    unsafe_redis: bool,
    in_process: bool,
    lamport_path: Path | None,
    trace_dir: Path | None,
    insecure: bool,
    verbose: bool,
) -> None:
    """Play a classic customers-and-branches scenario file on real branches.

    Starts one branch per branch entry, runs the customers' events one after another
    through the client library, writes the output in the input's own variant, and stops
    the branches. A P2 Fall 2023 file's output is the run's Lamport-clock trace (the flat
    list of every event). A bad file or flag exits with status 2 and one line; a failed
    run exits with status 1 (130 on Ctrl-C, 143 on SIGTERM) and leaves no process behind.
    """
    from dbank.scenario import ScenarioError, Variant, load_scenario

    if data_dir is not None and store is not None:
        raise click.UsageError("give --data or --store, not both")
    if unsafe_redis and store is None:
        raise click.UsageError("--unsafe-redis goes with --store")
    try:
        scenario = load_scenario(input_path)
    except ScenarioError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    if scenario.variant is Variant.P2_FALL_2023 and lamport_path is not None:
        click.echo(
            f"error: --lamport: {input_path} is {scenario.variant.display_name} input, whose "
            "output is its Lamport trace already (-o, and --trace-dir for all three parts)",
            err=True,
        )
        sys.exit(2)
    for path, flag in ((output_path, "-o"), (lamport_path, "--lamport")):
        if path is not None and not path.resolve().parent.is_dir():
            raise click.BadParameter(f"{path.parent} is not a directory", param_hint=flag)
    echo = functools.partial(click.echo, err=True) if verbose else None
    traced = lamport_path is not None or trace_dir is not None
    stores = _RunSetup(data_dir, store, unsafe_redis, insecure)
    results, events = _play_scenario(scenario, stores, in_process, echo, traced, trace_dir)
    text = _scenario_outputs(scenario, results, events, lamport_path, trace_dir)
    if output_path is None:
        click.echo(text, nl=False)
    else:
        _write_output(output_path, text)


@dataclasses.dataclass(frozen=True)
class _RunSetup:
    """How a run's branches are set up: where they keep their state (``dbank run``'s store
    flags), and whether they run ``--insecure`` instead of on a throwaway PKI."""

    data_dir: Path | None
    redis: RedisAddress | None
    unsafe_redis: bool
    insecure: bool = False


def _play_scenario(
    scenario: Scenario,
    stores: _RunSetup,
    in_process: bool,
    echo: Callable[[str], None] | None,
    traced: bool,
    trace_dir: Path | None,
) -> tuple[list[EventResult], list[TraceEvent] | None]:
    """The run's results, and its trace if ``traced`` or the file asks for one."""
    from dbank.scenario import RunError, Variant, run_scenario, trace_scenario

    data_dir, unsafe_redis = stores.data_dir, stores.unsafe_redis
    redis = None if stores.redis is None else str(stores.redis)
    try:
        if traced or scenario.variant is Variant.P2_FALL_2023:
            return trace_scenario(
                scenario,
                trace_dir=trace_dir,
                data_dir=data_dir,
                redis=redis,
                unsafe_redis=unsafe_redis,
                in_process=in_process,
                echo=echo,
                insecure=stores.insecure,
            )
        played = run_scenario(
            scenario,
            data_dir=data_dir,
            redis=redis,
            unsafe_redis=unsafe_redis,
            in_process=in_process,
            echo=echo,
            insecure=stores.insecure,
        )
        return played, None
    except RunError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_status)
    except DbankError as exc:
        fail(exc)
        raise  # not reached: fail exits
    except KeyboardInterrupt:
        click.echo("interrupted; every branch stopped", err=True)
        sys.exit(130)


def _scenario_outputs(
    scenario: Scenario,
    results: list[EventResult],
    events: list[TraceEvent] | None,
    lamport_path: Path | None,
    trace_dir: Path | None,
) -> str:
    """The output document's text; the trace files beside it are written here."""
    from dbank.scenario import (
        Variant,
        build_output,
        classic_trace,
        fall_2023_trace,
        render_output,
        write_trace_parts,
    )

    if scenario.variant is not Variant.P2_FALL_2023:
        if lamport_path is not None and events is not None:
            _write_output(lamport_path, render_output(classic_trace(scenario, events)))
        return render_output(build_output(scenario, results))
    trace = fall_2023_trace(scenario, events or [])
    if trace_dir is not None:
        try:
            write_trace_parts(trace_dir, trace)
        except OSError as exc:
            click.echo(f"error: cannot write the trace in {trace_dir}: {exc.strerror}", err=True)
            sys.exit(1)
    return render_output(trace.all_events)


def _write_output(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as exc:
        click.echo(f"error: cannot write {path}: {exc.strerror}", err=True)
        sys.exit(1)

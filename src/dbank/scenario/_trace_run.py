"""A scenario run that records its Lamport trace, and where the trace's files go.

The branches and the customers' side each write their events into a trace directory while
the run goes on (``dbank.tracing``); once every branch has stopped, the files are read and
merged into one list of events, which ``_trace_output`` writes in a P2 shape.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dbank.hosting import RunError
from dbank.scenario._output import render_output
from dbank.scenario._results import EventResult
from dbank.scenario._runner import Echo, run_scenario
from dbank.scenario._scenario import Scenario
from dbank.scenario._trace_output import Fall2023Trace
from dbank.tracing import TraceEvent, TraceMissing, read_trace

__all__ = ["check_trace_dir", "trace_scenario", "write_trace_parts"]

PART_FILES = ("customer-events.json", "branch-events.json", "all-events.json")
"""The files of a Fall 2023 trace's parts in a trace directory, in ``Fall2023Trace``'s
order."""


def check_trace_dir(directory: Path) -> None:
    """Make ``directory`` if it is missing, and check that files can be made in it.

    Raises:
        RunError: it cannot be made or written to (``exit_status`` 2).
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if not os.access(directory, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    except OSError as exc:
        problem = f"cannot write a trace there: {exc.strerror}"
        raise RunError(f"{directory}: {problem}", exit_status=2) from None


def trace_scenario(
    scenario: Scenario,
    *,
    trace_dir: Path | None = None,
    data_dir: Path | None = None,
    in_process: bool = False,
    echo: Echo | None = None,
    redis: str | None = None,
    unsafe_redis: bool = False,
    insecure: bool = False,
) -> tuple[list[EventResult], list[TraceEvent]]:
    """``run_scenario``, recording every process's events into ``trace_dir`` (checked with
    ``check_trace_dir`` first; kept) or a temporary directory (removed).

    Returns:
        The results, as ``run_scenario`` gives them, and every recorded event: the
        customers' first, then each branch's, each process's in the order they happened.

    Raises:
        RunError: as ``run_scenario``; also if a branch left no trace (status 1), or
            ``trace_dir`` cannot be written (status 2).
        DbankError, KeyboardInterrupt: as ``run_scenario``.
    """
    with _directory(trace_dir) as directory:
        results = run_scenario(
            scenario,
            data_dir=data_dir,
            in_process=in_process,
            echo=echo,
            trace_dir=directory,
            redis=redis,
            unsafe_redis=unsafe_redis,
            insecure=insecure,
        )
        try:
            return results, read_trace(directory, scenario.branches)
        except TraceMissing as exc:
            raise RunError(f"the trace is incomplete: {exc}") from None


def write_trace_parts(directory: Path, trace: Fall2023Trace) -> None:
    """Write each part of ``trace`` to its file in ``directory`` (``PART_FILES``).

    Raises:
        OSError: a file cannot be written.
    """
    for name, document in zip(PART_FILES, trace, strict=True):
        (directory / name).write_text(render_output(document))


@contextlib.contextmanager
def _directory(trace_dir: Path | None) -> Iterator[Path]:
    if trace_dir is not None:
        check_trace_dir(trace_dir)
        yield trace_dir
        return
    with tempfile.TemporaryDirectory(prefix="dbank-trace-") as temporary:
        yield Path(temporary)

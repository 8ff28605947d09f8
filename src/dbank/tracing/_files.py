"""A trace directory: the events of every process of a run, one file per recorder.

Each branch writes ``branch-ID.jsonl`` when it stops and the customers' side writes
``customers.jsonl``; one event per line (``TraceEvent.to_line``), in the order the process
recorded them. A file appears whole or not at all (written aside, then renamed), so a
reader never sees half a trace.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from dbank.tracing._events import TraceEvent

__all__ = ["TraceMissing", "branch_file", "customers_file", "read_trace", "write_events"]


class TraceMissing(Exception):
    """A trace directory lacks a process's file or holds one that is not a trace."""


def branch_file(directory: Path, branch_id: int) -> Path:
    return directory / f"branch-{branch_id}.jsonl"


def customers_file(directory: Path) -> Path:
    return directory / "customers.jsonl"


def write_events(path: Path, events: Iterable[TraceEvent]) -> None:
    """Write ``events`` to ``path``, replacing it at once when complete.

    Raises:
        OSError: the file cannot be written.
    """
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    aside.write_text("".join(event.to_line() + "\n" for event in events))
    aside.replace(path)


def read_trace(directory: Path, branch_ids: Sequence[int]) -> list[TraceEvent]:
    """Every event of the customers and of ``branch_ids`` in ``directory``: each file's in
    its own order, the customers' first.

    Raises:
        TraceMissing: a file is absent or unreadable, or a line is not an event.
    """
    events: list[TraceEvent] = []
    for path in [customers_file(directory), *(branch_file(directory, i) for i in branch_ids)]:
        events.extend(_read(path))
    return events


def _read(path: Path) -> list[TraceEvent]:
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise TraceMissing(f"{path}: cannot read the trace: {exc.strerror}") from None
    try:
        return [TraceEvent.from_line(line) for line in lines]
    except ValueError as exc:
        raise TraceMissing(f"{path}: {exc}") from None

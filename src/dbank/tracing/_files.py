"""A trace directory: the events of every process of a run, one file per recorder.

Each branch writes ``branch-ID.jsonl`` and the customers' side ``customers.jsonl``: one
event per line (``TraceEvent.to_line``), in the order the process recorded them. Each line
is written as its event is recorded, so a file is whole up to its last event even if its
process is killed right after (a run may kill branches it no longer needs).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dbank.tracing._events import TraceEvent

__all__ = ["TraceFile", "TraceMissing", "branch_file", "customers_file", "read_trace"]


class TraceMissing(Exception):
    """A trace directory lacks a process's file or holds one that is not a trace."""


def branch_file(directory: Path, branch_id: int) -> Path:
    return directory / f"branch-{branch_id}.jsonl"


def customers_file(directory: Path) -> Path:
    return directory / "customers.jsonl"


class TraceFile:
    """A trace file being written, from empty. ``close()`` when done.

    Raises:
        OSError: on construction, if the file cannot be created.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)

    def append(self, event: TraceEvent) -> None:
        # One write per line, unbuffered: a line is never left in a buffer of this process.
        os.write(self._fd, (event.to_line() + "\n").encode())

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


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

"""The clock of one process and the file its events go to."""

from __future__ import annotations

from dbank.tracing._clock import LamportClock
from dbank.tracing._events import Role, Step, TraceEvent
from dbank.tracing._files import TraceFile

__all__ = ["Recorder"]


class Recorder:
    """One process's Lamport clock, and its events written to ``file`` as they happen."""

    def __init__(self, role: Role, pid: int, file: TraceFile) -> None:
        self.role = role
        self.pid = pid
        self.clock = LamportClock()
        self._file = file

    def record(
        self, clock: int, request: int, interface: str, step: Step, peer: int | None = None
    ) -> None:
        """Note an event that took the clock value ``clock``."""
        self._file.append(TraceEvent(self.role, self.pid, clock, request, interface, step, peer))

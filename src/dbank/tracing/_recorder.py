"""The events of one process as it records them, with its Lamport clock."""

from __future__ import annotations

from pathlib import Path

from dbank.tracing._clock import LamportClock
from dbank.tracing._events import Role, Step, TraceEvent
from dbank.tracing._files import write_events

__all__ = ["Recorder"]


class Recorder:
    """One process's clock and the events recorded so far, kept in memory until
    ``write``: recording costs an append, never a write to disk on the request path."""

    def __init__(self, role: Role, pid: int) -> None:
        self.role = role
        self.pid = pid
        self.clock = LamportClock()
        self.events: list[TraceEvent] = []

    def record(
        self, clock: int, request: int, interface: str, step: Step, peer: int | None = None
    ) -> None:
        """Note an event that took the clock value ``clock``."""
        self.events.append(TraceEvent(self.role, self.pid, clock, request, interface, step, peer))

    def write(self, path: Path) -> None:
        """Write every event so far to ``path`` (``OSError`` if it cannot be written)."""
        write_events(path, self.events)

"""The Lamport logical clock of one process."""

from __future__ import annotations

__all__ = ["LamportClock"]


class LamportClock:
    """A counter that orders a process's events consistently with causality (Lamport 1978).

    Every event of the process takes the next value: a local step or a send ``tick()``s,
    a receive takes ``receive(stamp)`` with the stamp the message carried, which lands
    after both this process's last event and the send. So the values strictly increase
    along each process's own events, and every receive is later than its send.

    One process's clock lives in one event loop; it is not for use from several threads.
    """

    __slots__ = ("_time",)

    def __init__(self) -> None:
        self._time = 0

    @property
    def time(self) -> int:
        """The value of the latest event (0 before the first)."""
        return self._time

    def tick(self) -> int:
        """A local step or a send: the next value, which the event takes."""
        self._time += 1
        return self._time

    def receive(self, stamp: int) -> int:
        """The receipt of a message sent at ``stamp``: after it and after every earlier
        event of this process."""
        self._time = max(self._time, stamp) + 1
        return self._time

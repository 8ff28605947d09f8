"""Hybrid logical clocks: timestamps that follow wall time and never run against causality.

A timestamp is one ``int``: milliseconds since the Unix epoch shifted left by 16 bits, plus
a counter in the low 16 bits for events within one millisecond. Every tick is larger than
every timestamp the clock has produced or observed, so HLC order extends causal order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

LOGICAL_BITS = 16

WallClock = Callable[[], int]
"""Returns the wall time in milliseconds since the Unix epoch; injectable for tests."""


class HybridLogicalClock:
    def __init__(self, wall_ms: WallClock, last: int = 0) -> None:
        self._wall_ms = wall_ms
        self._last = last

    def tick(self) -> int:
        """A new timestamp, larger than every earlier one and not behind the wall clock."""
        self._last = max(self._last + 1, self._wall_ms() << LOGICAL_BITS)
        return self._last

    def observe(self, timestamp: int) -> None:
        """Take in a timestamp from elsewhere, so later ticks come after it."""
        self._last = max(self._last, timestamp)

    def rewind(self, last: int) -> None:
        """Go back to an earlier ``last``. Only for timestamps that nobody has seen: those of
        a decision that was never committed, being made again."""
        self._last = last

    @property
    def last(self) -> int:
        return self._last


def hlc_datetime(timestamp: int) -> dt.datetime:
    """The UTC wall time of an HLC timestamp (to the millisecond)."""
    seconds, millis = divmod(timestamp >> LOGICAL_BITS, 1000)
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC) + dt.timedelta(milliseconds=millis)


def hlc_day(timestamp: int) -> dt.date:
    """The UTC date of an HLC timestamp: an op's day (design §6)."""
    return hlc_datetime(timestamp).date()


def day_start_hlc(day: dt.date) -> int:
    """The smallest HLC timestamp of ``day`` (UTC): every op of ``day`` is at or after it,
    every op of an earlier day before it."""
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    millis = (midnight - _EPOCH) // dt.timedelta(milliseconds=1)
    return millis << LOGICAL_BITS


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

FIRST_DAY = dt.date(1970, 1, 1)
"""The first day an HLC timestamp can fall on."""
LAST_DAY = (_EPOCH + dt.timedelta(milliseconds=(2**63 - 1) >> LOGICAL_BITS)).date() - dt.timedelta(
    days=1
)
"""The last day all of whose HLC timestamps fit the int64 that stores and the wire hold
(in the year 6429)."""

"""Logging a repeated warning once, then counting it.

A branch meets some failures over and over while they last: a peer whose ops it refuses
reconnects every few hundred milliseconds, a full disk fails every batch. One line per
occurrence buries everything else (a peer refused 20 times a second; 182 lines in a second
on a full disk), so these go through ``RepeatLimiter``: the first occurrence of a key is
logged as it comes, the repeats within the next ``window`` seconds are only counted, and
at the end of the window one line says how many there were::

    refused branch 2's stream: ORIGIN_MISMATCH ...
    refused branch 2's stream: ORIGIN_MISMATCH ... (240 more times in the last 10 s)

While the repeats go on, one such line comes every window; once they stop, the key is
forgotten and its next occurrence is logged at once again. The count's line is written by
a timer of the running event loop (one per key and window, never a polling loop); without
a running loop it is written at the key's next occurrence after the window.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

WINDOW = 10.0
"""Seconds during which the repeats of a logged line are counted, not logged."""
MAX_KEYS = 4096
"""How many keys a limiter keeps at most; past it, it forgets them all and starts over."""


@dataclass(slots=True)
class _Repeats:
    since: float
    """When the window opened: the key's line or count was logged."""
    level: int
    message: str
    args: tuple[object, ...]
    """The latest occurrence's message, said again with the count."""
    count: int = 0
    timer: asyncio.TimerHandle | None = None


class RepeatLimiter:
    """Logs each key's line once per ``window`` seconds and counts the rest (see the
    module's docstring). Keys are anything hashable and stable for one kind of event,
    e.g. ``("origin-mismatch", peer_id)``; never anything that changes with each
    occurrence, such as an error's text."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        window: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``window``: ``WINDOW`` unless given (read when the limiter is made, so that a
        test may shorten it for a whole process)."""
        self._logger = logger
        self._window = WINDOW if window is None else window
        self._clock = clock
        self._keys: dict[Hashable, _Repeats] = {}

    def warning(self, key: Hashable, message: str, *args: object) -> None:
        self.log(logging.WARNING, key, message, *args)

    def info(self, key: Hashable, message: str, *args: object) -> None:
        self.log(logging.INFO, key, message, *args)

    def log(self, level: int, key: Hashable, message: str, *args: object) -> None:
        """Log ``message % args`` at ``level`` if ``key`` has not been logged within the
        window, else count it. Never logs a traceback: the callers' failures are
        expected ones, and their message says all there is."""
        now = self._clock()
        repeats = self._keys.get(key)
        if repeats is not None and now - repeats.since >= self._window:
            self._flush(key)  # the window is over and no timer said so
            repeats = self._keys.get(key)
        if repeats is None:
            if len(self._keys) >= MAX_KEYS:
                self._forget_all()
            self._keys[key] = _Repeats(now, level, message, args)
            self._logger.log(level, message, *args)
            return
        repeats.count += 1
        repeats.level, repeats.message, repeats.args = level, message, args
        if repeats.timer is None:
            repeats.timer = _call_later(repeats.since + self._window - now, self._flush, key)

    def flush(self) -> None:
        """Write the count of every key that has repeats now (e.g. before stopping)."""
        for key in list(self._keys):
            repeats = self._keys[key]
            if repeats.count:
                self._flush(key)

    def _flush(self, key: Hashable) -> None:
        repeats = self._keys.get(key)
        if repeats is None:
            return
        if repeats.timer is not None:
            repeats.timer.cancel()
            repeats.timer = None
        if not repeats.count:
            del self._keys[key]  # quiet for a whole window: log its next one at once
            return
        elapsed = max(self._clock() - repeats.since, 0.0)
        self._logger.log(
            repeats.level,
            f"{repeats.message} (%d more times in the last %.0f s)",
            *repeats.args,
            repeats.count,
            elapsed,
        )
        repeats.since, repeats.count = self._clock(), 0

    def _forget_all(self) -> None:
        for repeats in self._keys.values():
            if repeats.timer is not None:
                repeats.timer.cancel()
        self._keys.clear()


def _call_later(
    delay: float, callback: Callable[[Hashable], None], key: Hashable
) -> asyncio.TimerHandle | None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return loop.call_later(max(delay, 0.0), callback, key)

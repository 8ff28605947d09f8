"""A version vector that tasks can wait on: the writer publishes each committed state's
vector, and sessions, acknowledgements and replication links wait for the one they need."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from dbank.ledger import VersionVector

Predicate = Callable[[VersionVector], bool]


class VectorWatch:
    """Holds the latest published vector; ``wait_for`` waits on publications, never polls.

    A publication checks each waiter's predicate in place and wakes only the waiters whose
    predicate now holds: with one waiter per peer link and per pending acknowledgement, a
    commit that concerns few of them should not wake them all.
    """

    def __init__(self, vector: VersionVector | None = None) -> None:
        self._vector = vector if vector is not None else VersionVector()
        self._waiters: dict[asyncio.Future[bool], Predicate] = {}

    @property
    def vector(self) -> VersionVector:
        return self._vector

    def publish(self, vector: VersionVector) -> None:
        self._vector = vector
        for waiter, predicate in list(self._waiters.items()):
            if not waiter.done() and predicate(vector):
                waiter.set_result(True)

    async def wait_for(self, predicate: Predicate, within: float | None) -> bool:
        """Wait until ``predicate(vector)`` holds; False if it still does not after
        ``within`` seconds (None: no limit)."""
        if predicate(self._vector):
            return True
        if within is not None and within <= 0:
            return False
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters[waiter] = predicate
        timer = None if within is None else loop.call_later(within, _expire, waiter)
        try:
            return await waiter
        finally:
            if timer is not None:
                timer.cancel()
            del self._waiters[waiter]

    def covers(self, vector: VersionVector) -> bool:
        return self._vector.covers(vector)


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)

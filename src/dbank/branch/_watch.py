"""A version vector that tasks can wait on: the writer publishes each committed state's
vector, and sessions, acknowledgements and replication links wait for the one they need."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from dbank.ledger import VersionVector


class VectorWatch:
    """Holds the latest published vector; ``wait_for`` waits on publications, never polls."""

    def __init__(self, vector: VersionVector | None = None) -> None:
        self._vector = vector if vector is not None else VersionVector()
        self._published = asyncio.Event()

    @property
    def vector(self) -> VersionVector:
        return self._vector

    def publish(self, vector: VersionVector) -> None:
        self._vector = vector
        # Wake every waiter of this generation, then start a new one.
        self._published.set()
        self._published = asyncio.Event()

    async def wait_for(self, predicate: Callable[[VersionVector], bool], within: float) -> bool:
        """Wait until ``predicate(vector)`` holds; False if it still does not after ``within`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not predicate(self._vector):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._published.wait(), remaining)
            except TimeoutError:
                return predicate(self._vector)
        return True

    def covers(self, vector: VersionVector) -> bool:
        return self._vector.covers(vector)

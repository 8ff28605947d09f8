"""Which peers are streaming their own ops to this branch right now.

A peer's ops reach this branch over the peer's own stream; while that stream is down,
the branch must fetch them from the others (``Replicator``'s catch-up), so it needs to
know which streams are open.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


class InboundStreams:
    def __init__(self) -> None:
        self._open: Counter[int] = Counter()
        self._closed = asyncio.Event()

    @contextmanager
    def streaming(self, peer_id: int) -> Iterator[None]:
        """Count a stream from ``peer_id`` as open for the duration of the block. A peer
        that reconnects may briefly have two."""
        self._open[peer_id] += 1
        try:
            yield
        finally:
            self._open[peer_id] -= 1
            if not self._open[peer_id]:
                del self._open[peer_id]
                self._closed.set()

    def silent(self, peer_ids: Iterable[int]) -> list[int]:
        """The peers among ``peer_ids`` with no open stream to this branch."""
        return [peer_id for peer_id in peer_ids if peer_id not in self._open]

    async def wait_closed(self) -> None:
        """Wait until some stream closes (its peer's last)."""
        self._closed.clear()
        await self._closed.wait()

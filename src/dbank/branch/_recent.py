"""The newest committed ops of each origin, kept in memory so that replication streams and
catch-up requests rarely read the store."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from itertools import islice

from dbank.ledger import Op

DEFAULT_CAPACITY = 20_000


class RecentOps:
    """Per origin, the last ``capacity`` ops this replica committed, in seq order."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._by_origin: dict[int, deque[Op]] = {}

    def extend(self, ops: Iterable[Op]) -> None:
        """Add committed ops; a replica commits each origin's ops in seq order."""
        for op in ops:
            kept = self._by_origin.get(op.id.origin)
            if kept is None:
                kept = self._by_origin[op.id.origin] = deque(maxlen=self._capacity)
            elif kept[-1].id.seq != op.id.seq - 1:
                kept.clear()
            kept.append(op)

    def after(self, origin: int, seq: int, limit: int) -> list[Op] | None:
        """Up to ``limit`` ops of ``origin`` after ``seq``, or None if some of them are no
        longer (or not yet) in memory and must be read from the store."""
        kept = self._by_origin.get(origin)
        if not kept or kept[0].id.seq > seq + 1:
            return None
        start = seq + 1 - kept[0].id.seq
        return list(islice(kept, start, start + limit))

    def get(self, origin: int, seq: int) -> Op | None:
        found = self.after(origin, seq - 1, 1)
        return found[0] if found else None

"""The newest committed ops of each origin, kept in memory so that replication streams and
catch-up requests rarely read the store."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from itertools import islice

from dbank.ledger import Op
from dbank.ledger.codec import encode_op

CAPACITY = 20_000


class _Kept:
    """An op and, once some stream has asked for them, its canonical bytes: every link
    sends the same bytes, so they are made once, not once per peer."""

    __slots__ = ("data", "op")

    def __init__(self, op: Op) -> None:
        self.op = op
        self.data: bytes | None = None

    def encoded(self) -> bytes:
        if self.data is None:
            self.data = encode_op(self.op)
        return self.data


class RecentOps:
    """Per origin, the last ``CAPACITY`` ops this replica committed, in seq order."""

    def __init__(self) -> None:
        self._by_origin: dict[int, deque[_Kept]] = {}

    def extend(self, ops: Iterable[Op]) -> None:
        """Add committed ops; a replica commits each origin's ops in seq order."""
        for op in ops:
            kept = self._by_origin.get(op.id.origin)
            if kept is None:
                kept = self._by_origin[op.id.origin] = deque(maxlen=CAPACITY)
            elif kept[-1].op.id.seq != op.id.seq - 1:
                kept.clear()
            kept.append(_Kept(op))

    def after(self, origin: int, seq: int, limit: int) -> list[Op] | None:
        """Up to ``limit`` ops of ``origin`` after ``seq``, or None if some of them are no
        longer (or not yet) in memory and must be read from the store."""
        found = self._kept_after(origin, seq, limit)
        return None if found is None else [kept.op for kept in found]

    def encoded_after(self, origin: int, seq: int, limit: int) -> list[tuple[Op, bytes]] | None:
        """``after``, each op with its canonical bytes."""
        found = self._kept_after(origin, seq, limit)
        return None if found is None else [(kept.op, kept.encoded()) for kept in found]

    def get(self, origin: int, seq: int) -> Op | None:
        found = self.after(origin, seq - 1, 1)
        return found[0] if found else None

    def _kept_after(self, origin: int, seq: int, limit: int) -> list[_Kept] | None:
        kept = self._by_origin.get(origin)
        if not kept or kept[0].op.id.seq > seq + 1:
            return None
        start = seq + 1 - kept[0].op.id.seq
        return list(islice(kept, start, start + limit))

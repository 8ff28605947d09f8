"""Op ids and version vectors: how replicas name changes and say what they have applied."""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from dataclasses import dataclass

MAX_BRANCH_ID = 2**32 - 1
"""The largest branch id (an op's origin): ids are ``uint32`` on the wire, and from 1."""


@dataclass(frozen=True, slots=True, order=True)
class OpId:
    """One replicated change: the branch that originated it and its place in that branch's
    log. ``seq`` counts 1, 2, 3... per origin without gaps."""

    origin: int
    seq: int

    def __str__(self) -> str:
        return f"{self.origin}:{self.seq}"


class VersionVector(Mapping[int, int]):
    """An immutable map from origin branch to how many of its ops have been applied.

    Missing origins count as 0, and zero entries are dropped, so two vectors that mean the
    same thing compare equal and encode the same way.
    """

    __slots__ = ("_entries",)

    def __init__(self, entries: Mapping[int, int] | Iterable[tuple[int, int]] = ()) -> None:
        # Exact-type checks first: every request and every replicated batch makes vectors,
        # and an ABC isinstance check costs more than the rest of this method.
        if type(entries) is dict or type(entries) is VersionVector:
            items: Iterable[tuple[int, int]] = entries.items()
        else:
            items = entries.items() if isinstance(entries, Mapping) else entries
        self._entries: dict[int, int] = {o: s for o, s in sorted(items) if s > 0}

    def __getitem__(self, origin: int) -> int:
        return self._entries.get(origin, 0)

    # The dict's own views and lookups, not Mapping's generic ones built on __getitem__.

    def items(self) -> ItemsView[int, int]:
        return self._entries.items()

    def keys(self) -> KeysView[int]:
        return self._entries.keys()

    def values(self) -> ValuesView[int]:
        return self._entries.values()

    def __iter__(self) -> Iterator[int]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, origin: object) -> bool:
        return origin in self._entries

    def __eq__(self, other: object) -> bool:
        if isinstance(other, VersionVector):
            return self._entries == other._entries
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._entries.items()))

    def __repr__(self) -> str:
        return f"VersionVector({self._entries})"

    def covers(self, other: Mapping[int, int]) -> bool:
        """True if every op ``other`` counts is counted here too."""
        mine = self._entries
        return all(mine.get(o, 0) >= s for o, s in other.items())

    def missing(self, other: Mapping[int, int]) -> dict[int, int]:
        """The origins where ``other`` is ahead, with ``other``'s count."""
        return {o: s for o, s in other.items() if self[o] < s}

    def merge(self, other: Mapping[int, int]) -> VersionVector:
        """The pointwise maximum of both vectors."""
        merged = dict(self._entries)
        for o, s in other.items():
            merged[o] = max(merged.get(o, 0), s)
        return VersionVector(merged)

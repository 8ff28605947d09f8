"""A mapping of changes layered over a base mapping, for the writer's overlay states.

``collections.ChainMap`` would do, but every lookup there runs a generator over its maps
in Python; the writer looks accounts, rights and balances up several times per request.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Layer(MutableMapping[K, V]):
    """Reads fall through to ``base``; writes stay in ``own``. Deleting is not supported:
    no state ever forgets a key."""

    __slots__ = ("base", "own")

    def __init__(self, base: Mapping[K, V]) -> None:
        self.own: dict[K, V] = {}
        self.base = base

    def __getitem__(self, key: K) -> V:
        own = self.own
        if key in own:
            return own[key]
        return self.base[key]

    def get(self, key: K, default: V | None = None) -> V | None:  # type: ignore[override]
        own = self.own
        if key in own:
            return own[key]
        return self.base.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.own or key in self.base

    def __setitem__(self, key: K, value: V) -> None:
        self.own[key] = value

    def __delitem__(self, key: K) -> None:
        raise TypeError("a state layer never forgets a key")

    def __iter__(self) -> Iterator[K]:
        yield from self.own
        for key in self.base:
            if key not in self.own:
                yield key

    def __len__(self) -> int:
        return len(self.own) + sum(1 for key in self.base if key not in self.own)

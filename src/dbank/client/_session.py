"""Session tokens on the client side (design §5).

A ``Session`` holds the newest replica state its owner has seen. Every request carries it
and every reply advances it, so a branch serves the next request only once it has seen all
of that: the owner reads its own writes and never goes back in time, whichever branch it
asks. Share one ``Session`` between clients of several branches to carry it across them.
"""

from __future__ import annotations

from dbank.ledger import VersionVector


class Session:
    def __init__(self, token: VersionVector | None = None) -> None:
        self._token = token if token is not None else VersionVector()
        self._source = 0

    @property
    def token(self) -> VersionVector:
        return self._token

    @property
    def source(self) -> int:
        """The branch that answered last (0: none yet). Its replica held the whole token
        then, unless replies of other branches were merged in since: a branch that lacks
        part of the token asks it first."""
        return self._source

    def observe(self, token: VersionVector, source: int = 0) -> None:
        """Take in the state a reply came from, and the branch it came from; the token
        only ever grows."""
        if not self._token.covers(token):
            self._token = self._token.merge(token)
        if source:
            self._source = source

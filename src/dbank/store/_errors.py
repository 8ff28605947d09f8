"""Errors a store raises besides ``Unavailable``, each a kind of ``Unavailable``: the
request that met one may be retried, and nothing was written.

    Unavailable
    ├── StoreUnusable   the store cannot be used as configured (raised when opening it)
    ├── StoreConflict   another process committed to the same store first
    └── LeaseLost       this process no longer holds the branch's replication lease
"""

from __future__ import annotations

from dbank.ledger import Unavailable


class StoreUnusable(Unavailable):
    """The store cannot be used as configured: unreachable when opened, settings that can
    lose acknowledged commits, or the data of another branch. A start-up error."""


class StoreConflict(Unavailable):
    """A commit was refused because the stored state is no longer the state it was decided
    on: another process serving the same branch from the same store committed first.
    Nothing was written; decide again on the fresh state (``catch_up``)."""


class LeaseLost(Unavailable):
    """A commit was refused because this process's replication lease has passed to another
    process (its fencing token is stale). Nothing was written; stop replicating."""


class UnsafeSettings(StoreUnusable):
    """The store's settings can lose acknowledged commits (design §7)."""

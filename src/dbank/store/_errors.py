"""Errors a store raises besides ``Unavailable``. The kinds of ``Unavailable`` are
transient: the request that met one may be retried, and nothing was written.
``StoreCorrupt`` is not: what the store holds cannot be trusted.

    Unavailable
    ├── StoreUnusable   the store cannot be used as configured (raised when opening it)
    ├── StoreConflict   another process committed to the same store first
    └── LeaseLost       this process no longer holds the branch's replication lease
    Internal
    └── StoreCorrupt    a stored row is not what was written (STORE_CORRUPT)
"""

from __future__ import annotations

from dbank.errors import Internal, Unavailable


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


class StoreCorrupt(Internal):
    """The store holds something other than what was written: a row whose digest does
    not match, ops missing from the version vector's range, a state the ops do not give,
    or a data directory that held a branch whose store is gone or empty. The branch
    refuses to serve it (design §7.3); ``dbank verify`` lists what differs."""

    reason = "STORE_CORRUPT"

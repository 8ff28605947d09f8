"""What a store that several processes share adds to ``Store``: a lease and commit notices.

Several server processes may serve one branch from one shared store (Redis). They all
take requests; one of them holds the replication lease and alone runs the branch's links
to its peers, and each takes in the commits of the others when told of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from dbank.store._base import Store


class Lease(Protocol):
    """One process's claim on the right to run a branch's replication.

    ``token`` is set while the process believes it holds the lease; every commit of a
    holder is fenced by it, so a process that lost the lease cannot commit as holder."""

    token: int | None
    ttl_ms: int

    async def take(self, within: float | None = None) -> None:
        """Wait until this process holds the lease.

        Raises:
            StoreUnusable: another live process kept it for ``within`` seconds.
            Unavailable: the store cannot be reached.
        """
        ...

    async def keep(self) -> None:
        """Renew the lease until it is lost, then return."""
        ...


@runtime_checkable
class SharedStore(Store, Protocol):
    """A ``Store`` that other processes serving the same branch may commit to as well."""

    lease: Lease

    def commit_notices(self) -> AsyncIterator[None]:
        """Yields once each time another process may have committed (and once after a
        lost subscription is made again); the reader then calls ``catch_up``."""
        ...

"""The replication lease of a branch served by several processes from one Redis.

One process at a time holds it (``SET NX PX``) and alone runs the replication streams.
Taking it hands out a fencing token larger than every earlier one; while a process holds a
token, every commit it makes checks that the token is still the latest, so a holder that
lost the lease without noticing (a long pause, a cut from Redis) applies nothing more.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import redis.asyncio

from dbank.ledger import Unavailable
from dbank.store._errors import StoreUnusable
from dbank.store.redis._client import Scripts, translated
from dbank.store.redis._keys import RedisKeys

LEASE_TTL_MS = 3000
"""How long a lease outlives its holder's last renewal. A restarted process whose
predecessor died holding the lease waits at most this long for it."""
RENEWALS_PER_TTL = 3
TRIES_PER_TTL = 10


class RedisLease:
    """This process's claim on the lease. ``token`` is set while it believes it holds it."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        keys: RedisKeys,
        scripts: Scripts,
        ttl_ms: int = LEASE_TTL_MS,
    ) -> None:
        self.holder = uuid.uuid4().hex
        self.ttl_ms = ttl_ms
        self.token: int | None = None
        self._client = client
        self._keys = keys
        self._scripts = scripts

    async def acquire(self) -> bool:
        """Take the lease if it is free (or already ours, then extend it); True if ours."""
        with translated("take the replication lease"):
            token = int(
                await self._scripts.lease_acquire(
                    keys=[self._keys.lease, self._keys.fence], args=[self.holder, self.ttl_ms]
                )
            )
        if token:
            self.token = token
        return bool(token)

    async def renew(self) -> bool:
        """Extend the lease; False if it has expired or passed to another process (then
        stop replicating, and ``release``)."""
        if self.token is None:
            return False
        with translated("renew the replication lease"):
            renewed = await self._scripts.lease_renew(
                keys=[self._keys.lease], args=[self._value(), self.ttl_ms]
            )
        return bool(renewed)

    async def release(self) -> None:
        """Give the lease up (if still ours) and stop fencing this process's commits."""
        if self.token is None:
            return
        value, self.token = self._value(), None
        with translated("release the replication lease"):
            await self._scripts.lease_release(keys=[self._keys.lease], args=[value])

    async def take(self, within: float | None = None) -> None:
        """Wait until this process holds the lease (a holder that died lets it run out).

        Raises:
            StoreUnusable: another live process kept it for ``within`` seconds (default:
                two TTLs, time enough for a dead holder's lease to run out).
        """
        if within is None:
            within = 2 * self.ttl_ms / 1000
        deadline = time.monotonic() + within
        while not await self.acquire():
            if time.monotonic() >= deadline:
                raise StoreUnusable(
                    f"another process holds the replication lease ({self._keys.lease}) and"
                    f" kept it for {within:.0f} s: is this branch already running?"
                )
            # Taking a lease is a matter of time: it frees up when its holder's TTL runs out.
            await asyncio.sleep(self.ttl_ms / 1000 / TRIES_PER_TTL)

    async def keep(self) -> None:
        """Renew the lease until it is lost, then return: to another process, or because
        no renewal got through for a whole TTL (it may have expired meanwhile)."""
        renewed = time.monotonic()
        ttl = self.ttl_ms / 1000
        while True:
            await asyncio.sleep(ttl / RENEWALS_PER_TTL)
            try:
                if not await self.renew():
                    return
                renewed = time.monotonic()
            except Unavailable:
                if time.monotonic() - renewed >= ttl:
                    return

    def _value(self) -> str:
        return f"{self.holder}:{self.token}"

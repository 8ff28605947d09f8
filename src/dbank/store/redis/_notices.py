"""Telling the processes that serve one branch from one Redis about each other's commits.

Every commit script publishes the committing process's name on the branch's commit
channel (``RedisKeys.commits``). A process subscribes and takes in what the others
committed when told, instead of asking the store on a timer: a commit reaches the others'
links and reads within a round trip, and an idle branch costs Redis nothing.

Pub/sub delivers only to connected subscribers, so a subscription that is lost (Redis
restarted, the connection cut) may have missed commits: each new subscription is announced
like a commit, and the process takes in whatever it missed.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator

import redis.asyncio
import redis.exceptions

log = logging.getLogger(__name__)

FIRST_BACKOFF = 0.05
MAX_BACKOFF = 2.0


async def commit_notices(client: redis.asyncio.Redis, channel: str, me: str) -> AsyncIterator[None]:
    """Yield once at once and then after other processes' commits on ``channel`` (never
    after the commits of ``me``, this process): the caller takes in what they committed
    each time. Notices that arrive while the caller is busy are coalesced into one. Runs
    until the caller stops iterating; a lost subscription is made again, with backoff,
    and announced by another yield."""
    backoff = FIRST_BACKOFF
    own = me.encode()  # messages come undecoded
    while True:
        subscription = client.pubsub()
        try:
            await subscription.subscribe(channel)
            # Wait for Redis to confirm: a commit published before it reaches no one, so
            # the take-in that the first yield asks for must come after it.
            await subscription.get_message(timeout=None)
            backoff = FIRST_BACKOFF
            yield
            while True:
                if await _others_committed(subscription, own):
                    yield
        except (redis.exceptions.RedisError, OSError) as exc:
            log.warning("commit notices from redis lost: %s; subscribing again", exc)
        finally:
            await subscription.aclose()  # type: ignore[no-untyped-call]  # unannotated upstream
        # Jittered, so that the processes of a branch do not all resubscribe in step.
        await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
        backoff = min(backoff * 2, MAX_BACKOFF)


async def _others_committed(subscription: redis.asyncio.client.PubSub, own: bytes) -> bool:
    """Wait for a message; True if it, or any message already waiting behind it, names
    another process."""
    others = False
    message = await subscription.get_message(ignore_subscribe_messages=True, timeout=None)
    while message is not None:
        others = others or message["data"] != own
        message = await subscription.get_message(ignore_subscribe_messages=True, timeout=0)
    return others

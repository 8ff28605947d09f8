"""The outbound replication stream to one peer (DESIGN §4).

The link dials the peer, says hello, learns the peer's durable vector, and then streams
this branch's own ops as they commit, in batches, one batch in flight at a time; each ack
carries the peer's new vector. On (re)connect it also relays every op the peer lacks, from
any origin, and later it relays another origin's ops whenever the peer has lagged on that
origin for ``RELAY_AFTER``: so a branch cut off from an origin still catches up through
the others. Only committed (durable) ops are ever sent.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable

import grpc

from dbank._proto import replication_pb2 as pb
from dbank._wire import vector_from_wire
from dbank.branch import Branch
from dbank.branch._watch import VectorWatch
from dbank.ledger import Op, OpId, VersionVector
from dbank.ledger.codec import encode_op
from dbank.replication._peer import Peer

log = logging.getLogger(__name__)

BATCH_LIMIT = 512
RELAY_AFTER = 0.5
FIRST_BACKOFF = 0.05
MAX_BACKOFF = 1.0


class LinkClosed(Exception):
    """The peer ended the stream."""


class OutboundLink:
    """Runs until cancelled; ``acked`` publishes the peer's durable vector."""

    def __init__(
        self,
        branch: Branch,
        peer: Peer,
        genesis_digest: str = "",
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.peer = peer
        self.acked = VectorWatch()
        self._connected = False
        self._on_change = on_change
        self.attempted = asyncio.Event()
        """Set once the first connection attempt has succeeded or failed."""
        self._branch = branch
        self._genesis_digest = genesis_digest
        self._sent: dict[int, int] = {}
        self._lag_since: dict[int, float] = {}

    @property
    def connected(self) -> bool:
        return self._connected

    @connected.setter
    def connected(self, value: bool) -> None:
        if value != self._connected:
            self._connected = value
            # Wake whoever waits on an ack: it will not come over this stream.
            self.acked.publish(self.acked.vector)
            self._on_change()

    async def confirms(self, op_id: OpId, within: float) -> bool:
        """Wait until the peer has applied ``op_id`` durably; False if it has not within
        ``within`` seconds or the stream goes down first."""
        await self.acked.wait_for(
            lambda v: v[op_id.origin] >= op_id.seq or not self._connected, within
        )
        return self.acked.vector[op_id.origin] >= op_id.seq

    async def run(self) -> None:
        backoff = FIRST_BACKOFF
        while True:
            try:
                await self._stream()
            except (grpc.aio.AioRpcError, LinkClosed) as exc:
                if self.connected:
                    log.info("link to branch %d lost: %s", self.peer.branch_id, _brief(exc))
                backoff = FIRST_BACKOFF if self.connected else min(backoff * 2, MAX_BACKOFF)
            finally:
                self.connected = False
                self.attempted.set()
            # Backoff between reconnections, spread out so peers do not retry in step.
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))

    async def _stream(self) -> None:
        outbox: asyncio.Queue[pb.ReplicateRequest] = asyncio.Queue()
        hello = pb.Hello(branch_id=self._branch.branch_id, genesis_digest=self._genesis_digest)
        outbox.put_nowait(pb.ReplicateRequest(hello=hello))
        call = self.peer.replication.Replicate(_drain(outbox))
        replies = call.__aiter__()
        first = await anext(replies, None)
        if first is None:
            raise LinkClosed("the peer closed the stream")
        self.acked.publish(vector_from_wire(first.applied))
        self._sent = dict(self.acked.vector.items())
        self._lag_since.clear()
        self.connected = True
        self.attempted.set()
        log.info("link to branch %d up at %s", self.peer.branch_id, self.peer.address)
        relay_all = True
        try:
            while True:
                seen = self._branch.version_vector
                ops = await self._next_batch(relay_all)
                relay_all = False
                if not ops:
                    # Nothing to send: wait for a commit, or re-check the relay rule.
                    await self._branch.writer.committed.wait_for(seen.__ne__, RELAY_AFTER)
                    continue
                outbox.put_nowait(pb.ReplicateRequest(batch=pb.OpBatch(ops=map(encode_op, ops))))
                for op in ops:
                    self._sent[op.id.origin] = max(self._sent.get(op.id.origin, 0), op.id.seq)
                reply = await anext(replies, None)
                if reply is None:
                    raise LinkClosed("the peer closed the stream")
                self.acked.publish(vector_from_wire(reply.applied))
        finally:
            call.cancel()

    async def _next_batch(self, relay_all: bool) -> list[Op]:
        """The ops to send next: this branch's own ops the peer has not been sent, and
        others' ops it lacks when the relay rule says so."""
        me = self._branch.branch_id
        mine = self._branch.version_vector
        peer = self.acked.vector
        now = time.monotonic()
        start: dict[int, int] = {}
        for origin, count in mine.items():
            sent = max(peer[origin], self._sent.get(origin, 0))
            if peer[origin] >= count:
                self._lag_since.pop(origin, None)
            if origin == me or relay_all:
                if sent < count:
                    start[origin] = sent
                continue
            if peer[origin] < count:
                since = self._lag_since.setdefault(origin, now)
                if now - since >= RELAY_AFTER:
                    start[origin] = peer[origin]
                    self._lag_since[origin] = now
        if not start:
            return []
        have = VersionVector({**dict(mine.items()), **start})
        return await self._branch.ops_lacking(have, BATCH_LIMIT)


async def _drain(outbox: asyncio.Queue[pb.ReplicateRequest]) -> AsyncIterator[pb.ReplicateRequest]:
    while True:
        yield await outbox.get()


def _brief(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc)

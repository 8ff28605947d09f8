"""The outbound replication stream to one peer (design §4).

The link dials the peer, says hello, learns the peer's durable vector, and then streams
this branch's own ops that the peer lacks, in batches as they commit, one batch in flight
at a time; each ack carries the peer's new counts for the origins of the batch. Only
committed (durable) ops are ever sent.

A link carries its own branch's ops only. Ops of a third branch reach a peer over that
branch's own link, or, while that link is down, by the peer's own catch-up
(``replication._catch_up``), which pulls them from anyone it can reach: relaying on the
sender's side would need every sender to keep an up-to-date view of every peer's vector,
which costs a message per peer per commit in the healthy case to serve the faulty one.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable

import grpc

from dbank._log_limit import RepeatLimiter
from dbank._proto import replication_pb2 as pb
from dbank._wire import vector_from_wire
from dbank.branch import Branch, VectorWatch
from dbank.ledger import OpId, VersionVector
from dbank.replication._peer import Peer, has_error_info
from dbank.tracing import BranchTrace

log = logging.getLogger(__name__)

BATCH_LIMIT = 8192
"""The most ops one message of a link carries: a whole batch request's ops (up to 8,000)
go to each peer in one message."""
FIRST_BACKOFF = 0.05
MAX_BACKOFF = 1.0


class LinkClosed(Exception):
    """The peer ended the stream."""


class OutboundLink:
    """Runs until cancelled; ``acked`` publishes the peer's durable vector as last heard."""

    def __init__(
        self,
        branch: Branch,
        peer: Peer,
        on_change: Callable[[], None] = lambda: None,
        trace: BranchTrace | None = None,
    ) -> None:
        self.peer = peer
        self.acked = VectorWatch()
        self._connected = False
        self._on_change = on_change
        self.attempted = asyncio.Event()
        """Set once the first connection attempt has succeeded or failed."""
        self._branch = branch
        self._trace = trace
        self._quiet = RepeatLimiter(log)
        """The link's repeated lines (a peer that refuses every reconnection, a link that
        flaps), each logged once and then counted."""

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
        peer_id = self.peer.branch_id
        while True:
            try:
                await self._stream()
            except (grpc.aio.AioRpcError, LinkClosed) as exc:
                # A status with an ErrorInfo is the peer's answer: it refuses this branch's
                # hello or ops (GENESIS_MISMATCH, REPLICATION_HALTED, CLOCK_AHEAD...), and
                # will again; retrying at once would refuse and log many times a second.
                refused = isinstance(exc, grpc.aio.AioRpcError) and has_error_info(exc)
                if refused:
                    self._quiet.warning(
                        ("refused", peer_id), "branch %d refuses our ops: %s", peer_id, _brief(exc)
                    )
                elif self.connected:
                    self._quiet.info(
                        ("lost", peer_id), "link to branch %d lost: %s", peer_id, _brief(exc)
                    )
                lost = self.connected and not refused
                backoff = FIRST_BACKOFF if lost else min(backoff * 2, MAX_BACKOFF)
            finally:
                self.connected = False
                self.attempted.set()
            # Backoff between reconnections, spread out so peers do not retry in step.
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))

    async def _stream(self) -> None:
        me = self._branch.branch_id
        outbox: asyncio.Queue[pb.ReplicateRequest] = asyncio.Queue()
        hello = pb.Hello(branch_id=me, genesis_digest=self._branch.config.genesis_digest)
        outbox.put_nowait(pb.ReplicateRequest(hello=hello))
        call = self.peer.replication.Replicate(_drain(outbox))
        replies = call.__aiter__()
        first = await anext(replies, None)
        if first is None:
            raise LinkClosed("the peer closed the stream")
        self.acked.publish(vector_from_wire(first.applied))
        self.connected = True
        self.attempted.set()
        self._quiet.info(
            ("up", self.peer.branch_id),
            "link to branch %d up at %s",
            self.peer.branch_id,
            self.peer.address,
        )
        committed = self._branch.committed
        sent = self.acked.vector[me]
        trace = self._trace
        try:
            while True:
                await committed.wait_for(_beyond(me, sent), None)
                found = await self._branch.encoded_ops_of(me, sent, BATCH_LIMIT)
                ops = [op for op, _ in found]
                batch = pb.OpBatch(ops=[data for _, data in found])
                if trace is not None:
                    batch.lamport = trace.sending(ops, self.peer.branch_id)
                outbox.put_nowait(pb.ReplicateRequest(batch=batch))
                sent = ops[-1].id.seq
                reply = await anext(replies, None)
                if reply is None:
                    raise LinkClosed("the peer closed the stream")
                if trace is not None:
                    trace.acked(ops, reply.lamport, self.peer.branch_id)
                # The ack counts what the peer applied, which is less than what was sent
                # only while some op of the batch still waits there for a dep from a
                # third branch; the next ack covers it.
                self.acked.publish(self.acked.vector.merge(vector_from_wire(reply.applied)))
        finally:
            call.cancel()


def _beyond(origin: int, seq: int) -> Callable[[VersionVector], bool]:
    return lambda vector: vector[origin] > seq


async def _drain(outbox: asyncio.Queue[pb.ReplicateRequest]) -> AsyncIterator[pb.ReplicateRequest]:
    while True:
        yield await outbox.get()


def _brief(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc)

"""The ``dbank.v1.Replication`` service: what other branches ask of this one.

On a secure branch only branches call it, each only as itself: the caller's identity is
the branch its client certificate names (mutual TLS, checked by the peer port's
handshake), and every branch id a message claims must be that one; a stream from branch N
carries only ops of origin N (design §11). Errors of the stream are mapped here (the
interceptor maps unary methods only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping

import grpc

from dbank._log_limit import RepeatLimiter
from dbank._proto import bank_pb2, replication_pb2_grpc
from dbank._proto import replication_pb2 as pb
from dbank._status import abort_with
from dbank._wire import vector_from_wire, vector_to_wire
from dbank.branch import Branch
from dbank.ledger import (
    DbankError,
    Grant,
    Internal,
    InvalidArgument,
    PermissionDenied,
    Unavailable,
    VersionVector,
)
from dbank.ledger.codec import encode_op
from dbank.replication import InboundStreams
from dbank.security import branch_id_of_peer
from dbank.tracing import BranchTrace

log = logging.getLogger(__name__)

MAX_FETCH = 2000
ACK_WAIT = 5.0
HELD_GRACE = 0.5
"""How long a batch's held ops may wait for their deps to arrive on their own before the
branch fetches them from the batch's sender: long enough that the usual stream or catch-up
brings them without one more connection (at 50 ms, a 50-branch run opened hundreds more),
far shorter than holding the stream for ``ACK_WAIT``."""
_PEER_CERTIFICATE = "x509_pem_cert"
"""The ``auth_context()`` key of the peer's verified certificate (gRPC Core's name), the
one ``branch_id_of_peer`` reads."""
_KNOWN_CERTIFICATES = 1024
"""How many peer certificates' branch ids a servicer remembers (a bank has one per branch)."""


class ReplicationServicer(replication_pb2_grpc.ReplicationServicer):
    def __init__(
        self,
        branch: Branch,
        inbound: InboundStreams,
        trace: BranchTrace | None = None,
        *,
        secure: bool = False,
    ) -> None:
        """``secure``: callers must prove which branch they are with a client certificate
        (else every caller is believed, as on an ``--insecure`` branch)."""
        self._branch = branch
        self._inbound = inbound
        self._trace = trace
        self._secure = secure
        self._quiet = RepeatLimiter(log)
        """Refusals of a peer's calls, each kind logged once per peer and then counted: a
        refused peer reconnects and is refused again many times a second."""
        self._proven: dict[tuple[bytes, ...], int | None] = {}
        """``branch_id_of_peer`` by the caller's verified certificates: parsing one on
        every call cost more than anything else the servicer does per call."""
        self._streams: set[asyncio.Queue[_Queued]] = set()
        self._closing = False

    def close(self) -> None:
        """End every open stream now: a stopping branch does not wait for its peers to
        hang up (they reconnect to its next incarnation)."""
        self._closing = True
        for stream in self._streams:
            stream.put_nowait(None)
        self._quiet.flush()  # the counts of refusals not yet said

    def _check_caller(self, context: grpc.aio.ServicerContext, claimed: int) -> None:
        """Refuse a caller that is not the branch ``claimed`` names, then one that is not a
        peer.

        Raises:
            PermissionDenied: ``NOT_A_BRANCH`` (no branch certificate) or
                ``BRANCH_IDENTITY_MISMATCH`` (the certificate names another branch).
            InvalidArgument: ``UNKNOWN_BRANCH``.
        """
        if self._secure:
            proven = self._proven_branch(context.auth_context())
            if proven is None:
                self._log_refusal("NOT_A_BRANCH", proven, claimed)
                raise PermissionDenied(
                    "only a branch of this bank, with its certificate, may call the"
                    " replication service",
                    reason="NOT_A_BRANCH",
                )
            if proven != claimed:
                self._log_refusal("BRANCH_IDENTITY_MISMATCH", proven, claimed)
                raise PermissionDenied(
                    f"the caller's certificate names branch {proven}, not {claimed}",
                    reason="BRANCH_IDENTITY_MISMATCH",
                )
        self._check_peer(claimed)

    def _proven_branch(self, auth_context: Mapping[str, Iterable[bytes]]) -> int | None:
        # Only certificates that the handshake verified against the bank's CA get here.
        certificates = tuple(auth_context.get(_PEER_CERTIFICATE, ()))
        if certificates in self._proven:
            return self._proven[certificates]
        if len(self._proven) >= _KNOWN_CERTIFICATES:
            self._proven.clear()
        proven = self._proven[certificates] = branch_id_of_peer(auth_context)
        return proven

    def _log_refusal(self, reason: str, proven: int | None, claimed: int) -> None:
        # One line per kind of refusal and caller, then a count, not one per retry.
        who = "a caller without a branch certificate" if proven is None else f"branch {proven}"
        self._quiet.warning(
            (reason, proven, claimed),
            "refused %s claiming to be branch %d: %s",
            who,
            claimed,
            reason,
        )

    def _check_peer(self, branch_id: int) -> None:
        if branch_id not in self._branch.config.peers:
            raise InvalidArgument(
                f"branch {branch_id} is not a peer of branch {self._branch.branch_id}",
                reason="UNKNOWN_BRANCH",
                field="branch_id",
            )

    async def Replicate(
        self,
        request_iterator: AsyncIterator[pb.ReplicateRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.ReplicateResponse]:
        if self._closing:
            return
        # Requests are read by a task of their own into a queue, so that ``close`` can end
        # the stream by queueing its end.
        stream: asyncio.Queue[_Queued] = asyncio.Queue()
        reader = asyncio.create_task(_read_into(request_iterator, stream))
        self._streams.add(stream)
        peer_id: int | None = None
        try:
            first = await _next(stream)
            if first is None or not first.HasField("hello"):
                raise InvalidArgument("a replication stream starts with a Hello")
            peer_id = first.hello.branch_id
            self._check_caller(context, peer_id)
            if first.hello.genesis_digest != self._branch.config.genesis_digest:
                raise Unavailable(
                    f"branch {peer_id} belongs to another bank (genesis differs)",
                    reason="GENESIS_MISMATCH",
                )
            trace = self._trace
            with self._inbound.streaming(peer_id):
                yield pb.ReplicateResponse(applied=vector_to_wire(self._branch.version_vector))
                while (request := await _next(stream)) is not None:
                    if not request.HasField("batch"):
                        raise InvalidArgument("only op batches follow the Hello")
                    if trace is None:
                        yield pb.ReplicateResponse(
                            applied=await self._apply(request.batch, peer_id)
                        )
                    else:
                        yield await self._apply_traced(request.batch, peer_id, trace)
        except DbankError as exc:
            if not isinstance(exc, PermissionDenied):  # logged by _check_caller already
                # ORIGIN_MISMATCH, REPLICATION_HALTED, CLOCK_AHEAD...: the peer reconnects
                # and is refused again; one line per peer and reason, then a count.
                self._quiet.warning(
                    ("stream", exc.reason, peer_id),
                    "replication stream from branch %s refused: %s: %s",
                    "?" if peer_id is None else peer_id,
                    exc.reason,
                    exc,
                )
            await abort_with(context, exc)
        finally:
            self._streams.discard(stream)
            reader.cancel()

    async def _apply(self, batch: pb.OpBatch, peer_id: int) -> bank_pb2.VersionVector:
        """Apply a batch of ``peer_id``'s own ops and say how much of it is durable here:
        all of it, unless an op still waits for a dep from a third branch after
        ``ACK_WAIT`` seconds."""
        sent = await self._branch.receive(batch.ops, origin=peer_id)
        committed = self._branch.committed
        if not await committed.wait_for(lambda v: v.covers(sent), HELD_GRACE):
            # An op waits for deps of a third branch, which may not stream here (a large
            # bank): the sender applied them before it made the op (I2), so ask it.
            with contextlib.suppress(DbankError):
                await self._branch.cover(sent, ACK_WAIT, source=peer_id)
        applied = committed.vector
        return vector_to_wire(VersionVector({origin: applied[origin] for origin in sent}))

    async def _apply_traced(
        self, batch: pb.OpBatch, peer_id: int, trace: BranchTrace
    ) -> pb.ReplicateResponse:
        """``_apply`` between the Lamport receive of the batch and the send of its ack."""
        received = trace.received(batch.ops, batch.lamport, peer_id)
        applied = await self._apply(batch, peer_id)
        return pb.ReplicateResponse(applied=applied, lamport=trace.acking(received, peer_id))

    async def FetchOps(
        self, request: pb.FetchOpsRequest, context: grpc.aio.ServicerContext
    ) -> pb.FetchOpsResponse:
        self._check_caller(context, request.branch_id)
        if request.seal_hlc:
            await self._branch.seal(request.seal_hlc)
        limit = min(request.limit or MAX_FETCH, MAX_FETCH)
        ops = await self._branch.ops_lacking(vector_from_wire(request.have), limit)
        return pb.FetchOpsResponse(
            ops=[encode_op(op) for op in ops],
            applied=vector_to_wire(self._branch.version_vector),
        )

    async def RequestRights(
        self, request: pb.RequestRightsRequest, context: grpc.aio.ServicerContext
    ) -> pb.RequestRightsResponse:
        self._check_caller(context, request.branch_id)
        if request.shortfall <= 0:
            raise InvalidArgument(
                "shortfall must be > 0", reason="INVALID_AMOUNT", field="shortfall"
            )
        grant = await self._branch.grant(
            request.account_id, request.branch_id, request.shortfall, request.borrow_id
        )
        if grant is None:
            return pb.RequestRightsResponse(granted=0)
        if not isinstance(grant.body, Grant):
            raise Internal(f"op {grant.id} is not a grant")
        return pb.RequestRightsResponse(granted=grant.body.amount, grant_op=encode_op(grant))


_Queued = pb.ReplicateRequest | DbankError | None
"""A request of the stream, the reason the rest cannot be read (a message the edge
refused), or its end."""


async def _read_into(
    requests: AsyncIterator[pb.ReplicateRequest], stream: asyncio.Queue[_Queued]
) -> None:
    try:
        async for request in requests:
            stream.put_nowait(request)
    except DbankError as exc:
        stream.put_nowait(exc)
    finally:
        stream.put_nowait(None)


async def _next(stream: asyncio.Queue[_Queued]) -> pb.ReplicateRequest | None:
    """The stream's next request, or None at its end.

    Raises:
        DbankError: the edge refused the next message (``dbank.server._guard``).
    """
    queued = await stream.get()
    if isinstance(queued, DbankError):
        raise queued
    return queued

"""The ``dbank.v1.Replication`` service: what other branches ask of this one.

Errors of the stream are mapped here (the interceptor maps unary methods only).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc

from dbank._proto import replication_pb2 as pb
from dbank._proto import replication_pb2_grpc
from dbank._wire import vector_from_wire, vector_to_wire
from dbank.branch import Branch
from dbank.ledger import DbankError, Grant, Internal, InvalidArgument, Unavailable
from dbank.ledger.codec import encode_op
from dbank.server._errors import to_status

log = logging.getLogger(__name__)

MAX_FETCH = 2000


class ReplicationServicer(replication_pb2_grpc.ReplicationServicer):
    def __init__(self, branch: Branch, genesis_digest: str = "") -> None:
        self._branch = branch
        self._genesis_digest = genesis_digest
        self._closing = asyncio.Event()

    def close(self) -> None:
        """End every open stream now: a stopping branch does not wait for its peers to
        hang up (they reconnect to its next incarnation)."""
        self._closing.set()

    async def _next(
        self, requests: AsyncIterator[pb.ReplicateRequest]
    ) -> pb.ReplicateRequest | None:
        """The next request of the stream, or None once it ends or the branch closes."""
        if self._closing.is_set():
            return None
        reading = asyncio.ensure_future(anext(requests, None))
        closing = asyncio.ensure_future(self._closing.wait())
        done, _ = await asyncio.wait({reading, closing}, return_when=asyncio.FIRST_COMPLETED)
        closing.cancel()
        if reading not in done:
            reading.cancel()
            return None
        return reading.result()

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
        try:
            first = await self._next(request_iterator)
            if first is None or not first.HasField("hello"):
                raise InvalidArgument("a replication stream starts with a Hello")
            self._check_peer(first.hello.branch_id)
            if first.hello.genesis_digest != self._genesis_digest:
                raise Unavailable(
                    f"branch {first.hello.branch_id} belongs to another bank (genesis differs)",
                    reason="GENESIS_MISMATCH",
                )
            yield pb.ReplicateResponse(applied=vector_to_wire(self._branch.version_vector))
            while (request := await self._next(request_iterator)) is not None:
                if not request.HasField("batch"):
                    raise InvalidArgument("only op batches follow the Hello")
                await self._branch.receive(request.batch.ops)
                yield pb.ReplicateResponse(applied=vector_to_wire(self._branch.version_vector))
        except DbankError as exc:
            log.warning("replication stream refused: %s", exc)
            status = to_status(exc)
            await context.abort(status.code, status.details, status.trailing_metadata)

    async def FetchOps(
        self, request: pb.FetchOpsRequest, context: grpc.aio.ServicerContext
    ) -> pb.FetchOpsResponse:
        self._check_peer(request.branch_id)
        limit = min(request.limit or MAX_FETCH, MAX_FETCH)
        ops = await self._branch.ops_lacking(vector_from_wire(request.have), limit)
        return pb.FetchOpsResponse(
            ops=[encode_op(op) for op in ops],
            applied=vector_to_wire(self._branch.version_vector),
        )

    async def RequestRights(
        self, request: pb.RequestRightsRequest, context: grpc.aio.ServicerContext
    ) -> pb.RequestRightsResponse:
        self._check_peer(request.branch_id)
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

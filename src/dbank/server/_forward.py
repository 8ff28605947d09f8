"""Requests that only an account's owner branch carries out, sent there by another branch
(DESIGN §1: the owner branch alone posts an account's interest)."""

from __future__ import annotations

import grpc

from dbank._proto import bank_pb2 as pb
from dbank._proto import bank_pb2_grpc
from dbank._wire import vector_from_wire
from dbank.client._errors import error_from_rpc
from dbank.ledger import OpId, VersionVector


async def interest_at_owner(
    address: str, request: pb.CalculateInterestRequest, within: float
) -> tuple[OpId, VersionVector]:
    """Send ``request`` unchanged (same request id, same session) to the owner branch at
    ``address``; return the posting's op and the owner's state right after.

    A channel per call: interest is posted once a day per account, and a short-lived
    channel needs no one to close it at shutdown.

    Raises:
        DbankError: the owner's answer, or ``Unavailable`` if it cannot be reached.
    """
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            reply = await bank_pb2_grpc.BankStub(channel).CalculateInterest(request, timeout=within)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None
    return OpId(reply.op_id.origin, reply.op_id.seq), vector_from_wire(reply.session)

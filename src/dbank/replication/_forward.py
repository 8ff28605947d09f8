"""Forwarding a retried write to the branch its request id belongs to (design §3.1).

A request id belongs to the branch it was first sent to: only that branch may decide the
request, so a retry that reaches another branch before the op has replicated there is
sent on to that branch, and its answer relayed. Deciding it again here instead could apply
it twice: once at each branch.
"""

from __future__ import annotations

from typing import Protocol

from dbank._proto import bank_pb2 as pb
from dbank._wire import op_id_from_wire, vector_from_wire, vector_to_wire
from dbank.branch import WriteResult
from dbank.ledger import (
    DbankError,
    DeadlineExceeded,
    DepositCommand,
    RequestBranchUnreachable,
    TransferCommand,
    Unavailable,
    VersionVector,
    WithdrawCommand,
)
from dbank.replication._peer import Peer
from dbank.security import forwarded_metadata

WriteCommand = DepositCommand | WithdrawCommand | TransferCommand


class _WriteRequest(Protocol):
    request_id: str
    currency: str
    write_concern: pb.WriteConcern.ValueType
    request_branch: int

    @property
    def session(self) -> pb.VersionVector: ...


async def forward_write(
    peer: Peer, command: WriteCommand, session: VersionVector, wait_all: bool, within: float
) -> WriteResult:
    """Have ``peer`` (the request's own branch) carry out ``command`` and return its answer.

    Raises:
        RequestBranchUnreachable: ``peer`` could not be reached, or did not answer at all,
            within ``within`` seconds (waiting meanwhile for its connection).
        DbankError: ``peer``'s answer (InsufficientFunds, RequestIdReused, ...).
    """
    concern = pb.WRITE_CONCERN_ALL if wait_all else pb.WRITE_CONCERN_LOCAL
    balances: tuple[tuple[str, int], ...]
    try:
        match command:
            case DepositCommand():
                deposit = pb.DepositRequest(account_id=command.account_id, amount=command.amount)
                _stamp(deposit, command, session, concern, peer.branch_id)
                reply = await peer.call(
                    peer.bank.Deposit, deposit, within, metadata=forwarded_metadata()
                )
                balances = ((reply.account_id, reply.balance),)
            case WithdrawCommand():
                withdrawal = pb.WithdrawRequest(
                    account_id=command.account_id, amount=command.amount
                )
                _stamp(withdrawal, command, session, concern, peer.branch_id)
                reply = await peer.call(
                    peer.bank.Withdraw, withdrawal, within, metadata=forwarded_metadata()
                )
                balances = ((reply.account_id, reply.balance),)
            case TransferCommand():
                transfer = pb.TransferRequest(
                    from_account_id=command.from_account_id,
                    to_account_id=command.to_account_id,
                    amount=command.amount,
                )
                _stamp(transfer, command, session, concern, peer.branch_id)
                reply = await peer.call(
                    peer.bank.Transfer, transfer, within, metadata=forwarded_metadata()
                )
                balances = (
                    (reply.from_account_id, reply.from_balance),
                    (reply.to_account_id, reply.to_balance),
                )
    except DbankError as error:
        # The branch's own specific answers (SESSION_NOT_COVERED, BRANCHES_UNREACHABLE...)
        # pass through; no connection, a plain UNAVAILABLE or no answer in time means it is
        # out of reach.
        if type(error) in (Unavailable, DeadlineExceeded):
            raise RequestBranchUnreachable(
                f"request id {command.request_id!r} belongs to branch {peer.branch_id}, which"
                f" did not answer ({error.reason}); retry later",
                branch=str(peer.branch_id),
            ) from None
        raise
    return WriteResult(
        op_id_from_wire(reply.op_id),
        balances,
        reply.currency,
        vector_from_wire(reply.session),
        tuple(reply.unconfirmed_branches),
        answered_by=peer.branch_id,
    )


def _stamp(
    request: _WriteRequest,
    command: WriteCommand,
    session: VersionVector,
    concern: pb.WriteConcern.ValueType,
    branch: int,
) -> None:
    """The fields every forwarded write carries: the same request id, so the branch
    recognises the request, and that branch as the request's, so it decides it."""
    request.request_id = command.request_id
    request.currency = command.currency
    request.session.CopyFrom(vector_to_wire(session))
    request.write_concern = concern
    request.request_branch = branch

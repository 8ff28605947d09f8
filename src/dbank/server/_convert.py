"""The one place where wire messages meet the domain: requests to commands, results to
replies. A malformed field raises ``InvalidArgument`` naming it."""

from __future__ import annotations

from dbank._proto import bank_pb2 as pb
from dbank.branch import AccountView, WriteResult
from dbank.ledger import (
    AccountType,
    DepositCommand,
    InvalidArgument,
    OpenAccountCommand,
    OpId,
    TransferCommand,
    WithdrawCommand,
)
from dbank.money import DEFAULT_CURRENCY, currency

_ACCOUNT_TYPES = {
    pb.ACCOUNT_TYPE_CHECKING: AccountType.CHECKING,
    pb.ACCOUNT_TYPE_SAVINGS: AccountType.SAVINGS,
}
_WIRE_ACCOUNT_TYPES = {domain: wire for wire, domain in _ACCOUNT_TYPES.items()}


def open_account_command(request: pb.CreateAccountRequest) -> OpenAccountCommand:
    account_type = _ACCOUNT_TYPES.get(request.type)
    if account_type is None:
        raise InvalidArgument(
            "type must be ACCOUNT_TYPE_CHECKING or ACCOUNT_TYPE_SAVINGS",
            reason="INVALID_ACCOUNT_TYPE",
            field="type",
        )
    return OpenAccountCommand(
        account_id=request.account_id,
        type=account_type,
        currency=request.currency or DEFAULT_CURRENCY,
        owner=request.owner,
        request_id=request.request_id,
    )


def deposit_command(request: pb.DepositRequest) -> DepositCommand:
    return DepositCommand(request.account_id, request.amount, request.request_id, request.currency)


def withdraw_command(request: pb.WithdrawRequest) -> WithdrawCommand:
    return WithdrawCommand(request.account_id, request.amount, request.request_id, request.currency)


def transfer_command(request: pb.TransferRequest) -> TransferCommand:
    return TransferCommand(
        request.from_account_id,
        request.to_account_id,
        request.amount,
        request.request_id,
        request.currency,
    )


def op_id(value: OpId) -> pb.OpId:
    return pb.OpId(origin=value.origin, seq=value.seq)


def account(view: AccountView) -> pb.Account:
    record = view.record
    return pb.Account(
        account_id=record.account_id,
        type=_WIRE_ACCOUNT_TYPES[record.type],
        currency=record.currency,
        currency_exponent=currency(record.currency).exponent,
        owner=record.owner,
        balance=view.balance,
        withdrawable_here=view.withdrawable_here,
        owner_branch=record.owner_branch,
    )


def deposit_response(result: WriteResult) -> pb.DepositResponse:
    ((account_id, balance),) = result.balances
    return pb.DepositResponse(
        account_id=account_id, balance=balance, currency=result.currency, op_id=op_id(result.op_id)
    )


def withdraw_response(result: WriteResult) -> pb.WithdrawResponse:
    ((account_id, balance),) = result.balances
    return pb.WithdrawResponse(
        account_id=account_id, balance=balance, currency=result.currency, op_id=op_id(result.op_id)
    )


def transfer_response(result: WriteResult) -> pb.TransferResponse:
    (from_id, from_balance), (to_id, to_balance) = result.balances
    return pb.TransferResponse(
        from_account_id=from_id,
        from_balance=from_balance,
        to_account_id=to_id,
        to_balance=to_balance,
        currency=result.currency,
        op_id=op_id(result.op_id),
    )

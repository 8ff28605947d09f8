"""The one place where wire messages meet the domain: requests to commands, results to
replies. A malformed field raises ``InvalidArgument`` naming it."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

import grpc
from google.protobuf import timestamp_pb2

from dbank._proto import bank_pb2 as pb
from dbank._status import status_message
from dbank._wire import (
    ACCOUNT_TYPE_FROM_WIRE,
    ACCOUNT_TYPE_TO_WIRE,
    op_id_to_wire,
    vector_from_wire,
    vector_to_wire,
)
from dbank.branch import (
    MAX_WAIT,
    AccountView,
    BatchCommand,
    BatchResult,
    HistoryPage,
    InterestResult,
    RequestContext,
    StatementResult,
    WriteResult,
)
from dbank.ledger import (
    DbankError,
    DepositCommand,
    Entry,
    InterestCommand,
    InvalidArgument,
    OpenAccountCommand,
    TransferCommand,
    WithdrawCommand,
)
from dbank.ledger.clock import LOGICAL_BITS
from dbank.ledger.interest import parse_day
from dbank.money import DEFAULT_CURRENCY, currency
from dbank.security import caller_name


def open_account_command(request: pb.CreateAccountRequest) -> OpenAccountCommand:
    account_type = ACCOUNT_TYPE_FROM_WIRE.get(request.type)
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
        caller=caller_name(),
    )


def deposit_command(request: pb.DepositRequest) -> DepositCommand:
    return DepositCommand(
        request.account_id, request.amount, request.request_id, request.currency, caller_name()
    )


def withdraw_command(request: pb.WithdrawRequest) -> WithdrawCommand:
    return WithdrawCommand(
        request.account_id, request.amount, request.request_id, request.currency, caller_name()
    )


def transfer_command(request: pb.TransferRequest) -> TransferCommand:
    return TransferCommand(
        request.from_account_id,
        request.to_account_id,
        request.amount,
        request.request_id,
        request.currency,
        caller_name(),
    )


class _SessionRequest(Protocol):
    @property
    def session(self) -> pb.VersionVector: ...


class _WriteRequest(_SessionRequest, Protocol):
    @property
    def write_concern(self) -> pb.WriteConcern.ValueType: ...


# Leave the caller's deadline some room for the reply itself.
_DEADLINE_SHARE = 0.9
_DEADLINE_MARGIN = 0.05


def read_context(request: _SessionRequest, context: grpc.aio.ServicerContext) -> RequestContext:
    return RequestContext(
        session=vector_from_wire(request.session),
        budget=_budget(context),
        session_source=request.session.from_branch,
    )


def write_context(
    request: _WriteRequest, context: grpc.aio.ServicerContext, *, request_branch: int = 0
) -> RequestContext:
    """``request_branch``: the request's field of that name, for the writes that have it."""
    return RequestContext(
        session=vector_from_wire(request.session),
        wait_all=request.write_concern != pb.WRITE_CONCERN_LOCAL,
        budget=_budget(context),
        request_branch=request_branch,
        session_source=request.session.from_branch,
    )


def _budget(context: grpc.aio.ServicerContext) -> float:
    """Every wait on other branches is capped at the caller's deadline less a margin, and
    at ``MAX_WAIT`` (design §5)."""
    remaining: float | None = context.time_remaining()
    if remaining is None:
        return MAX_WAIT
    return max(0.0, min(MAX_WAIT, remaining * _DEADLINE_SHARE - _DEADLINE_MARGIN))


def account(view: AccountView) -> pb.Account:
    record = view.record
    return pb.Account(
        account_id=record.account_id,
        type=ACCOUNT_TYPE_TO_WIRE[record.type],
        currency=record.currency,
        currency_exponent=currency(record.currency).exponent,
        owner=record.owner,
        balance=view.balance,
        withdrawable_here=view.withdrawable_here,
        owner_branch=record.owner_branch,
    )


def deposit_response(result: WriteResult) -> pb.DepositResponse:
    return pb.DepositResponse(**_balance_change(result))


def withdraw_response(result: WriteResult) -> pb.WithdrawResponse:
    return pb.WithdrawResponse(**_balance_change(result))


def _balance_change(result: WriteResult) -> dict[str, Any]:
    """The fields deposit and withdrawal replies share."""
    ((account_id, balance),) = result.balances
    return {
        "account_id": account_id,
        "balance": balance,
        "currency": result.currency,
        "op_id": op_id_to_wire(result.op_id),
        "session": vector_to_wire(result.session),
        "unconfirmed_branches": result.unconfirmed,
        "answered_by": result.answered_by,
    }


def transfer_response(result: WriteResult) -> pb.TransferResponse:
    (from_id, from_balance), (to_id, to_balance) = result.balances
    return pb.TransferResponse(
        from_account_id=from_id,
        from_balance=from_balance,
        to_account_id=to_id,
        to_balance=to_balance,
        currency=result.currency,
        op_id=op_id_to_wire(result.op_id),
        session=vector_to_wire(result.session),
        unconfirmed_branches=result.unconfirmed,
        answered_by=result.answered_by,
    )


# Batches ----------------------------------------------------------------------------

_ENTRY_COMMANDS: dict[str, Any] = {
    "deposit": deposit_command,
    "withdraw": withdraw_command,
    "transfer": transfer_command,
}
"""Per kind of batch entry (its field name in ``BatchEntry``)."""


def batch_entries(request: pb.BatchRequest) -> list[BatchCommand | DbankError]:
    """Each entry's command, or the error that entry alone would have got (an empty
    entry, fields a batch sets for all its entries, a malformed field)."""
    entries: list[BatchCommand | DbankError] = []
    for index, entry in enumerate(request.entries):
        kind = entry.WhichOneof("entry")
        try:
            if kind is None:
                raise InvalidArgument(
                    f"entry {index} is none of deposit, withdraw, transfer",
                    reason="BATCH_ENTRY_EMPTY",
                    field=f"entries[{index}]",
                )
            inner = getattr(entry, kind)
            for name in ("session", "write_concern", "request_branch"):
                if inner.HasField(name) if name == "session" else getattr(inner, name):
                    raise InvalidArgument(
                        f"entry {index} sets {name}: the batch's own applies to every entry",
                        reason="BATCH_ENTRY_FIELD",
                        field=f"entries[{index}].{kind}.{name}",
                    )
            entries.append(_ENTRY_COMMANDS[kind](inner))
        except DbankError as exc:
            entries.append(exc)
    return entries


def batch_response(request: pb.BatchRequest, result: BatchResult) -> pb.BatchResponse:
    """Each entry's reply without a session of its own (the batch's reply carries it once),
    filled in place: 8,000 replies made apart and copied in cost a tenth of a batch."""
    reply = pb.BatchResponse(
        session=vector_to_wire(result.session), unconfirmed_branches=result.unconfirmed
    )
    for entry, outcome in zip(request.entries, result.results, strict=True):
        item = reply.results.add()
        if isinstance(outcome, DbankError):
            item.error.CopyFrom(status_message(outcome))
            continue
        kind = entry.WhichOneof("entry")
        op_id = outcome.op_id
        if kind == "transfer":
            (from_id, from_balance), (to_id, to_balance) = outcome.balances
            answer: Any = item.transfer
            answer.from_account_id = from_id
            answer.from_balance = from_balance
            answer.to_account_id = to_id
            answer.to_balance = to_balance
        else:
            ((account_id, balance),) = outcome.balances
            answer = item.deposit if kind == "deposit" else item.withdraw
            answer.account_id = account_id
            answer.balance = balance
        answer.currency = outcome.currency
        answer.op_id.origin = op_id.origin
        answer.op_id.seq = op_id.seq
        answer.answered_by = outcome.answered_by
    return reply


# Interest, history and statements ------------------------------------------------------


def interest_command(request: pb.CalculateInterestRequest) -> InterestCommand:
    return InterestCommand(
        account_id=request.account_id,
        annual_rate=request.annual_rate,
        as_of=parse_day(request.as_of, field="as_of"),
        request_id=request.request_id,
        caller=caller_name(),
    )


def interest_response(result: InterestResult) -> pb.CalculateInterestResponse:
    posting = result.posting
    return pb.CalculateInterestResponse(
        account_id=result.account_id,
        interest=posting.amount,
        currency=result.currency,
        posted_through=posting.through.isoformat(),
        annual_rate=posting.rate,
        day_balance=posting.day_balance,
        op_id=op_id_to_wire(posting.op_id),
        posted_now=result.posted_now,
        session=vector_to_wire(result.session),
        unconfirmed_branches=result.unconfirmed,
    )


def statement_days(request: pb.GetStatementRequest) -> tuple[dt.date, dt.date]:
    return (
        parse_day(request.from_date, field="from_date", reason="INVALID_DATE_RANGE"),
        parse_day(request.to_date, field="to_date", reason="INVALID_DATE_RANGE"),
    )


def entry(value: Entry) -> pb.Entry:
    time = timestamp_pb2.Timestamp()
    time.FromMilliseconds(value.hlc >> LOGICAL_BITS)
    return pb.Entry(
        op_id=op_id_to_wire(value.op_id),
        # The wire names are the domain names with a prefix (ENTRY_KIND_DEPOSIT).
        kind=pb.EntryKind.Value(f"ENTRY_KIND_{value.kind.name}"),
        amount=value.change,
        balance=value.balance,
        time=time,
        request_id=value.request_id,
        counterparty=value.counterparty,
    )


def list_transactions_response(page: HistoryPage) -> pb.ListTransactionsResponse:
    return pb.ListTransactionsResponse(
        account_id=page.account_id,
        currency=page.currency,
        entries=[entry(e) for e in page.entries],
        next_page_token=page.next_page_token,
        session=vector_to_wire(page.session),
    )


def statement_response(result: StatementResult) -> pb.GetStatementResponse:
    statement = result.statement
    return pb.GetStatementResponse(
        account_id=statement.account_id,
        currency=statement.currency,
        from_date=statement.first_day.isoformat(),
        to_date=statement.last_day.isoformat(),
        opening_balance=statement.opening_balance,
        entries=[entry(e) for e in statement.entries],
        interest=statement.interest,
        closing_balance=statement.closing_balance,
        session=vector_to_wire(result.session),
    )

"""``BankClient``: the typed, async client of a dbank branch.

Every write gets a fresh UUID request id unless the caller passes one; the client reuses
it on its own retries, so a write it retries is applied at most once. Failures raise the
classes of ``dbank.errors`` (``InsufficientFunds``, ``AccountNotFound``, ...).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Protocol, TypeVar

import grpc

from dbank._proto import bank_pb2 as pb
from dbank._proto import bank_pb2_grpc
from dbank._status import error_from_status
from dbank._wire import (
    ACCOUNT_TYPE_FROM_WIRE,
    ACCOUNT_TYPE_TO_WIRE,
    op_id_from_wire,
    vector_from_wire,
    vector_to_wire,
)
from dbank.client._call import RetryPolicy, UnaryCall, call
from dbank.client._session import Session
from dbank.client._types import (
    Account,
    AccountStatement,
    BalanceChange,
    BatchEntry,
    BatchOutcome,
    DepositEntry,
    InterestPosted,
    Transaction,
    TransactionPage,
    TransferEntry,
    TransferResult,
    WithdrawEntry,
)
from dbank.errors import DbankError
from dbank.ledger import AccountType, EntryKind

DEFAULT_TIMEOUT = 10.0
_TOKEN = re.compile(r"[A-Za-z0-9_.=+/-]+")
"""The characters of a JWT (base64url parts and dots)."""


def new_request_id() -> str:
    return str(uuid.uuid4())


class WriteConcern(enum.Enum):
    """When a write answers: durable at the branch asked (``LOCAL``), or also applied by
    every other connected branch, within a bounded wait (``ALL``, the default)."""

    LOCAL = pb.WRITE_CONCERN_LOCAL
    ALL = pb.WRITE_CONCERN_ALL


class _BankStub(Protocol):
    """The generated async ``BankStub``, typed per method as its ``.pyi`` types it.

    grpc ships no type hints, so mypy reads the generated stub's methods as ``Any``; this
    protocol restores their request and reply types, and a test holds it to the service
    descriptor, so every field read from a reply is checked.
    """

    CreateAccount: UnaryCall[pb.CreateAccountRequest, pb.CreateAccountResponse]
    GetBalance: UnaryCall[pb.GetBalanceRequest, pb.GetBalanceResponse]
    GetBalances: UnaryCall[pb.GetBalancesRequest, pb.GetBalancesResponse]
    Deposit: UnaryCall[pb.DepositRequest, pb.DepositResponse]
    Withdraw: UnaryCall[pb.WithdrawRequest, pb.WithdrawResponse]
    Transfer: UnaryCall[pb.TransferRequest, pb.TransferResponse]
    CalculateInterest: UnaryCall[pb.CalculateInterestRequest, pb.CalculateInterestResponse]
    ListTransactions: UnaryCall[pb.ListTransactionsRequest, pb.ListTransactionsResponse]
    GetStatement: UnaryCall[pb.GetStatementRequest, pb.GetStatementResponse]
    Batch: UnaryCall[pb.BatchRequest, pb.BatchResponse]


class _Sessioned(Protocol):
    """Every request and every reply of the Bank service: it carries a session token."""

    @property
    def session(self) -> pb.VersionVector: ...


_Request = TypeVar("_Request", bound=_Sessioned)
_Response = TypeVar("_Response", bound=_Sessioned)


class BankClient:
    """A connection to one branch. Use ``async with BankClient("host:port") as bank:``.

    Every request carries ``session``'s token and every reply advances it (see
    ``Session``); pass one ``Session`` to clients of several branches to keep a customer's
    view consistent across them.
    """

    _stub: _BankStub

    def __init__(
        self,
        target: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        session: Session | None = None,
        write_concern: WriteConcern = WriteConcern.ALL,
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
        tls: bytes | None = None,
        token: str | None = None,
    ) -> None:
        """``tls``: the bank's CA certificate (PEM): the branch is reached over TLS and
        must prove it is a branch of this bank; None: plaintext, for ``--insecure``
        branches only. ``token``: the caller's signed token (``dbank token issue``), sent
        as ``authorization: Bearer <token>`` with every call (over TLS only)."""
        self.target = target
        self.session = session if session is not None else Session()
        # Interceptors add metadata to every call (Lamport stamps: ``dbank.tracing``).
        self._channel = _channel(target, tls, token, list(interceptors))
        # The token as plain metadata on every call (over TLS only): gRPC's call
        # credentials, which do the same, cost the client 160-240 us of CPU per call.
        self._metadata: tuple[tuple[str, str], ...] = (
            () if token is None else (("authorization", f"Bearer {token}"),)
        )
        self._stub = bank_pb2_grpc.BankStub(self._channel)
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._write_concern: pb.WriteConcern.ValueType = write_concern.value

    async def __aenter__(self) -> BankClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def connect(self) -> None:
        """Connect now rather than at the first call: wait until the channel is up,
        through any failed attempts (bound it with ``asyncio.timeout``)."""
        await self._channel.channel_ready()

    async def create_account(
        self,
        *,
        account_id: str,
        owner: str,
        type: AccountType = AccountType.CHECKING,
        currency: str = "USD",
        request_id: str | None = None,
    ) -> Account:
        """Open an account with a zero balance, durably.

        Raises:
            InvalidArgument, AccountExists, RequestIdReused, Unavailable.
        """
        request = pb.CreateAccountRequest(
            account_id=account_id,
            type=ACCOUNT_TYPE_TO_WIRE[type],
            currency=currency,
            owner=owner,
            request_id=request_id or new_request_id(),
            write_concern=self._write_concern,
        )
        reply = await self._call(self._stub.CreateAccount, request)
        return _account(reply.account)

    async def get_balance(self, *, account_id: str) -> Account:
        """Read one account from the branch's replica. Raises AccountNotFound."""
        reply = await self._call(self._stub.GetBalance, pb.GetBalanceRequest(account_id=account_id))
        return _account(reply.account)

    async def get_balances(self, *, account_ids: Sequence[str]) -> list[Account]:
        """Read several accounts from one state of the branch's replica, in order asked."""
        request = pb.GetBalancesRequest(account_ids=list(account_ids))
        reply = await self._call(self._stub.GetBalances, request)
        return [_account(a) for a in reply.accounts]

    async def deposit(
        self,
        *,
        account_id: str,
        amount: int,
        currency: str = "",
        request_id: str | None = None,
        request_branch: int = 0,
    ) -> BalanceChange:
        """Add ``amount`` minor units, durably; ``currency`` if given must be the account's.

        ``request_branch``: when retrying, at this branch, a request whose id was first sent
        to another branch (``request_id`` given), that branch's id: only it may decide the
        request, so this branch forwards the retry there unless it has applied it already.

        Raises:
            InvalidArgument, AccountNotFound, CurrencyMismatch, BalanceOverflow,
            RequestIdReused, Unavailable.
        """
        request_id = request_id or new_request_id()
        request = pb.DepositRequest(
            account_id=account_id,
            amount=amount,
            currency=currency,
            request_id=request_id,
            request_branch=request_branch,
            write_concern=self._write_concern,
        )
        reply = await self._call(self._stub.Deposit, request)
        return _balance_change(reply, request_id)

    async def withdraw(
        self,
        *,
        account_id: str,
        amount: int,
        currency: str = "",
        request_id: str | None = None,
        request_branch: int = 0,
    ) -> BalanceChange:
        """Take out ``amount`` minor units, never overdrawing (``request_branch``: as for
        ``deposit``).

        Raises:
            InvalidArgument, AccountNotFound, CurrencyMismatch, InsufficientFunds,
            RequestIdReused, Unavailable.
        """
        request_id = request_id or new_request_id()
        request = pb.WithdrawRequest(
            account_id=account_id,
            amount=amount,
            currency=currency,
            request_id=request_id,
            request_branch=request_branch,
            write_concern=self._write_concern,
        )
        reply = await self._call(self._stub.Withdraw, request)
        return _balance_change(reply, request_id)

    async def transfer(
        self,
        *,
        from_account_id: str,
        to_account_id: str,
        amount: int,
        currency: str = "",
        request_id: str | None = None,
        request_branch: int = 0,
    ) -> TransferResult:
        """Move ``amount`` minor units between two accounts of one currency, as one change
        (``request_branch``: as for ``deposit``).

        Raises:
            InvalidArgument, AccountNotFound, CurrencyMismatch, InsufficientFunds,
            BalanceOverflow, RequestIdReused, Unavailable.
        """
        request_id = request_id or new_request_id()
        request = pb.TransferRequest(
            from_account_id=from_account_id,
            to_account_id=to_account_id,
            amount=amount,
            currency=currency,
            request_id=request_id,
            request_branch=request_branch,
            write_concern=self._write_concern,
        )
        reply = await self._call(self._stub.Transfer, request)
        return _transfer_result(reply, request_id)

    async def batch(self, entries: Sequence[BatchEntry], *, atomic: bool = False) -> BatchOutcome:
        """Carry out up to 8,000 deposits, withdrawals and transfers in one request, in
        order, in one durable transaction at the branch; each entry is idempotent by its
        own request id (retrying the batch applies nothing twice). With ``atomic``, all
        of them or none: one refused entry refuses the batch, and every other entry's
        error is ``Aborted`` (``BATCH_ABORTED``). A refused entry does not raise: it is
        its error in ``BatchOutcome.results``.

        Raises:
            InvalidArgument: no entries, more than 8,000, or a request id used twice.
            Unavailable, PermissionDenied: the batch as a whole.
        """
        request = pb.BatchRequest(atomic=atomic, write_concern=self._write_concern)
        request_ids = []
        for entry in entries:
            request_id = entry.request_id or new_request_id()
            request_ids.append(request_id)
            item = request.entries.add()
            match entry:
                case DepositEntry():
                    item.deposit.CopyFrom(_deposit_request(entry, request_id))
                case WithdrawEntry():
                    item.withdraw.CopyFrom(_withdraw_request(entry, request_id))
                case TransferEntry():
                    item.transfer.CopyFrom(
                        pb.TransferRequest(
                            from_account_id=entry.from_account_id,
                            to_account_id=entry.to_account_id,
                            amount=entry.amount,
                            currency=entry.currency,
                            request_id=request_id,
                        )
                    )
        reply = await self._call(self._stub.Batch, request)
        results: list[BalanceChange | TransferResult | DbankError] = []
        for result, request_id in zip(reply.results, request_ids, strict=True):
            match result.WhichOneof("result"):
                case "deposit":
                    results.append(_balance_change(result.deposit, request_id))
                case "withdraw":
                    results.append(_balance_change(result.withdraw, request_id))
                case "transfer":
                    results.append(_transfer_result(result.transfer, request_id))
                case _:
                    results.append(error_from_status(result.error))
        return BatchOutcome(tuple(results), tuple(reply.unconfirmed_branches))

    async def calculate_interest(
        self,
        *,
        account_id: str,
        annual_rate: str,
        as_of: dt.date,
        request_id: str | None = None,
    ) -> InterestPosted:
        """Post a savings account's interest through ``as_of`` (a day before today, UTC) at
        ``annual_rate`` percent a year, an exact decimal string such as ``"4.25"``. Each
        day is posted once: asking again for a posted day returns its posting and adds
        nothing. The account's owner branch posts it, whichever branch is asked.

        Raises:
            InvalidArgument, AccountNotFound, WrongAccountType, RequestIdReused,
            DayNotClosed (retry later), Unavailable.
        """
        request_id = request_id or new_request_id()
        request = pb.CalculateInterestRequest(
            account_id=account_id,
            annual_rate=annual_rate,
            as_of=as_of.isoformat(),
            request_id=request_id,
            write_concern=self._write_concern,
        )
        reply = await self._call(self._stub.CalculateInterest, request)
        return InterestPosted(
            reply.account_id,
            reply.interest,
            reply.currency,
            dt.date.fromisoformat(reply.posted_through),
            reply.annual_rate,
            reply.day_balance,
            op_id_from_wire(reply.op_id),
            reply.posted_now,
            request_id,
            tuple(reply.unconfirmed_branches),
        )

    async def list_transactions(
        self, *, account_id: str, page_size: int = 0, page_token: str = ""
    ) -> TransactionPage:
        """One page of the account's history, oldest first, with the running balance.
        Pass the previous page's ``next_page_token`` for the next; a listing sees the
        account as of its first page, so no entry is lost or repeated meanwhile.

        Raises:
            InvalidArgument (INVALID_PAGE_SIZE, INVALID_PAGE_TOKEN), AccountNotFound.
        """
        request = pb.ListTransactionsRequest(
            account_id=account_id, page_size=page_size, page_token=page_token
        )
        reply = await self._call(self._stub.ListTransactions, request)
        return TransactionPage(
            reply.account_id,
            reply.currency,
            tuple(_transaction(e) for e in reply.entries),
            reply.next_page_token,
        )

    async def transactions(
        self, *, account_id: str, page_size: int = 0
    ) -> AsyncIterator[Transaction]:
        """Every entry of the account's history, oldest first, page after page."""
        token = ""
        while True:
            page = await self.list_transactions(
                account_id=account_id, page_size=page_size, page_token=token
            )
            for transaction in page.transactions:
                yield transaction
            token = page.next_page_token
            if not token:
                return

    async def get_statement(
        self, *, account_id: str, from_date: dt.date, to_date: dt.date
    ) -> AccountStatement:
        """The account's statement from ``from_date`` to ``to_date`` (UTC, both included):
        opening balance, entries, interest, closing balance.

        Raises:
            InvalidArgument (INVALID_DATE_RANGE, RANGE_TOO_LARGE), AccountNotFound.
        """
        request = pb.GetStatementRequest(
            account_id=account_id, from_date=from_date.isoformat(), to_date=to_date.isoformat()
        )
        reply = await self._call(self._stub.GetStatement, request)
        return AccountStatement(
            reply.account_id,
            reply.currency,
            dt.date.fromisoformat(reply.from_date),
            dt.date.fromisoformat(reply.to_date),
            reply.opening_balance,
            tuple(_transaction(e) for e in reply.entries),
            reply.interest,
            reply.closing_balance,
        )

    async def _call(self, method: UnaryCall[_Request, _Response], request: _Request) -> _Response:
        """The one path of every RPC: send the session token, answer within the client's
        timeout with its retries, and advance the session by the reply's token. (Each
        write sets its write concern where it builds its request.)"""
        request.session.CopyFrom(vector_to_wire(self.session.token))
        request.session.from_branch = self.session.source
        reply = await call(
            method, request, within=self._timeout, retry=self._retry, metadata=self._metadata
        )
        self.session.observe(vector_from_wire(reply.session), reply.session.from_branch)
        return reply


def _balance_change(
    reply: pb.DepositResponse | pb.WithdrawResponse, request_id: str
) -> BalanceChange:
    return BalanceChange(
        reply.account_id,
        reply.balance,
        reply.currency,
        op_id_from_wire(reply.op_id),
        request_id,
        tuple(reply.unconfirmed_branches),
        reply.answered_by,
    )


def _transfer_result(reply: pb.TransferResponse, request_id: str) -> TransferResult:
    return TransferResult(
        reply.from_account_id,
        reply.from_balance,
        reply.to_account_id,
        reply.to_balance,
        reply.currency,
        op_id_from_wire(reply.op_id),
        request_id,
        tuple(reply.unconfirmed_branches),
        reply.answered_by,
    )


def _deposit_request(entry: DepositEntry, request_id: str) -> pb.DepositRequest:
    return pb.DepositRequest(
        account_id=entry.account_id,
        amount=entry.amount,
        currency=entry.currency,
        request_id=request_id,
    )


def _withdraw_request(entry: WithdrawEntry, request_id: str) -> pb.WithdrawRequest:
    return pb.WithdrawRequest(
        account_id=entry.account_id,
        amount=entry.amount,
        currency=entry.currency,
        request_id=request_id,
    )


def _account(value: pb.Account) -> Account:
    return Account(
        account_id=value.account_id,
        type=ACCOUNT_TYPE_FROM_WIRE[value.type],
        currency=value.currency,
        currency_exponent=value.currency_exponent,
        owner=value.owner,
        balance=value.balance,
        withdrawable_here=value.withdrawable_here,
        owner_branch=value.owner_branch,
    )


def _transaction(value: pb.Entry) -> Transaction:
    return Transaction(
        op_id_from_wire(value.op_id),
        # The wire names are the domain names with a prefix (ENTRY_KIND_DEPOSIT).
        EntryKind[pb.EntryKind.Name(value.kind).removeprefix("ENTRY_KIND_")],
        value.amount,
        value.balance,
        value.time.ToDatetime(tzinfo=dt.UTC),
        value.request_id,
        value.counterparty,
    )


def _channel(
    target: str,
    tls: bytes | None,
    token: str | None,
    interceptors: list[grpc.aio.ClientInterceptor],
) -> grpc.aio.Channel:
    if tls is None:
        if token is not None:
            raise ValueError("a token is only sent over TLS: give the bank's CA as tls=")
        return grpc.aio.insecure_channel(target, options=_OPTIONS, interceptors=interceptors)
    if token is not None and not _TOKEN.fullmatch(token):
        # gRPC would refuse it on every call with a dump of its own.
        raise ValueError("the token holds characters no token has (a stray newline or space?)")
    credentials = grpc.ssl_channel_credentials(root_certificates=tls)
    return grpc.aio.secure_channel(target, credentials, options=_OPTIONS, interceptors=interceptors)


_OPTIONS = [("grpc.max_receive_message_length", 16 * 2**20)]
"""A batch's reply may pass gRPC's default limit of 4 MiB (8,000 results, each refusal
with its message)."""

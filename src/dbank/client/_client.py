"""``BankClient``: the typed, async client of a dbank branch.

Every write gets a fresh UUID request id unless the caller passes one; the client reuses
it on its own retries, so a write it retries is applied at most once. Failures raise the
classes of ``dbank.ledger.errors`` (``InsufficientFunds``, ``AccountNotFound``, ...).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any

import grpc

from dbank._proto import bank_pb2 as pb
from dbank._proto import bank_pb2_grpc
from dbank._wire import (
    ACCOUNT_TYPE_FROM_WIRE,
    ACCOUNT_TYPE_TO_WIRE,
    op_id_from_wire,
    vector_from_wire,
    vector_to_wire,
)
from dbank.client._call import RetryPolicy, call
from dbank.client._session import Session
from dbank.client._types import (
    Account,
    AccountStatement,
    BalanceChange,
    InterestPosted,
    Transaction,
    TransactionPage,
    TransferResult,
)
from dbank.ledger import AccountType, EntryKind

DEFAULT_TIMEOUT = 10.0


def new_request_id() -> str:
    return str(uuid.uuid4())


class WriteConcern(enum.Enum):
    """When a write answers: durable at the branch asked (``LOCAL``), or also applied by
    every other connected branch, within a bounded wait (``ALL``, the default)."""

    LOCAL = pb.WRITE_CONCERN_LOCAL
    ALL = pb.WRITE_CONCERN_ALL


class BankClient:
    """A connection to one branch. Use ``async with BankClient("host:port") as bank:``.

    Every request carries ``session``'s token and every reply advances it (see
    ``Session``); pass one ``Session`` to clients of several branches to keep a customer's
    view consistent across them.
    """

    def __init__(
        self,
        target: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        session: Session | None = None,
        write_concern: WriteConcern = WriteConcern.ALL,
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    ) -> None:
        self.target = target
        self.session = session if session is not None else Session()
        # Interceptors add metadata to every call (Lamport stamps: ``dbank.tracing``).
        self._channel = grpc.aio.insecure_channel(target, interceptors=list(interceptors))
        self._stub = bank_pb2_grpc.BankStub(self._channel)
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._write_concern = write_concern.value

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
        )
        reply = await self._call(self._stub.Transfer, request)
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

    async def _call(self, method: Any, request: Any) -> Any:
        request.session.CopyFrom(vector_to_wire(self.session.token))
        if hasattr(request, "write_concern"):
            request.write_concern = self._write_concern
        reply = await call(method, request, within=self._timeout, retry=self._retry)
        self.session.observe(vector_from_wire(reply.session))
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

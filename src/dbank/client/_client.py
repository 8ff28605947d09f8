"""``BankClient``: the typed, async client of a dbank branch.

Every write gets a fresh UUID request id unless the caller passes one; the client reuses
it on its own retries, so a write it retries is applied at most once. Failures raise the
classes of ``dbank.ledger.errors`` (``InsufficientFunds``, ``AccountNotFound``, ...).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import grpc

from dbank._proto import bank_pb2 as pb
from dbank._proto import bank_pb2_grpc
from dbank._wire import (
    ACCOUNT_TYPE_FROM_WIRE,
    ACCOUNT_TYPE_TO_WIRE,
    vector_from_wire,
    vector_to_wire,
)
from dbank.client._call import RetryPolicy, call
from dbank.client._session import Session
from dbank.client._types import Account, BalanceChange, TransferResult
from dbank.ledger import AccountType, OpId

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
    ) -> None:
        self.target = target
        self.session = session if session is not None else Session()
        self._channel = grpc.aio.insecure_channel(target)
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
        self, *, account_id: str, amount: int, currency: str = "", request_id: str | None = None
    ) -> BalanceChange:
        """Add ``amount`` minor units, durably; ``currency`` if given must be the account's.

        Raises:
            InvalidArgument, AccountNotFound, CurrencyMismatch, BalanceOverflow,
            RequestIdReused, Unavailable.
        """
        request_id = request_id or new_request_id()
        request = pb.DepositRequest(
            account_id=account_id, amount=amount, currency=currency, request_id=request_id
        )
        reply = await self._call(self._stub.Deposit, request)
        return _balance_change(reply, request_id)

    async def withdraw(
        self, *, account_id: str, amount: int, currency: str = "", request_id: str | None = None
    ) -> BalanceChange:
        """Take out ``amount`` minor units, never overdrawing.

        Raises:
            InvalidArgument, AccountNotFound, CurrencyMismatch, InsufficientFunds,
            RequestIdReused, Unavailable.
        """
        request_id = request_id or new_request_id()
        request = pb.WithdrawRequest(
            account_id=account_id, amount=amount, currency=currency, request_id=request_id
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
    ) -> TransferResult:
        """Move ``amount`` minor units between two accounts of one currency, as one change.

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
        )
        reply = await self._call(self._stub.Transfer, request)
        return TransferResult(
            reply.from_account_id,
            reply.from_balance,
            reply.to_account_id,
            reply.to_balance,
            reply.currency,
            _op_id(reply.op_id),
            request_id,
            tuple(reply.unconfirmed_branches),
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
        _op_id(reply.op_id),
        request_id,
        tuple(reply.unconfirmed_branches),
    )


def _op_id(value: pb.OpId) -> OpId:
    return OpId(value.origin, value.seq)


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

"""The ``dbank.v1.Bank`` service: customer requests to the branch, replies back.

No logic lives here beyond conversion; errors become statuses in ``ErrorInterceptor``.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

import grpc

from dbank._proto import bank_pb2 as pb
from dbank._proto import bank_pb2_grpc
from dbank._wire import op_id_to_wire, vector_to_wire
from dbank.branch import Branch
from dbank.server import _convert as convert


class _Answer(Protocol):
    @property
    def session(self) -> pb.VersionVector: ...


_Reply = TypeVar("_Reply", bound=_Answer)


class BankServicer(bank_pb2_grpc.BankServicer):
    def __init__(self, branch: Branch) -> None:
        self._branch = branch

    def _answered(self, reply: _Reply) -> _Reply:
        """``reply``, its session token marked as coming from the branch whose replica held
        it: this one, or the one a forwarded write was answered by."""
        reply.session.from_branch = getattr(reply, "answered_by", 0) or self._branch.branch_id
        return reply

    async def CreateAccount(
        self, request: pb.CreateAccountRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateAccountResponse:
        view, op_id, session, unconfirmed = await self._branch.open_account(
            convert.open_account_command(request), convert.write_context(request, context)
        )
        return self._answered(
            pb.CreateAccountResponse(
                account=convert.account(view),
                op_id=op_id_to_wire(op_id),
                session=vector_to_wire(session),
                unconfirmed_branches=unconfirmed,
            )
        )

    async def GetBalance(
        self, request: pb.GetBalanceRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetBalanceResponse:
        reading = await self._branch.read(
            [request.account_id], convert.read_context(request, context)
        )
        return self._answered(
            pb.GetBalanceResponse(
                account=convert.account(reading.accounts[0]),
                session=vector_to_wire(reading.session),
            )
        )

    async def GetBalances(
        self, request: pb.GetBalancesRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetBalancesResponse:
        reading = await self._branch.read(
            list(request.account_ids), convert.read_context(request, context)
        )
        return self._answered(
            pb.GetBalancesResponse(
                accounts=[convert.account(v) for v in reading.accounts],
                session=vector_to_wire(reading.session),
            )
        )

    async def Deposit(
        self, request: pb.DepositRequest, context: grpc.aio.ServicerContext
    ) -> pb.DepositResponse:
        result = await self._branch.deposit(
            convert.deposit_command(request),
            convert.write_context(request, context, request_branch=request.request_branch),
        )
        return self._answered(convert.deposit_response(result))

    async def Withdraw(
        self, request: pb.WithdrawRequest, context: grpc.aio.ServicerContext
    ) -> pb.WithdrawResponse:
        result = await self._branch.withdraw(
            convert.withdraw_command(request),
            convert.write_context(request, context, request_branch=request.request_branch),
        )
        return self._answered(convert.withdraw_response(result))

    async def Transfer(
        self, request: pb.TransferRequest, context: grpc.aio.ServicerContext
    ) -> pb.TransferResponse:
        result = await self._branch.transfer(
            convert.transfer_command(request),
            convert.write_context(request, context, request_branch=request.request_branch),
        )
        return self._answered(convert.transfer_response(result))

    async def CalculateInterest(
        self, request: pb.CalculateInterestRequest, context: grpc.aio.ServicerContext
    ) -> pb.CalculateInterestResponse:
        result = await self._branch.calculate_interest(
            convert.interest_command(request), convert.write_context(request, context)
        )
        return self._answered(convert.interest_response(result))

    async def ListTransactions(
        self, request: pb.ListTransactionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTransactionsResponse:
        page = await self._branch.list_transactions(
            request.account_id,
            request.page_size,
            request.page_token,
            convert.read_context(request, context),
        )
        return self._answered(convert.list_transactions_response(page))

    async def GetStatement(
        self, request: pb.GetStatementRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetStatementResponse:
        first_day, last_day = convert.statement_days(request)
        result = await self._branch.statement(
            request.account_id, first_day, last_day, convert.read_context(request, context)
        )
        return self._answered(convert.statement_response(result))

    async def Batch(
        self, request: pb.BatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchResponse:
        result = await self._branch.batch(
            convert.batch_entries(request),
            convert.write_context(request, context),
            atomic=request.atomic,
        )
        return self._answered(convert.batch_response(request, result))

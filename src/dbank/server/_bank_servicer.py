"""The ``dbank.v1.Bank`` service: customer requests to the branch, replies back.

No logic lives here beyond conversion; errors become statuses in ``ErrorInterceptor``.
"""

from __future__ import annotations

import grpc

from dbank._proto import bank_pb2 as pb
from dbank._proto import bank_pb2_grpc
from dbank.branch import Branch
from dbank.server import _convert as convert


class BankServicer(bank_pb2_grpc.BankServicer):
    def __init__(self, branch: Branch) -> None:
        self._branch = branch

    async def CreateAccount(
        self, request: pb.CreateAccountRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateAccountResponse:
        view, op_id = await self._branch.open_account(convert.open_account_command(request))
        return pb.CreateAccountResponse(account=convert.account(view), op_id=convert.op_id(op_id))

    async def GetBalance(
        self, request: pb.GetBalanceRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetBalanceResponse:
        return pb.GetBalanceResponse(
            account=convert.account(self._branch.account(request.account_id))
        )

    async def GetBalances(
        self, request: pb.GetBalancesRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetBalancesResponse:
        views = self._branch.accounts(list(request.account_ids))
        return pb.GetBalancesResponse(accounts=[convert.account(v) for v in views])

    async def Deposit(
        self, request: pb.DepositRequest, context: grpc.aio.ServicerContext
    ) -> pb.DepositResponse:
        result = await self._branch.deposit(convert.deposit_command(request))
        return convert.deposit_response(result)

    async def Withdraw(
        self, request: pb.WithdrawRequest, context: grpc.aio.ServicerContext
    ) -> pb.WithdrawResponse:
        result = await self._branch.withdraw(convert.withdraw_command(request))
        return convert.withdraw_response(result)

    async def Transfer(
        self, request: pb.TransferRequest, context: grpc.aio.ServicerContext
    ) -> pb.TransferResponse:
        result = await self._branch.transfer(convert.transfer_command(request))
        return convert.transfer_response(result)

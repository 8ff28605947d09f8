"""Every foreseeable mistake gets a precise status with an ErrorInfo, and changes nothing.

These go through the raw generated stub, so what is checked is exactly what any gRPC client
in any language sees on the wire.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from support.secure import aio_channel, channel

from dbank._proto import bank_pb2 as pb
from dbank._proto import bank_pb2_grpc
from dbank.hosting import BranchProcess

USD, JPY, EMPTY = "err-usd", "err-jpy", "err-empty"
Code = grpc.StatusCode


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    request: Any
    code: grpc.StatusCode
    reason: str


def _deposit(account: str = USD, amount: int = 100, **kw: Any) -> pb.DepositRequest:
    return pb.DepositRequest(account_id=account, amount=amount, request_id=kw.pop("rid", "d"), **kw)


def _open(account: str, **kw: Any) -> pb.CreateAccountRequest:
    fields = {"type": pb.ACCOUNT_TYPE_CHECKING, "owner": "o", "request_id": "open-x", **kw}
    return pb.CreateAccountRequest(account_id=account, **fields)


CASES = [
    Case("zero amount", "Deposit", _deposit(amount=0), Code.INVALID_ARGUMENT, "INVALID_AMOUNT"),
    Case(
        "negative amount",
        "Withdraw",
        pb.WithdrawRequest(account_id=USD, amount=-5, request_id="w"),
        Code.INVALID_ARGUMENT,
        "INVALID_AMOUNT",
    ),
    Case(
        "unknown currency on open",
        "CreateAccount",
        _open("err-new-1", currency="XYZ"),
        Code.INVALID_ARGUMENT,
        "UNKNOWN_CURRENCY",
    ),
    Case(
        "lowercase currency on open",
        "CreateAccount",
        _open("err-new-2", currency="usd"),
        Code.INVALID_ARGUMENT,
        "UNKNOWN_CURRENCY",
    ),
    Case(
        "unknown currency on deposit",
        "Deposit",
        _deposit(currency="ABC"),
        Code.INVALID_ARGUMENT,
        "UNKNOWN_CURRENCY",
    ),
    Case(
        "empty account id",
        "Deposit",
        _deposit(account=""),
        Code.INVALID_ARGUMENT,
        "INVALID_ACCOUNT_ID",
    ),
    Case(
        "malformed account id",
        "CreateAccount",
        _open("has space"),
        Code.INVALID_ARGUMENT,
        "INVALID_ACCOUNT_ID",
    ),
    Case(
        "too long account id",
        "GetBalance",
        pb.GetBalanceRequest(account_id="x" * 65),
        Code.INVALID_ARGUMENT,
        "INVALID_ACCOUNT_ID",
    ),
    Case(
        "missing account type",
        "CreateAccount",
        _open("err-new-3", type=0),
        Code.INVALID_ARGUMENT,
        "INVALID_ACCOUNT_TYPE",
    ),
    Case(
        "malformed owner",
        "CreateAccount",
        _open("err-new-4", owner=""),
        Code.INVALID_ARGUMENT,
        "INVALID_OWNER",
    ),
    Case(
        "empty request id", "Deposit", _deposit(rid=""), Code.INVALID_ARGUMENT, "INVALID_REQUEST_ID"
    ),
    Case(
        "request id over 64 bytes",
        "Deposit",
        _deposit(rid="é" * 33),
        Code.INVALID_ARGUMENT,
        "INVALID_REQUEST_ID",
    ),
    Case(
        "transfer to itself",
        "Transfer",
        pb.TransferRequest(from_account_id=USD, to_account_id=USD, amount=1, request_id="t"),
        Code.INVALID_ARGUMENT,
        "SAME_ACCOUNT",
    ),
    Case(
        "no accounts asked",
        "GetBalances",
        pb.GetBalancesRequest(),
        Code.INVALID_ARGUMENT,
        "TOO_MANY_ACCOUNTS",
    ),
    Case(
        "unknown account",
        "Withdraw",
        pb.WithdrawRequest(account_id="err-nobody", amount=1, request_id="w"),
        Code.NOT_FOUND,
        "ACCOUNT_NOT_FOUND",
    ),
    Case(
        "unknown transfer target",
        "Transfer",
        pb.TransferRequest(
            from_account_id=USD, to_account_id="err-nobody", amount=1, request_id="t"
        ),
        Code.NOT_FOUND,
        "ACCOUNT_NOT_FOUND",
    ),
    Case(
        "open an id twice with other attributes",
        "CreateAccount",
        _open(USD, currency="EUR", owner="mallory"),
        Code.ALREADY_EXISTS,
        "ACCOUNT_EXISTS",
    ),
    Case(
        "transfer between currencies",
        "Transfer",
        pb.TransferRequest(
            from_account_id=USD, to_account_id=JPY, amount=1, request_id="t-currency"
        ),
        Code.FAILED_PRECONDITION,
        "CURRENCY_MISMATCH",
    ),
    Case(
        "deposit naming another currency",
        "Deposit",
        _deposit(currency="EUR"),
        Code.FAILED_PRECONDITION,
        "CURRENCY_MISMATCH",
    ),
    Case(
        "insufficient funds",
        "Withdraw",
        pb.WithdrawRequest(account_id=USD, amount=10_001, request_id="w-big"),
        Code.FAILED_PRECONDITION,
        "INSUFFICIENT_FUNDS",
    ),
    Case(
        "transfer beyond the balance",
        "Transfer",
        pb.TransferRequest(
            from_account_id=EMPTY, to_account_id=USD, amount=1, request_id="t-empty"
        ),
        Code.FAILED_PRECONDITION,
        "INSUFFICIENT_FUNDS",
    ),
    Case(
        "deposit past 2^63 - 1",
        "Deposit",
        _deposit(amount=2**63 - 1, rid="huge"),
        Code.FAILED_PRECONDITION,
        "BALANCE_OVERFLOW",
    ),
    Case(
        "same request id, other amount",
        "Deposit",
        _deposit(amount=99, rid="seed"),
        Code.ALREADY_EXISTS,
        "REQUEST_ID_REUSED",
    ),
    Case(
        "same request id, other account type",
        "CreateAccount",
        _open(USD, request_id="open-usd", type=pb.ACCOUNT_TYPE_SAVINGS),
        Code.ALREADY_EXISTS,
        "REQUEST_ID_REUSED",
    ),
]


@pytest.fixture(scope="module")
def seeded(branch: BranchProcess) -> str:
    """Three accounts: USD with 100.00, JPY and an empty USD one."""
    with channel(branch.address) as open_channel:
        stub = bank_pb2_grpc.BankStub(open_channel)
        for account, cur in ((USD, "USD"), (JPY, "JPY"), (EMPTY, "USD")):
            stub.CreateAccount(_open(account, currency=cur, request_id=f"open-{account[4:]}"))
        stub.Deposit(_deposit(amount=10_000, rid="seed"))
    return branch.address


@pytest.fixture
async def stub(seeded: str) -> AsyncIterator[bank_pb2_grpc.BankStub]:
    async with aio_channel(seeded) as open_channel:
        yield bank_pb2_grpc.BankStub(open_channel)


async def _snapshot(stub: bank_pb2_grpc.BankStub) -> list[pb.Account]:
    reply = await stub.GetBalances(pb.GetBalancesRequest(account_ids=[USD, JPY, EMPTY]))
    return list(reply.accounts)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_error_is_precise_and_changes_nothing(
    stub: bank_pb2_grpc.BankStub, case: Case
) -> None:
    before = await _snapshot(stub)
    method: Callable[..., Any] = getattr(stub, case.method)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await method(case.request)
    error = caught.value
    assert error.code() == case.code, error.details()
    status = rpc_status.from_call(error)
    assert status is not None, "no google.rpc.Status details"
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (info.domain, info.reason) == ("dbank", case.reason)
    assert error.details()
    assert await _snapshot(stub) == before
    if case.method == "CreateAccount" and case.code != Code.ALREADY_EXISTS:
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetBalance(pb.GetBalanceRequest(account_id=case.request.account_id))
        assert missing.value.code() in (Code.NOT_FOUND, Code.INVALID_ARGUMENT)

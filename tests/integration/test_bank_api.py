"""Every Bank RPC against a real branch process, through the typed client."""

from __future__ import annotations

import pytest
from conftest import unique_id
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from support.secure import aio_channel

from dbank import (
    AccountExists,
    AccountNotFound,
    AccountType,
    BankClient,
    CurrencyMismatch,
    InsufficientFunds,
    InvalidArgument,
    RequestIdReused,
)
from dbank.hosting import BranchProcess
from dbank.ledger import OpId


async def test_create_account_opens_it_empty(bank: BankClient, account_id: str) -> None:
    account = await bank.create_account(
        account_id=account_id, owner="alice", type=AccountType.SAVINGS, currency="JPY"
    )
    assert account.account_id == account_id
    assert account.type is AccountType.SAVINGS
    assert (account.currency, account.currency_exponent) == ("JPY", 0)
    assert (account.owner, account.owner_branch) == ("alice", 1)
    assert account.balance == account.withdrawable_here == 0
    assert await bank.get_balance(account_id=account_id) == account


async def test_deposit_withdraw_transfer_report_new_balances(bank: BankClient) -> None:
    a, b = unique_id("a"), unique_id("b")
    await bank.create_account(account_id=a, owner="alice")
    await bank.create_account(account_id=b, owner="bob")
    deposited = await bank.deposit(account_id=a, amount=10_050)
    assert (deposited.balance, deposited.currency) == (10_050, "USD")
    withdrawn = await bank.withdraw(account_id=a, amount=2_025, currency="USD")
    assert withdrawn.balance == 8_025
    assert withdrawn.op_id.seq > deposited.op_id.seq
    moved = await bank.transfer(from_account_id=a, to_account_id=b, amount=25)
    assert (moved.from_balance, moved.to_balance) == (8_000, 25)
    balances = await bank.get_balances(account_ids=[b, a])
    assert [(x.account_id, x.balance) for x in balances] == [(b, 25), (a, 8_000)]
    assert balances[1].withdrawable_here == 8_000


async def test_retried_request_id_is_applied_once(bank: BankClient, account_id: str) -> None:
    await bank.create_account(account_id=account_id, owner="o", request_id="open-1")
    again = await bank.create_account(account_id=account_id, owner="o", request_id="open-1")
    assert again.account_id == account_id
    first = await bank.deposit(account_id=account_id, amount=700, request_id="dep-1")
    retry = await bank.deposit(account_id=account_id, amount=700, request_id="dep-1")
    assert retry.op_id == first.op_id
    assert retry.balance == first.balance == 700
    assert (await bank.get_balance(account_id=account_id)).balance == 700


async def test_stored_failure_is_returned_to_a_retry(bank: BankClient, account_id: str) -> None:
    await bank.create_account(account_id=account_id, owner="o")
    with pytest.raises(InsufficientFunds):
        await bank.withdraw(account_id=account_id, amount=5, request_id="w-1")
    await bank.deposit(account_id=account_id, amount=10)
    # The first definite outcome stands: the same request is not decided again.
    with pytest.raises(InsufficientFunds):
        await bank.withdraw(account_id=account_id, amount=5, request_id="w-1")
    assert (await bank.get_balance(account_id=account_id)).balance == 10


async def test_typed_errors(bank: BankClient, account_id: str) -> None:
    await bank.create_account(account_id=account_id, owner="o", request_id="r")
    with pytest.raises(AccountExists):
        await bank.create_account(account_id=account_id, owner="other")
    await bank.deposit(account_id=account_id, amount=1, request_id="d")
    with pytest.raises(RequestIdReused):
        await bank.deposit(account_id=account_id, amount=2, request_id="d")
    with pytest.raises(AccountNotFound):
        await bank.get_balance(account_id=unique_id("missing"))
    with pytest.raises(CurrencyMismatch):
        await bank.deposit(account_id=account_id, amount=1, currency="EUR")
    with pytest.raises(InvalidArgument) as caught:
        await bank.deposit(account_id=account_id, amount=0)
    assert caught.value.reason == "INVALID_AMOUNT"
    assert caught.value.metadata["field"] == "amount"


async def test_health_and_reflection(branch: BranchProcess) -> None:
    async with aio_channel(branch.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "dbank.v1.Bank"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        replies = [r async for r in stub.ServerReflectionInfo(iter([request]))]
    names = {s.name for s in replies[0].list_services_response.service}
    assert {"dbank.v1.Bank", "grpc.health.v1.Health"} <= names


async def test_op_ids_count_up_without_gaps(bank: BankClient, account_id: str) -> None:
    await bank.create_account(account_id=account_id, owner="o")
    ids = [(await bank.deposit(account_id=account_id, amount=1)).op_id for _ in range(5)]
    assert ids == [OpId(1, ids[0].seq + i) for i in range(5)]

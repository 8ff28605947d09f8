"""The client's one call path: typed per RPC, session tokens carried, write concern sent."""

from __future__ import annotations

import datetime as dt
import typing
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from google.protobuf.message import Message

import dbank
from dbank._proto import bank_pb2 as pb
from dbank.client import (
    BalanceChange,
    BankClient,
    DepositEntry,
    EntryKind,
    OpId,
    Session,
    Transaction,
    WriteConcern,
)
from dbank.ledger import VersionVector
from dbank.security import init_pki, load_ca

RPCS = pb.DESCRIPTOR.services_by_name["Bank"].methods_by_name
WRITES = {"CreateAccount", "Deposit", "Withdraw", "Transfer", "CalculateInterest", "Batch"}
TOKEN_SENT = {1: 4, 2: 7}
TOKEN_BACK = {1: 5, 3: 2}


def test_the_typed_stub_gives_every_rpc_its_request_and_reply_types() -> None:
    stub_type = typing.get_type_hints(BankClient)["_stub"]
    methods = typing.get_type_hints(stub_type)
    assert set(methods) == set(RPCS)
    for name, rpc in RPCS.items():
        request, reply = typing.get_args(methods[name])
        assert request.DESCRIPTOR.full_name == rpc.input_type.full_name, name
        assert reply.DESCRIPTOR.full_name == rpc.output_type.full_name, name


def test_writes_are_exactly_the_requests_with_a_write_concern() -> None:
    with_concern = {
        name for name, rpc in RPCS.items() if "write_concern" in rpc.input_type.fields_by_name
    }
    assert with_concern == WRITES


def test_public_results_carry_types_the_public_face_exports() -> None:
    assert dbank.OpId is OpId
    assert dbank.EntryKind is EntryKind
    hints = typing.get_type_hints(Transaction)
    assert hints["op_id"] is OpId
    assert hints["kind"] is EntryKind
    assert typing.get_type_hints(BalanceChange)["op_id"] is OpId


class _Method:
    """A stub method that records what it was sent and answers ``reply``."""

    def __init__(self, reply: Message) -> None:
        self.reply = reply
        self.sent: list[Message] = []
        self.metadata: list[object] = []

    # ``timeout`` is the keyword of grpc's stub methods, which this stands in for.
    async def __call__(
        self,
        request: Message,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
        metadata: object = None,
    ) -> Message:
        assert timeout is not None
        assert timeout > 0
        self.metadata.append(metadata)
        copy = type(request)()
        copy.CopyFrom(request)
        self.sent.append(copy)
        return self.reply


def _replies() -> dict[str, Message]:
    session = pb.VersionVector(applied=TOKEN_BACK)
    account = pb.Account(account_id="a", type=pb.ACCOUNT_TYPE_SAVINGS, currency="USD")
    entry = pb.Entry(op_id=pb.OpId(origin=1, seq=2), kind=pb.ENTRY_KIND_DEPOSIT, amount=5)
    day = "2026-01-02"
    return {
        "CreateAccount": pb.CreateAccountResponse(account=account, session=session),
        "GetBalance": pb.GetBalanceResponse(account=account, session=session),
        "GetBalances": pb.GetBalancesResponse(accounts=[account], session=session),
        "Deposit": pb.DepositResponse(account_id="a", balance=5, session=session),
        "Withdraw": pb.WithdrawResponse(account_id="a", balance=4, session=session),
        "Transfer": pb.TransferResponse(from_account_id="a", to_account_id="b", session=session),
        "CalculateInterest": pb.CalculateInterestResponse(posted_through=day, session=session),
        "ListTransactions": pb.ListTransactionsResponse(entries=[entry], session=session),
        "GetStatement": pb.GetStatementResponse(from_date=day, to_date=day, session=session),
        "Batch": pb.BatchResponse(
            results=[pb.BatchResult(deposit=pb.DepositResponse(account_id="a", balance=5))],
            session=session,
        ),
    }


def _calls(bank: BankClient) -> dict[str, Callable[[], Awaitable[object]]]:
    day = dt.date(2026, 1, 2)
    return {
        "CreateAccount": lambda: bank.create_account(account_id="a", owner="o"),
        "GetBalance": lambda: bank.get_balance(account_id="a"),
        "GetBalances": lambda: bank.get_balances(account_ids=["a"]),
        "Deposit": lambda: bank.deposit(account_id="a", amount=5),
        "Withdraw": lambda: bank.withdraw(account_id="a", amount=1),
        "Transfer": lambda: bank.transfer(from_account_id="a", to_account_id="b", amount=1),
        "CalculateInterest": lambda: bank.calculate_interest(
            account_id="a", annual_rate="1", as_of=day
        ),
        "ListTransactions": lambda: bank.list_transactions(account_id="a"),
        "GetStatement": lambda: bank.get_statement(account_id="a", from_date=day, to_date=day),
        "Batch": lambda: bank.batch([DepositEntry("a", 5)]),
    }


@pytest.fixture
async def stubbed() -> AsyncIterator[tuple[BankClient, dict[str, _Method]]]:
    methods = {name: _Method(reply) for name, reply in _replies().items()}
    bank = BankClient(
        "localhost:1",
        session=Session(VersionVector(TOKEN_SENT)),
        write_concern=WriteConcern.LOCAL,
    )
    bank._stub = SimpleNamespace(**methods)
    try:
        yield bank, methods
    finally:
        await bank.close()


@pytest.mark.parametrize("rpc", sorted(RPCS))
async def test_every_rpc_sends_the_session_and_advances_it_by_the_reply(
    stubbed: tuple[BankClient, dict[str, _Method]], rpc: str
) -> None:
    bank, methods = stubbed
    await _calls(bank)[rpc]()
    (sent,) = methods[rpc].sent
    assert dict(sent.session.applied) == TOKEN_SENT  # type: ignore[attr-defined]
    assert bank.session.token == VersionVector(TOKEN_SENT).merge(VersionVector(TOKEN_BACK))


@pytest.mark.parametrize("rpc", sorted(WRITES))
async def test_every_write_sends_the_clients_write_concern(
    stubbed: tuple[BankClient, dict[str, _Method]], rpc: str
) -> None:
    bank, methods = stubbed
    await _calls(bank)[rpc]()
    (sent,) = methods[rpc].sent
    assert sent.write_concern == pb.WRITE_CONCERN_LOCAL  # type: ignore[attr-defined]


async def test_a_write_sends_write_concern_all_by_default() -> None:
    deposit = _Method(pb.DepositResponse(account_id="a"))
    bank = BankClient("localhost:1")
    bank._stub = SimpleNamespace(Deposit=deposit)
    try:
        result = await bank.deposit(account_id="a", amount=5)
    finally:
        await bank.close()
    assert deposit.sent[0].write_concern == pb.WRITE_CONCERN_ALL  # type: ignore[attr-defined]
    assert isinstance(result.op_id, OpId)


async def test_a_token_goes_with_every_call_over_tls_only(tmp_path: Path) -> None:
    init_pki(tmp_path / "tls", [1])
    ca = load_ca(tmp_path / "tls" / "ca.crt")
    deposit = _Method(pb.DepositResponse(account_id="a"))
    bank = BankClient("localhost:1", tls=ca, token="aaa.bbb.ccc")
    bank._stub = SimpleNamespace(Deposit=deposit)
    try:
        await bank.deposit(account_id="a", amount=5)
    finally:
        await bank.close()
    assert deposit.metadata == [(("authorization", "Bearer aaa.bbb.ccc"),)]
    with pytest.raises(ValueError, match="only sent over TLS"):
        BankClient("localhost:1", token="aaa.bbb.ccc")
    with pytest.raises(ValueError, match="characters no token has"):
        BankClient("localhost:1", tls=ca, token="aaa.bbb\nccc")

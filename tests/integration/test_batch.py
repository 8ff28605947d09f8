"""The batch API against three real secure branch processes: mixed and atomic batches,
retries, escrow borrowed for a batch, and who may send which entries (design §12)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from conftest import unique_id
from support.secure import PKI, BankClient
from support.secure import proxied_bank as running_cluster

from dbank._proto import bank_pb2 as pb
from dbank._status import error_from_rpc
from dbank.client import (
    BalanceChange,
    DepositEntry,
    Session,
    TransferEntry,
    TransferResult,
    WithdrawEntry,
)
from dbank.errors import (
    Aborted,
    AccountNotFound,
    DbankError,
    InsufficientFunds,
    InvalidArgument,
    PermissionDenied,
)
from dbank.hosting import ProxiedBank as Cluster
from dbank.security import Role


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("bank")) as bank:
        yield bank


async def _balances(client: BankClient, *accounts: str) -> list[int]:
    return [a.balance for a in await client.get_balances(account_ids=list(accounts))]


async def _opened(client: BankClient, *owners: str, funds: int = 0) -> list[str]:
    accounts = []
    for owner in owners:
        account_id = unique_id(owner)
        await client.create_account(account_id=account_id, owner=owner)
        if funds:
            await client.deposit(account_id=account_id, amount=funds)
        accounts.append(account_id)
    return accounts


async def test_each_entry_of_a_batch_succeeds_or_fails_on_its_own(
    healthy: Cluster, clients: dict[int, BankClient]
) -> None:
    bank = clients[1]
    a, b = await _opened(bank, "ann", "bob", funds=1_000)
    outcome = await bank.batch(
        [
            DepositEntry(a, 500),
            WithdrawEntry(b, 5_000),  # more than b holds
            TransferEntry(a, b, 1_200),
            DepositEntry(unique_id("nowhere"), 1),
            WithdrawEntry(a, 0),  # not an amount
            WithdrawEntry(b, 2_000),
        ]
    )
    results = outcome.results
    assert isinstance(results[0], BalanceChange)
    assert results[0].balance == 1_500
    assert isinstance(results[1], InsufficientFunds)
    assert isinstance(results[2], TransferResult)
    assert (results[2].from_balance, results[2].to_balance) == (300, 2_200)
    assert isinstance(results[3], AccountNotFound)
    assert isinstance(results[4], InvalidArgument)
    assert isinstance(results[5], BalanceChange)
    assert results[5].balance == 200
    assert sorted(outcome.failed) == [1, 3, 4]
    # One transaction: the ops of the batch follow each other in the branch's log.
    seqs = [r.op_id.seq for r in results if isinstance(r, BalanceChange | TransferResult)]
    assert seqs == list(range(seqs[0], seqs[0] + 3))
    assert await _balances(bank, a, b) == [300, 200]
    # Every other branch has the batch, read with the session it gave.
    for i in (2, 3):
        assert await _balances(clients[i], a, b) == [300, 200]


async def test_an_atomic_batch_with_one_refusal_applies_nothing(
    healthy: Cluster, clients: dict[int, BankClient]
) -> None:
    bank = clients[1]
    a, b = await _opened(bank, "cy", "di", funds=100)
    entries = [
        TransferEntry(a, b, 60, request_id=unique_id("t1")),
        TransferEntry(a, b, 60, request_id=unique_id("t2")),  # 40 left: refused
        DepositEntry(b, 7, request_id=unique_id("d")),
    ]
    outcome = await bank.batch(entries, atomic=True)
    first, second, third = outcome.results
    assert isinstance(second, InsufficientFunds)
    for aborted in (first, third):
        assert isinstance(aborted, Aborted)
        assert (aborted.reason, aborted.metadata["entry"]) == ("BATCH_ABORTED", "1")
    assert await _balances(bank, a, b) == [100, 100]
    # Nothing was stored: the same batch decides again once the money is there.
    await bank.deposit(account_id=a, amount=20)
    again = await bank.batch(entries, atomic=True)
    assert again.failed == {}
    assert await _balances(bank, a, b) == [0, 227]


async def test_a_batch_retried_whole_applies_nothing_twice(
    healthy: Cluster, clients: dict[int, BankClient]
) -> None:
    bank = clients[2]
    (a,) = await _opened(bank, "ed", funds=50)
    entries = [
        DepositEntry(a, 10, request_id=unique_id("d")),
        WithdrawEntry(a, 25, request_id=unique_id("w")),
        WithdrawEntry(a, 500, request_id=unique_id("w")),
    ]
    first = await bank.batch(entries)
    retried = await bank.batch(entries)
    assert [type(r) for r in retried.results] == [BalanceChange, BalanceChange, InsufficientFunds]
    assert [getattr(r, "op_id", None) for r in retried.results] == [
        getattr(r, "op_id", None) for r in first.results
    ]
    assert await _balances(bank, a) == [35]


async def test_a_batch_borrows_the_escrow_other_branches_hold(
    healthy: Cluster, clients: dict[int, BankClient]
) -> None:
    a, b = await _opened(clients[1], "fay", "gus")
    await clients[1].deposit(account_id=a, amount=300)
    await clients[3].deposit(account_id=a, amount=300)
    # Branch 2 holds none of a: 20 withdrawals of 25 need 500 from branches 1 and 3.
    entries = [WithdrawEntry(a, 25) for _ in range(19)] + [TransferEntry(a, b, 25)]
    outcome = await clients[2].batch(entries)
    assert outcome.failed == {}
    account = await clients[2].get_balance(account_id=a)
    assert account.balance == 100
    for i in (1, 3):
        assert await _balances(clients[i], a, b) == [100, 25]


async def test_an_atomic_batch_borrows_and_then_applies_whole(
    healthy: Cluster, clients: dict[int, BankClient]
) -> None:
    (a,) = await _opened(clients[3], "hal")
    await clients[1].deposit(account_id=a, amount=100)
    outcome = await clients[2].batch(
        [WithdrawEntry(a, 40), WithdrawEntry(a, 40), DepositEntry(a, 5)], atomic=True
    )
    assert outcome.failed == {}
    assert await _balances(clients[3], a) == [25]


async def test_a_batch_is_refused_whole_for_its_shape(
    healthy: Cluster, clients: dict[int, BankClient]
) -> None:
    bank = clients[1]
    (a,) = await _opened(bank, "ivy", funds=10)
    with pytest.raises(InvalidArgument) as empty:
        await bank.batch([])
    assert empty.value.reason == "BATCH_TOO_LARGE"
    with pytest.raises(InvalidArgument) as repeated:
        await bank.batch([DepositEntry(a, 1, request_id="x"), WithdrawEntry(a, 1, request_id="x")])
    assert repeated.value.reason == "BATCH_REQUEST_ID_REPEATED"
    with pytest.raises(InvalidArgument) as large:
        await bank.batch([DepositEntry(a, 1) for _ in range(8_001)])
    assert large.value.reason == "BATCH_TOO_LARGE"
    assert await _balances(bank, a) == [10]


async def test_a_customer_batch_with_an_entry_it_may_not_make_is_refused_whole(
    healthy: Cluster, clients: dict[int, BankClient]
) -> None:
    teller = clients[1]
    mine, theirs = await _opened(teller, "jo", "kim", funds=100)
    token = PKI.token("jo", Role.CUSTOMER)
    session = Session(teller.session.token)
    async with BankClient(healthy.address(1), token=token, session=session) as customer:
        for foreign in (
            WithdrawEntry(theirs, 1),
            DepositEntry(theirs, 1),
            TransferEntry(theirs, mine, 1),
            DepositEntry(unique_id("nowhere"), 1),
        ):
            with pytest.raises(PermissionDenied):
                await customer.batch([DepositEntry(mine, 5), foreign])
        assert await _balances(teller, mine, theirs) == [100, 100]
        # Paying into another's account is allowed, and tells nothing of that account.
        paid = await customer.batch(
            [TransferEntry(mine, theirs, 10), TransferEntry(mine, unique_id("nowhere"), 10)]
        )
        moved, nowhere = paid.results
        assert isinstance(moved, TransferResult)
        assert moved.to_balance == 0
        assert isinstance(nowhere, PermissionDenied)
    assert await _balances(teller, mine, theirs) == [90, 110]


async def test_an_auditor_may_send_no_batch(
    healthy: Cluster, clients: dict[int, BankClient]
) -> None:
    teller = clients[1]
    (a,) = await _opened(teller, "lu", funds=10)
    token = PKI.token("audit", Role.AUDITOR)
    async with BankClient(healthy.address(1), token=token, session=teller.session) as auditor:
        with pytest.raises(PermissionDenied):
            await auditor.batch([DepositEntry(a, 1)])
    assert await _balances(teller, a) == [10]


async def test_a_batch_borrows_for_what_its_later_entries_spent_too(
    healthy: Cluster, clients: dict[int, BankClient]
) -> None:
    (a,) = await _opened(clients[1], "mo")
    await clients[2].deposit(account_id=a, amount=100)  # branch 2 holds 100 of a
    await clients[3].deposit(account_id=a, amount=100)
    # 60 fits, 60 falls short, then 30 spends all but 10 of what is left: the retried
    # entry needs 50 more, not the 20 it lacked when it was first decided.
    outcome = await clients[2].batch(
        [WithdrawEntry(a, 60), WithdrawEntry(a, 60), WithdrawEntry(a, 30)]
    )
    assert outcome.failed == {}
    assert await _balances(clients[1], a) == [50]


def _raw_batch(address: str, token: str, request: pb.BatchRequest) -> DbankError:
    with (
        grpc.secure_channel(address, PKI.credentials(token)) as channel,
        pytest.raises(grpc.RpcError) as failed,
    ):
        channel.unary_unary(
            "/dbank.v1.Bank/Batch",
            request_serializer=pb.BatchRequest.SerializeToString,
            response_deserializer=pb.BatchResponse.FromString,
        )(request, timeout=10)
    return error_from_rpc(failed.value)  # type: ignore[arg-type]


async def test_empty_entries_refuse_the_batch_before_its_entries_are_authorized(
    healthy: Cluster, clients: dict[int, BankClient]
) -> None:
    teller = clients[1]
    mine, theirs = await _opened(teller, "ned", "ola", funds=100)
    token = PKI.token("ned", Role.CUSTOMER)
    # An empty entry first once shifted which result was the payment to a stranger.
    request = pb.BatchRequest(atomic=False)
    request.entries.add()
    request.entries.add().transfer.CopyFrom(
        pb.TransferRequest(from_account_id=mine, to_account_id=theirs, amount=1, request_id="t")
    )
    refused = _raw_batch(healthy.address(1), token, request)
    assert isinstance(refused, InvalidArgument)
    assert refused.reason == "BATCH_ENTRY_EMPTY"
    auditor = PKI.token("audit", Role.AUDITOR)
    only_empty = pb.BatchRequest()
    only_empty.entries.add()
    assert _raw_batch(healthy.address(1), auditor, only_empty).reason == "BATCH_ENTRY_EMPTY"
    assert await _balances(teller, mine, theirs) == [100, 100]


async def test_an_oversized_batch_is_refused_before_it_is_parsed_or_walked(
    healthy: Cluster, clients: dict[int, BankClient]
) -> None:
    token = PKI.token("pat", Role.CUSTOMER)
    many = pb.BatchRequest()
    for _ in range(10_001):
        many.entries.add()
    assert _raw_batch(healthy.address(1), token, many).reason == "TOO_MANY_ITEMS"
    huge = pb.BatchRequest()
    for _ in range(3_000_000):
        huge.entries.add()
    assert _raw_batch(healthy.address(1), token, huge).reason == "REQUEST_TOO_LARGE"


async def test_a_refused_atomic_batch_does_not_tell_a_customer_which_accounts_exist(
    healthy: Cluster, clients: dict[int, BankClient]
) -> None:
    teller = clients[1]
    mine, theirs = await _opened(teller, "quin", "rae", funds=100)
    token = PKI.token("quin", Role.CUSTOMER)
    session = Session(teller.session.token)
    async with BankClient(healthy.address(1), token=token, session=session) as customer:
        answers = []
        for target in (theirs, unique_id("nowhere")):
            outcome = await customer.batch(
                [WithdrawEntry(mine, 1_000), TransferEntry(mine, target, 1)], atomic=True
            )
            first, paid = outcome.results
            assert isinstance(first, InsufficientFunds)
            assert isinstance(paid, Aborted)
            answers.append((paid.reason, paid.metadata["entry"], paid.message))
        assert answers[0] == answers[1] == (answers[0][0], "0", answers[0][2])
        assert answers[0][0] == "BATCH_ABORTED"
    assert await _balances(teller, mine, theirs) == [100, 100]

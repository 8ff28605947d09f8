"""Interest, history and statements against a real branch process.

The branch's data directory is first written by a branch whose clock the test sets to
February and March 2024 (``support.past``); the process then serves that history with the
real clock, so interest is posted for days that are over, as in production.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import itertools
import json
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner
from conftest import unique_id
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from support.past import SetClock, branch_with_clock
from support.secure import PKI, BankClient, aio_channel, channel, start_branch
from test_cli import dbank

from dbank._proto import bank_pb2 as pb
from dbank._proto import bank_pb2_grpc
from dbank.branch import RequestContext
from dbank.cli import main
from dbank.client import Transaction
from dbank.hosting import BranchProcess
from dbank.ledger import (
    AccountType,
    DepositCommand,
    EntryKind,
    InterestCommand,
    OpenAccountCommand,
    RequestIdReused,
    TransferCommand,
    WithdrawCommand,
)

FEB_29 = dt.date(2024, 2, 29)
CONTEXT = RequestContext()


async def _history(data_dir: Path) -> None:
    """Write February and March 2024 into ``data_dir``: see each account below."""
    clock = SetClock(dt.datetime(2024, 2, 1, 9, tzinfo=dt.UTC))
    async with branch_with_clock(clock, data_dir) as branch:

        async def open_(account: str, kind: AccountType, cur: str = "USD") -> None:
            command = OpenAccountCommand(account, kind, cur, "o", f"open-{account}")
            await branch.open_account(command, CONTEXT)

        async def deposit(account: str, amount: int) -> None:
            await branch.deposit(DepositCommand(account, amount, unique_id("d")), CONTEXT)

        for account in ("sav", "errs", "stmt"):
            await open_(account, AccountType.SAVINGS)
        await open_("kwd", AccountType.SAVINGS, "KWD")
        await open_("kwd-cli", AccountType.SAVINGS, "KWD")
        await open_("chk", AccountType.CHECKING)
        await deposit("sav", 100_000)  # 1000.00 from Feb 1
        await deposit("kwd", 1_000_000)  # 1000.000 KWD from Feb 1
        await deposit("kwd-cli", 1_000_000)
        await deposit("stmt", 10_000)
        await deposit("chk", 5_000)
        await deposit("errs", 2_500)
        clock.at(dt.date(2024, 2, 12))
        await branch.transfer(TransferCommand("stmt", "chk", 3_000, "t-stmt"), CONTEXT)
        clock.at(dt.date(2024, 2, 15), hour=23)
        await deposit("sav", 50_000)  # 1500.00 from Feb 15
        clock.at(dt.date(2024, 2, 20), hour=0)
        await branch.withdraw(WithdrawCommand("sav", 20_000, "w-sav"), CONTEXT)  # 1300.00
        await deposit("stmt", 1_000)
        clock.at(dt.date(2024, 3, 2))
        interest = InterestCommand("stmt", "5", FEB_29, "i-stmt")
        await branch.calculate_interest(interest, CONTEXT)
        clock.at(dt.date(2024, 3, 3))
        await branch.withdraw(WithdrawCommand("stmt", 500, "w-stmt"), CONTEXT)


@pytest.fixture(scope="module")
def past(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BranchProcess]:
    data_dir = tmp_path_factory.mktemp("past")
    asyncio.run(_history(data_dir))
    process = start_branch(1, data_dir)
    yield process
    assert process.stop() == 0, process.log()


def _daily(balances: list[tuple[int, int]], rate: str) -> int:
    """Interest of ``(balance, days)`` runs: exact, rounded half-even once."""
    total = sum(Fraction(b * d) for b, d in balances) * Fraction(Decimal(rate)) / 36_500
    return round(total)


# Interest ----------------------------------------------------------------------------------


async def test_interest_is_posted_once_per_day(past: BranchProcess) -> None:
    expected = _daily([(100_000, 14), (150_000, 5), (130_000, 10)], "4.25")
    async with BankClient(past.address) as bank:
        done = await bank.calculate_interest(account_id="sav", annual_rate="4.25", as_of=FEB_29)
        assert (done.interest, done.posted_through, done.annual_rate) == (expected, FEB_29, "4.25")
        assert (done.day_balance, done.posted_now, done.currency) == (130_000, True, "USD")
        balance = (await bank.get_balance(account_id="sav")).balance
        assert balance == 130_000 + expected
        # Asked again, for that day or an earlier one, at any rate: the same posting.
        for day, rate in ((FEB_29, "4.25"), (FEB_29, "9.5"), (dt.date(2024, 2, 3), "1")):
            again = await bank.calculate_interest(account_id="sav", annual_rate=rate, as_of=day)
            assert (again.op_id, again.interest, again.posted_now) == (done.op_id, expected, False)
        assert (await bank.get_balance(account_id="sav")).balance == balance
        # The same request id is the same request: its posting, or REQUEST_ID_REUSED.
        retry = await bank.calculate_interest(
            account_id="sav", annual_rate="4.250", as_of=FEB_29, request_id=done.request_id
        )
        assert (retry.op_id, retry.posted_now) == (done.op_id, True)
        with pytest.raises(RequestIdReused):
            await bank.calculate_interest(
                account_id="sav", annual_rate="4", as_of=FEB_29, request_id=done.request_id
            )
        page = await bank.list_transactions(account_id="sav")
        last = page.transactions[-1]
        assert (last.kind, last.amount, last.balance) == (EntryKind.INTEREST, expected, balance)


async def test_interest_in_a_currency_with_three_decimals(past: BranchProcess) -> None:
    # 1000.000 KWD at 3.65 % for the 29 days of February 2024: 2.900 KWD.
    async with BankClient(past.address) as bank:
        done = await bank.calculate_interest(account_id="kwd", annual_rate="3.65", as_of=FEB_29)
    assert (done.interest, done.currency) == (2_900, "KWD")


# History -----------------------------------------------------------------------------------


async def test_paging_loses_and_repeats_nothing_while_writes_go_on(past: BranchProcess) -> None:
    account = unique_id("busy")
    async with BankClient(past.address) as bank:
        await bank.create_account(account_id=account, owner="o")
        for start in range(0, 300, 50):
            await asyncio.gather(
                *(bank.deposit(account_id=account, amount=n + 1) for n in range(start, start + 50))
            )
        writing = asyncio.Event()

        async def write_on() -> int:
            count = 0
            while True:
                await bank.deposit(account_id=account, amount=1)
                count += 1
                writing.set()

        writer = asyncio.create_task(write_on())
        await writing.wait()
        listed: list[Transaction] = []
        token = ""
        while True:
            page = await bank.list_transactions(account_id=account, page_size=37, page_token=token)
            assert len(page.transactions) <= 37
            listed.extend(page.transactions)
            token = page.next_page_token
            if not token:
                break
            # Each page waits for a write to land meanwhile, to be sure writes go on.
            writing.clear()
            await writing.wait()
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        everything = [t async for t in bank.transactions(account_id=account, page_size=1000)]
    assert len({t.op_id for t in listed}) == len(listed) > 301
    assert listed[0].kind is EntryKind.OPEN
    for before, after in itertools.pairwise(listed):
        assert after.balance == before.balance + after.amount
    # The listing is the account as of its first page: a prefix of the account's history.
    assert everything[: len(listed)] == listed
    assert len(everything) > len(listed)
    assert sorted(t.amount for t in listed[1:301]) == list(range(1, 301))


async def test_a_statement_is_its_opening_balance_plus_its_entries(past: BranchProcess) -> None:
    async with BankClient(past.address) as bank:
        statement = await bank.get_statement(
            account_id="stmt", from_date=dt.date(2024, 2, 10), to_date=dt.date(2024, 3, 2)
        )
        whole = await bank.get_statement(
            account_id="stmt", from_date=dt.date(2024, 1, 1), to_date=dt.date(2030, 1, 1)
        )
    interest = _daily([(10_000, 11), (7_000, 8), (8_000, 10)], "5")
    assert statement.opening_balance == 10_000
    assert [(t.kind, t.amount) for t in statement.transactions] == [
        (EntryKind.TRANSFER_OUT, -3_000),
        (EntryKind.DEPOSIT, 1_000),
        (EntryKind.INTEREST, interest),
    ]
    assert statement.transactions[0].counterparty == "chk"
    assert statement.interest == interest
    assert statement.closing_balance == 8_000 + interest
    for s in (statement, whole):
        assert s.closing_balance == s.opening_balance + sum(t.amount for t in s.transactions)
    assert (whole.opening_balance, whole.closing_balance) == (0, 7_500 + interest)
    assert whole.transactions[-1].time.date() == dt.date(2024, 3, 3)


# Errors: a precise status with an ErrorInfo, and nothing changed ---------------------------

Code = grpc.StatusCode
TODAY = dt.datetime.now(dt.UTC).date().isoformat()


def _interest(
    account: str = "errs", rate: str = "4", as_of: str = "2024-02-20", **kw: str
) -> pb.CalculateInterestRequest:
    return pb.CalculateInterestRequest(
        account_id=account, annual_rate=rate, as_of=as_of, request_id=kw.get("rid", "i-err")
    )


ERROR_CASES = [
    ("CalculateInterest", _interest("chk"), Code.FAILED_PRECONDITION, "WRONG_ACCOUNT_TYPE"),
    ("CalculateInterest", _interest("nobody"), Code.NOT_FOUND, "ACCOUNT_NOT_FOUND"),
    ("CalculateInterest", _interest(rate="100.5"), Code.INVALID_ARGUMENT, "INVALID_RATE"),
    ("CalculateInterest", _interest(rate="-1"), Code.INVALID_ARGUMENT, "INVALID_RATE"),
    ("CalculateInterest", _interest(rate="four"), Code.INVALID_ARGUMENT, "INVALID_RATE"),
    ("CalculateInterest", _interest(rate="1e1"), Code.INVALID_ARGUMENT, "INVALID_RATE"),
    ("CalculateInterest", _interest(rate=""), Code.INVALID_ARGUMENT, "INVALID_RATE"),
    ("CalculateInterest", _interest(as_of=TODAY), Code.INVALID_ARGUMENT, "INVALID_AS_OF"),
    ("CalculateInterest", _interest(as_of="2999-01-01"), Code.INVALID_ARGUMENT, "INVALID_AS_OF"),
    ("CalculateInterest", _interest(as_of="2024-01-31"), Code.INVALID_ARGUMENT, "INVALID_AS_OF"),
    ("CalculateInterest", _interest(as_of="2024-02-30"), Code.INVALID_ARGUMENT, "INVALID_AS_OF"),
    ("CalculateInterest", _interest(as_of=""), Code.INVALID_ARGUMENT, "INVALID_AS_OF"),
    ("CalculateInterest", _interest(rid=""), Code.INVALID_ARGUMENT, "INVALID_REQUEST_ID"),
    ("CalculateInterest", _interest("a b"), Code.INVALID_ARGUMENT, "INVALID_ACCOUNT_ID"),
    (
        "ListTransactions",
        pb.ListTransactionsRequest(account_id="errs", page_size=-1),
        Code.INVALID_ARGUMENT,
        "INVALID_PAGE_SIZE",
    ),
    (
        "ListTransactions",
        pb.ListTransactionsRequest(account_id="errs", page_token="garbage"),
        Code.INVALID_ARGUMENT,
        "INVALID_PAGE_TOKEN",
    ),
    (
        "ListTransactions",
        pb.ListTransactionsRequest(account_id="errs", page_token="<other>"),
        Code.INVALID_ARGUMENT,
        "INVALID_PAGE_TOKEN",
    ),
    (
        "ListTransactions",
        pb.ListTransactionsRequest(account_id="nobody"),
        Code.NOT_FOUND,
        "ACCOUNT_NOT_FOUND",
    ),
    (
        "GetStatement",
        pb.GetStatementRequest(account_id="errs", from_date="2024-03-01", to_date="2024-02-01"),
        Code.INVALID_ARGUMENT,
        "INVALID_DATE_RANGE",
    ),
    (
        "GetStatement",
        pb.GetStatementRequest(account_id="errs", from_date="March", to_date="2024-02-01"),
        Code.INVALID_ARGUMENT,
        "INVALID_DATE_RANGE",
    ),
    (
        "GetStatement",
        pb.GetStatementRequest(account_id="nobody", from_date="2024-02-01", to_date="2024-02-01"),
        Code.NOT_FOUND,
        "ACCOUNT_NOT_FOUND",
    ),
]


async def _state(stub: bank_pb2_grpc.BankStub) -> list[object]:
    accounts = ["errs", "chk"]
    balances = await stub.GetBalances(pb.GetBalancesRequest(account_ids=accounts))
    listings = [
        await stub.ListTransactions(pb.ListTransactionsRequest(account_id=a)) for a in accounts
    ]
    return [list(balances.accounts), *[list(listing.entries) for listing in listings]]


@pytest.mark.parametrize(
    ("method", "request_", "code", "reason"),
    ERROR_CASES,
    ids=[f"{c[0]}-{c[3]}-{n}" for n, c in enumerate(ERROR_CASES)],
)
async def test_errors_are_precise_and_change_nothing(
    past: BranchProcess, method: str, request_: object, code: grpc.StatusCode, reason: str
) -> None:
    async with aio_channel(past.address) as open_channel:
        stub = bank_pb2_grpc.BankStub(open_channel)
        if isinstance(request_, pb.ListTransactionsRequest) and request_.page_token == "<other>":
            other = await stub.ListTransactions(
                pb.ListTransactionsRequest(account_id="sav", page_size=1)
            )
            request_ = pb.ListTransactionsRequest(
                account_id="errs", page_token=other.next_page_token
            )
        before = await _state(stub)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await getattr(stub, method)(request_)
        error = caught.value
        assert error.code() == code, error.details()
        status = rpc_status.from_call(error)
        assert status is not None
        info = error_details_pb2.ErrorInfo()
        assert status.details[0].Unpack(info)
        assert (info.domain, info.reason) == ("dbank", reason)
        assert error.details()
        assert await _state(stub) == before


# The dbank command ---------------------------------------------------------------------------


def test_the_account_commands(past: BranchProcess) -> None:
    posted = dbank("account", "interest", "kwd-cli", "--rate", "1", "--as-of", "2024-02-10",
                   "--json", branch=past)  # fmt: skip
    assert posted.returncode == 0, posted.stderr
    data = json.loads(posted.stdout)
    assert data["interest"] == {"amount": "0.274", "currency": "KWD", "minor_units": 274}
    assert (data["posted_through"], data["posted_now"]) == ("2024-02-10", True)
    again = dbank("account", "interest", "kwd-cli", "--rate", "1", "--as-of", "2024-02-10",
                  branch=past)  # fmt: skip
    assert "posted through 2024-02-10 already" in again.stdout
    assert "nothing added" in again.stdout

    history = dbank("account", "history", "stmt", "--page-size", "2", branch=past)
    assert history.returncode == 0, history.stderr
    assert "deposit" in history.stdout
    assert "--page-token" in history.stdout
    everything = dbank("account", "history", "stmt", "--page-size", "2", "--all", "--json",
                       branch=past)  # fmt: skip
    listed = json.loads(everything.stdout)
    assert [t["kind"] for t in listed["transactions"]] == [
        "open", "deposit", "transfer_out", "deposit", "interest", "withdrawal",
    ]  # fmt: skip
    assert listed["next_page_token"] == ""

    args = ("account", "statement", "stmt", "--from", "2024-02-10", "--to", "2024-03-02")
    table = dbank(*args, branch=past)
    assert table.returncode == 0, table.stderr
    for text in ("Statement of stmt", "opening balance", "100.00", "closing balance", "-30.00"):
        assert text in table.stdout
    rows = list(csv.DictReader(io.StringIO(dbank(*args, "--format", "csv", branch=past).stdout)))
    assert [r["kind"] for r in rows] == [
        "opening_balance", "transfer_out", "deposit", "interest", "closing_balance",
    ]  # fmt: skip
    assert (rows[0]["balance"], rows[1]["amount"]) == ("100.00", "-30.00")
    as_json = json.loads(dbank(*args, "--format", "json", branch=past).stdout)
    assert as_json == json.loads(dbank(*args, "--json", branch=past).stdout)
    assert as_json["opening_balance"]["minor_units"] == 10_000
    assert as_json["closing_balance"]["amount"] == rows[-1]["balance"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("interest", "errs", "--rate", "abc"), "decimal percentage"),
        (("interest", "errs", "--rate", "120"), "between 0 and 100"),
        (("interest", "errs", "--rate", "1", "--as-of", "2024-13-01"), "YYYY-MM-DD"),
        (("history", "errs", "--page-size", "0"), "0 is not in the range"),
        (("statement", "errs", "--from", "2024-03-01", "--to", "2024-02-01"), "before --from"),
        (("statement", "errs", "--from", "soon"), "YYYY-MM-DD"),
        (("statement", "errs", "--from", "2024-02-01", "--format", "xml"), "xml"),
    ],
)
def test_bad_flags_exit_2_and_change_nothing(
    past: BranchProcess, args: tuple[str, ...], message: str
) -> None:
    # In this process: a mistake in the flags is caught before any request is sent.
    before = _listing(past)
    secure = ("--tls-dir", str(PKI.tls_dir), "--token", PKI.admin_token)
    bad = CliRunner().invoke(main, ["account", *args, "--branch", past.address, *secure])
    assert bad.exit_code == 2
    assert message in bad.stderr
    assert "Traceback" not in bad.output
    assert _listing(past) == before


def _listing(branch: BranchProcess) -> list[pb.Entry]:
    with channel(branch.address) as open_channel:
        request = pb.ListTransactionsRequest(account_id="errs")
        return list(bank_pb2_grpc.BankStub(open_channel).ListTransactions(request).entries)


def test_a_refused_interest_exits_1_with_its_reason(past: BranchProcess) -> None:
    refused = dbank("account", "interest", "chk", "--rate", "1", "--as-of", "2024-02-10",
                    branch=past)  # fmt: skip
    assert refused.returncode == 1
    assert "WRONG_ACCOUNT_TYPE" in refused.stderr

"""Interest at a branch whose clock the test sets, on a real SQLite file: once per day,
idempotent, compounding across restarts, and only for days every branch has closed."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path

import pytest
from support.past import SetClock, branch_with_clock, owned_id

from dbank.branch import Branch, RequestContext
from dbank.ledger import (
    AccountNotFound,
    AccountType,
    DayNotClosed,
    DbankError,
    Deposit,
    DepositCommand,
    InterestCommand,
    InvalidArgument,
    Op,
    OpenAccountCommand,
    OpId,
    RequestIdReused,
    VersionVector,
    WithdrawCommand,
    WrongAccountType,
)
from dbank.ledger.codec import encode_op

CONTEXT = RequestContext()
FEB_29 = dt.date(2024, 2, 29)


@pytest.fixture
def clock() -> SetClock:
    return SetClock(dt.datetime(2024, 2, 1, 9, tzinfo=dt.UTC))


async def _savings(branch: Branch, clock: SetClock, account_id: str = "sav") -> None:
    """Opened Feb 1 with 1000.00, 500.00 more on Feb 15, 200.00 out on Feb 20."""
    clock.at(dt.date(2024, 2, 1), hour=9)
    command = OpenAccountCommand(account_id, AccountType.SAVINGS, "USD", "o", f"open-{account_id}")
    await branch.open_account(command, CONTEXT)
    await branch.deposit(DepositCommand(account_id, 100_000, f"d1-{account_id}"), CONTEXT)
    clock.at(dt.date(2024, 2, 15), hour=23)
    await branch.deposit(DepositCommand(account_id, 50_000, f"d2-{account_id}"), CONTEXT)
    clock.at(dt.date(2024, 2, 20), hour=0)
    await branch.withdraw(WithdrawCommand(account_id, 20_000, f"w-{account_id}"), CONTEXT)
    clock.at(dt.date(2024, 3, 2))


@pytest.fixture
async def branch(clock: SetClock, tmp_path: Path) -> AsyncIterator[Branch]:
    async with branch_with_clock(clock, tmp_path / "data") as made:
        await _savings(made, clock)
        yield made


def _interest(
    day: dt.date, request_id: str, rate: str = "4.25", account: str = "sav"
) -> InterestCommand:
    return InterestCommand(account, rate, day, request_id)


# 1000.00 x 14 days + 1500.00 x 5 days + 1300.00 x 10 days, at 4.25 % / 365 (exact)
FEB_INTEREST = round(Fraction((100_000 * 14 + 150_000 * 5 + 130_000 * 10) * 425, 3_650_000))


async def test_a_day_is_posted_once_whoever_asks(branch: Branch) -> None:
    asks = [branch.calculate_interest(_interest(FEB_29, f"i-{n}"), CONTEXT)
            for n in range(8)]  # fmt: skip
    results = await asyncio.gather(*asks)
    assert {r.posting for r in results} == {results[0].posting}
    assert [r.posted_now for r in results].count(True) == 1
    posting = results[0].posting
    assert (posting.amount, posting.through, posting.day_balance) == (FEB_INTEREST, FEB_29, 130_000)
    assert branch.account("sav").balance == 130_000 + FEB_INTEREST
    # An earlier day, or the same day at another rate, returns that posting: nothing added.
    for again in (_interest(dt.date(2024, 2, 10), "i-x"), _interest(FEB_29, "i-y", rate="9")):
        found = await branch.calculate_interest(again, CONTEXT)
        assert (found.posting, found.posted_now) == (posting, False)
    assert branch.account("sav").balance == 130_000 + FEB_INTEREST


async def test_interest_is_idempotent_by_request_id(branch: Branch, clock: SetClock) -> None:
    first = await branch.calculate_interest(_interest(FEB_29, "same"), CONTEXT)
    march = await branch.calculate_interest(_interest(dt.date(2024, 3, 1), "next"), CONTEXT)
    assert march.posting.through == dt.date(2024, 3, 1)
    # A retry of the first request returns its own posting, not the latest one.
    retry = await branch.calculate_interest(_interest(FEB_29, "same"), CONTEXT)
    assert (retry.posting, retry.posted_now) == (first.posting, True)
    clock.at(dt.date(2024, 3, 11))
    with pytest.raises(RequestIdReused):
        await branch.calculate_interest(_interest(dt.date(2024, 3, 10), "same"), CONTEXT)


async def test_postings_compound_and_survive_a_restart(clock: SetClock, tmp_path: Path) -> None:
    async with branch_with_clock(clock, tmp_path / "data") as branch:
        await _savings(branch, clock)
        feb = await branch.calculate_interest(_interest(FEB_29, "feb"), CONTEXT)
    clock.at(dt.date(2024, 4, 1))
    async with branch_with_clock(clock, tmp_path / "data") as again:
        march = await again.calculate_interest(_interest(dt.date(2024, 3, 31), "mar"), CONTEXT)
        # March 1 (the day February's interest was posted, March 2, is later) earns on
        # 1300.00, the 30 days from March 2 on 1300.00 plus February's interest.
        weighted = 130_000 * 1 + (130_000 + FEB_INTEREST) * 30
        assert march.posting.amount == round(Fraction(weighted * 425, 3_650_000))
        assert march.posting.day_balance == 130_000 + FEB_INTEREST
        assert march.posted_now
        assert again.account("sav").balance == 130_000 + feb.posting.amount + march.posting.amount


async def test_refusals_change_nothing(branch: Branch, clock: SetClock) -> None:
    command = OpenAccountCommand("chk", AccountType.CHECKING, "USD", "o", "open-chk")
    await branch.open_account(command, CONTEXT)
    before = branch.version_vector
    today = clock.now.date()
    cases: list[tuple[InterestCommand, type[DbankError], str]] = [
        (_interest(FEB_29, "c", account="chk"), WrongAccountType, "WRONG_ACCOUNT_TYPE"),
        (_interest(FEB_29, "n", account="nobody"), AccountNotFound, "ACCOUNT_NOT_FOUND"),
        (_interest(dt.date(2024, 1, 31), "early"), InvalidArgument, "INVALID_AS_OF"),
        (_interest(today, "today"), InvalidArgument, "INVALID_AS_OF"),
        (_interest(dt.date(2999, 1, 1), "future"), InvalidArgument, "INVALID_AS_OF"),
    ]
    for command, error, reason in cases:
        with pytest.raises(error) as caught:
            await branch.calculate_interest(command, CONTEXT)
        assert caught.value.reason == reason
    assert branch.version_vector == before
    assert branch.state.postings == {}


async def test_a_day_closes_once_every_branch_has_written_past_it(
    clock: SetClock, tmp_path: Path
) -> None:
    # A bank of two branches; this one (1) owns the account, branch 2 has written nothing
    # and cannot be asked to seal its clock (this branch has no links to it).
    peers = {2: "127.0.0.1:1"}
    account = owned_id("sav", 1, [1, 2])
    async with branch_with_clock(clock, tmp_path / "data", peers=peers) as branch:
        await _savings(branch, clock, account_id=account)
        with pytest.raises(DayNotClosed) as caught:
            await branch.calculate_interest(_interest(FEB_29, "early", account=account), CONTEXT)
        assert caught.value.metadata == {"branches": "2"}
        assert branch.state.postings == {}
        # Branch 2's first op, dated Feb 29, closes nothing later than Feb 28...
        await branch.receive([encode_op(_remote(branch, account, 1, dt.date(2024, 2, 29)))])
        with pytest.raises(DayNotClosed):
            await branch.calculate_interest(_interest(FEB_29, "early", account=account), CONTEXT)
        done = await branch.calculate_interest(
            _interest(dt.date(2024, 2, 28), "feb-28", account=account), CONTEXT
        )
        assert done.posted_now
        # ...and its op dated March 1 closes February 29, with its deposit of that day
        # (February 28's interest is dated March 2, the day it was posted).
        await branch.receive([encode_op(_remote(branch, account, 2, dt.date(2024, 3, 1)))])
        leap = await branch.calculate_interest(_interest(FEB_29, "leap", account=account), CONTEXT)
        assert leap.posting.day_balance == 130_001
        assert leap.posting.amount == round(Fraction(130_001 * 425, 3_650_000))


def _remote(branch: Branch, account: str, seq: int, day: dt.date) -> Op:
    """Branch 2's ``seq``-th op: a deposit of 1 minor unit at noon of ``day``."""
    clock = SetClock(dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC))
    deps = VersionVector({**branch.version_vector, 2: seq - 1})
    return Op(OpId(2, seq), deps, clock() << 16, f"remote-{seq}", "USD", Deposit(account, 1))

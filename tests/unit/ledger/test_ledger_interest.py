"""Interest arithmetic in the pure ledger: rates, periods, the daily-balance method, and
the interest op through planner, state and codec."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_support import originate

from dbank.ledger import (
    AccountType,
    Deposit,
    Interest,
    InterestCommand,
    InvalidArgument,
    InvariantViolation,
    LedgerState,
    OpenAccount,
    OpId,
    Withdrawal,
    WrongAccountType,
    plan,
)
from dbank.ledger.clock import FIRST_DAY, LAST_DAY, LOGICAL_BITS, day_start_hlc, hlc_day
from dbank.ledger.codec import decode_op, encode_op
from dbank.ledger.interest import (
    Accrual,
    InterestPosting,
    Period,
    accrue,
    canonical_rate,
    check_past,
    parse_day,
    parse_rate,
    period_for,
    posted_already,
)
from dbank.ledger.planner import AlreadyPosted, StaleAccrual
from dbank.money import MAX_AMOUNT

SETTINGS = settings(max_examples=200, deadline=None)
FEB_1 = dt.date(2024, 2, 1)


def _period(first: dt.date, last: dt.date, opening: int = 0) -> Period:
    return Period(first, last, opening, None)


def _brute_force(period: Period, changes: list[tuple[dt.date, int]], rate: str) -> int:
    """Day by day: each day's end-of-day balance x rate / 365, summed, rounded half-even."""
    total = Fraction(0)
    day = period.first_day
    while day <= period.through:
        balance = period.opening_balance + sum(c for when, c in changes if when <= day)
        total += Fraction(balance) * Fraction(Decimal(rate)) / 100 / 365
        day += dt.timedelta(days=1)
    whole, rest = divmod(total, 1)
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and whole % 2 == 1):
        whole += 1
    return int(whole)


# Rates and days ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("4.25", "4.25"), ("4.250", "4.25"), ("0", "0"), ("0.000", "0"), ("100", "100"),
     ("100.00", "100"), ("007.5", "7.5"), ("0.0001", "0.0001")],
)  # fmt: skip
def test_rates_are_exact_with_one_spelling(text: str, canonical: str) -> None:
    assert canonical_rate(parse_rate(text)) == canonical


@pytest.mark.parametrize(
    "text",
    ["", "-1", "100.01", "101", "1e2", "NaN", "inf", "4,25", " 4.25", "+4", ".5", "4.", "0x10",
     "1" * 40, "1.000000000000000000001"],
)  # fmt: skip
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_rate(text)
    assert (error.value.reason, error.value.metadata["field"]) == ("INVALID_RATE", "annual_rate")


@pytest.mark.parametrize(
    "text",
    [
        "2024-2-1",
        "2024-02-30",
        "20240201",
        "yesterday",
        "",
        "2026-W01-1",  # an ISO week date, which date.fromisoformat takes
        "\uff12\uff10\uff12\uff14-02-01",  # digits of another script (fullwidth)
        "1969-12-31",  # before the first HLC
        "9999-12-31",  # past the last day an int64 HLC can hold
    ],
)
def test_bad_days_are_refused(text: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_day(text, field="as_of")
    assert error.value.reason == "INVALID_AS_OF"


def test_every_hlc_of_the_last_day_fits_an_int64() -> None:
    last = parse_day(LAST_DAY.isoformat(), field="as_of")
    assert parse_day(FIRST_DAY.isoformat(), field="as_of") == dt.date(1970, 1, 1)
    assert day_start_hlc(last + dt.timedelta(days=1)) <= 2**63 - 1
    assert day_start_hlc(last + dt.timedelta(days=2)) > 2**63 - 1


def test_only_days_that_are_over_get_interest() -> None:
    today = dt.date(2025, 1, 1)
    check_past(dt.date(2024, 12, 31), today)
    for day in (today, dt.date(2026, 1, 1)):
        with pytest.raises(InvalidArgument) as error:
            check_past(day, today)
        assert error.value.reason == "INVALID_AS_OF"


def test_an_ops_day_is_the_utc_date_of_its_hlc() -> None:
    start = day_start_hlc(dt.date(2024, 2, 29))
    assert hlc_day(start) == dt.date(2024, 2, 29)
    assert hlc_day(start - 1) == dt.date(2024, 2, 28)
    assert hlc_day(start + (86_400_000 << LOGICAL_BITS) - 1) == dt.date(2024, 2, 29)


# The daily-balance method -----------------------------------------------------------------


def test_a_mid_period_deposit_earns_from_its_day() -> None:
    # 1000.00 for Feb 1-14, 1500.00 for Feb 15-29: 14 + 15 days of 2024.
    changes = [(FEB_1, 100_000), (dt.date(2024, 2, 15), 50_000)]
    accrual = accrue(_period(FEB_1, dt.date(2024, 2, 29)), changes, Decimal("4.25"))
    assert accrual.amount == 425  # (100000 * 14 + 150000 * 15) * 4.25 / 36500
    assert accrual.day_balance == 150_000


def test_a_leap_year_has_366_days_at_rate_over_365() -> None:
    year = _period(dt.date(2024, 1, 1), dt.date(2024, 12, 31), opening=1_000_000)
    assert accrue(year, [], Decimal(5)).amount == 50_137  # 1e6 * 0.05 * 366 / 365 = 50136.98
    common = _period(dt.date(2023, 1, 1), dt.date(2023, 12, 31), opening=1_000_000)
    assert accrue(common, [], Decimal(5)).amount == 50_000


def test_a_zero_balance_earns_nothing() -> None:
    accrual = accrue(_period(FEB_1, dt.date(2024, 3, 31)), [], Decimal(100))
    assert (accrual.amount, accrual.day_balance) == (0, 0)
    emptied = [(FEB_1, 100_000), (FEB_1, -100_000)]
    assert accrue(_period(FEB_1, dt.date(2024, 2, 29)), emptied, Decimal(7)).amount == 0


@pytest.mark.parametrize(
    ("balance", "expected"),
    [(18_250, 0), (54_750, 2), (91_250, 2), (127_750, 4), (18_251, 1), (18_249, 0)],
)
def test_rounding_is_half_even_once(balance: int, expected: int) -> None:
    # One day at 1 %: balance / 36500 minor units, so 18250 is exactly one half.
    period = _period(FEB_1, FEB_1, opening=balance)
    assert accrue(period, [], Decimal(1)).amount == expected


def test_rounding_happens_once_over_the_days_not_per_day() -> None:
    # 0.4 of a cent a day for five days: 2 cents, where rounding daily would give 0.
    period = _period(FEB_1, dt.date(2024, 2, 5), opening=14_600)
    assert accrue(period, [], Decimal(1)).amount == 2


def test_interest_is_in_the_accounts_minor_unit() -> None:
    # JPY has no minor unit, KWD three digits: the same arithmetic on their minor units.
    year = _period(dt.date(2023, 1, 1), dt.date(2023, 12, 31), opening=1_234_567)
    assert accrue(year, [], Decimal("0.1")).amount == 1_235  # 1234.567 yen -> 1235
    kwd = _period(dt.date(2023, 1, 1), dt.date(2023, 1, 1), opening=1_000_000)  # 1000.000
    assert accrue(kwd, [], Decimal("3.65")).amount == 100  # 0.100 KWD


@SETTINGS
@given(
    opening=st.integers(0, 10**12),
    days=st.integers(1, 800),
    moves=st.lists(st.tuples(st.integers(0, 799), st.integers(-(10**9), 10**9)), max_size=12),
    rate=st.decimals(0, 100, places=3, allow_nan=False),
)
def test_accrual_matches_a_day_by_day_sum(
    opening: int, days: int, moves: list[tuple[int, int]], rate: Decimal
) -> None:
    first = dt.date(2023, 11, 20)
    period = _period(first, first + dt.timedelta(days=days - 1), opening)
    changes = sorted((first + dt.timedelta(days=offset), change) for offset, change in moves)
    # Keep the balance >= 0 at every change, as every replica does.
    balance, kept = opening, []
    for when, change in changes:
        if balance + change >= 0:
            balance += change
            kept.append((when, change))
    text = str(rate)
    accrual = accrue(period, kept, Decimal(text))
    assert accrual.amount == _brute_force(period, kept, text)
    in_period = [c for when, c in kept if when <= period.through]
    assert accrual.day_balance == opening + sum(in_period)


def test_changes_before_the_period_are_refused() -> None:
    with pytest.raises(ValueError, match="before the period"):
        accrue(_period(FEB_1, dt.date(2024, 2, 9)), [(dt.date(2024, 1, 31), 5)], Decimal(1))


# Periods ---------------------------------------------------------------------------------


def test_the_first_posting_starts_on_the_opening_day() -> None:
    opened = day_start_hlc(FEB_1) + 5
    assert period_for(AccountType.SAVINGS, opened, None, dt.date(2024, 2, 9)) == Period(
        FEB_1, dt.date(2024, 2, 9), 0, None
    )
    with pytest.raises(InvalidArgument) as error:
        period_for(AccountType.SAVINGS, opened, None, dt.date(2024, 1, 31))
    assert error.value.reason == "INVALID_AS_OF"


def test_a_later_posting_starts_the_day_after_the_last() -> None:
    last = InterestPosting(dt.date(2024, 2, 29), OpId(1, 9), 425, "4.25", 150_000)
    period = period_for(AccountType.SAVINGS, 0, last, dt.date(2024, 3, 31))
    assert period == Period(dt.date(2024, 3, 1), dt.date(2024, 3, 31), 150_000, OpId(1, 9))
    assert posted_already(last, dt.date(2024, 2, 29)) is last
    assert posted_already(last, dt.date(2024, 1, 5)) is last
    assert posted_already(last, dt.date(2024, 3, 1)) is None
    assert posted_already(None, dt.date(2024, 3, 1)) is None


def test_checking_accounts_get_no_interest() -> None:
    with pytest.raises(WrongAccountType) as error:
        period_for(AccountType.CHECKING, 0, None, FEB_1)
    assert error.value.reason == "WRONG_ACCOUNT_TYPE"


# The interest op through planner, state and codec ---------------------------------------


def _savings(account_type: AccountType = AccountType.SAVINGS) -> LedgerState:
    state = LedgerState()
    hlc = day_start_hlc(FEB_1)
    originate(state, 1, "USD", OpenAccount("s", account_type, "USD", "o"), hlc)
    originate(state, 1, "USD", Deposit("s", 100_000), hlc + 1)
    return state


def _command(as_of: dt.date, accrual: Accrual | None, rate: str = "4.250") -> InterestCommand:
    return InterestCommand("s", rate, as_of, "i-1", accrual)


def test_the_planner_posts_a_fresh_accrual_once() -> None:
    state = _savings()
    feb_29 = dt.date(2024, 2, 29)
    _, body = plan(state, _command(feb_29, Accrual(None, 337, 100_000)), branch=1)
    assert body == Interest("s", 337, feb_29, "4.25", 100_000)
    op = originate(state, 1, "USD", body, day_start_hlc(dt.date(2024, 3, 1)))
    assert state.balance("s") == 100_337
    assert state.postings["s"] == InterestPosting(feb_29, op.id, 337, "4.25", 100_000)
    with pytest.raises(AlreadyPosted) as done:
        plan(state, _command(dt.date(2024, 2, 10), None), branch=1)
    assert done.value.posting == state.postings["s"]
    with pytest.raises(StaleAccrual):  # computed before that posting
        plan(state, _command(dt.date(2024, 3, 5), Accrual(None, 1, 100_000)), branch=1)
    fresh = Accrual(op.id, 50, 100_337)
    assert plan(state, _command(dt.date(2024, 3, 5), fresh), branch=1)[1].amount == 50


def test_the_planner_refuses_checking_and_overflow() -> None:
    with pytest.raises(WrongAccountType):
        plan(_savings(AccountType.CHECKING), _command(FEB_1, Accrual(None, 1, 0)), branch=1)
    with pytest.raises(StaleAccrual):
        plan(_savings(), _command(FEB_1, None), branch=1)
    with pytest.raises(InvalidArgument):
        plan(_savings(), _command(dt.date(2024, 1, 1), Accrual(None, 1, 0)), branch=1)
    too_much = Accrual(None, MAX_AMOUNT, 0)
    with pytest.raises(Exception, match="cannot hold more") as error:
        plan(_savings(), _command(FEB_1, too_much), branch=1)
    assert getattr(error.value, "reason", "") == "BALANCE_OVERFLOW"


def test_replicas_refuse_a_second_posting_of_a_day_or_interest_on_checking() -> None:
    state = _savings()
    march = day_start_hlc(dt.date(2024, 3, 1))
    originate(state, 1, "USD", Interest("s", 0, dt.date(2024, 2, 29), "0", 100_000), march)
    assert state.balance("s") == 100_000  # a posting of nothing marks the days only
    again = Interest("s", 5, dt.date(2024, 2, 29), "1", 100_000)
    with pytest.raises(InvariantViolation):
        originate(state, 1, "USD", again, march + 1)
    checking = _savings(AccountType.CHECKING)
    with pytest.raises(InvariantViolation):
        originate(checking, 1, "USD", Interest("s", 5, FEB_1, "1", 0), march)
    assert checking.postings == {}


def test_an_interest_op_round_trips_canonically() -> None:
    state = _savings()
    body = Interest("s", 425, dt.date(2024, 2, 29), "4.25", 150_000)
    op = originate(state, 1, "USD", body, day_start_hlc(dt.date(2024, 3, 1)))
    data = encode_op(op)
    assert decode_op(data) == op
    assert b'"interest","s",425,"2024-02-29","4.25",150000' in data
    # A withdrawal's body fields do not make an interest op.
    other = encode_op(originate(state, 1, "USD", Withdrawal("s", 1), op.hlc + 1))
    assert decode_op(other).body == Withdrawal("s", 1)


def test_an_interest_commands_fingerprint_is_its_account_rate_and_day() -> None:
    one = _command(FEB_1, None, "4.250")
    assert one.fingerprint == _command(FEB_1, Accrual(None, 7, 7), "4.25").fingerprint
    assert one.fingerprint != _command(FEB_1, None, "4.26").fingerprint
    assert one.fingerprint != _command(dt.date(2024, 2, 2), None).fingerprint
    with pytest.raises(InvalidArgument):
        InterestCommand("s", "abc", FEB_1, "i")

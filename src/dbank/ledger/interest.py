"""Interest on savings accounts (design §6): the rate, the days a posting covers, and the
daily-balance arithmetic, exact to the minor unit.

A posting for day D covers every day from the account's opening day, or the day after its
last posting, through D. Each day earns its end-of-day balance x rate / 365 (Actual/365
Fixed: the 366 days of a leap year earn a little more than the annual rate); the sum over
the days is rounded half-even to the minor unit once. An op's day is the UTC date of its
HLC, so an op's place among the days is the same at every replica. No float anywhere: the
rate is a ``Decimal`` and the sum a ``Fraction``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from dbank.errors import InvalidArgument, WrongAccountType, shown
from dbank.ledger.clock import FIRST_DAY, LAST_DAY, hlc_day
from dbank.ledger.ops import AccountType
from dbank.ledger.version_vector import OpId

MAX_RATE = Decimal(100)
DAYS_PER_YEAR = 365
_RATE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,20})?")


def parse_rate(text: str, *, field: str = "annual_rate") -> Decimal:
    """An annual rate in percent from an exact decimal string such as ``"4.25"``.

    Raises:
        InvalidArgument: ``INVALID_RATE`` for anything but a plain decimal in [0, 100]
            (no sign, exponent, NaN or infinity).
    """
    if not _RATE.fullmatch(text):
        raise InvalidArgument(
            f"{field} must be a decimal percentage such as '4.25', got {shown(text)}",
            reason="INVALID_RATE",
            field=field,
        )
    rate = Decimal(text)
    if rate > MAX_RATE:
        raise InvalidArgument(
            f"{field} must be between 0 and 100 percent, got {text}",
            reason="INVALID_RATE",
            field=field,
        )
    return rate


def canonical_rate(rate: Decimal) -> str:
    """One spelling per value (``"4.250"`` and ``"4.25"`` are one rate): what ops and
    request fingerprints carry."""
    return format(rate.normalize(), "f")


def parse_day(text: str, *, field: str, reason: str = "INVALID_AS_OF") -> dt.date:
    """A calendar day written ``YYYY-MM-DD``, from ``FIRST_DAY`` to ``LAST_DAY``.

    Only that spelling: ``date.fromisoformat`` also takes week dates (``2026-W01-1``)
    and, in other lengths, compact forms, which a caller would not mean.

    Raises:
        InvalidArgument: with ``reason``, for anything else.
    """
    day = None
    if _DAY.fullmatch(text):
        with contextlib.suppress(ValueError):
            day = dt.date.fromisoformat(text)
    if day is None:
        raise InvalidArgument(
            f"{field} must be a date written YYYY-MM-DD, got {shown(text)}",
            reason=reason,
            field=field,
        )
    if not FIRST_DAY <= day <= LAST_DAY:
        raise InvalidArgument(
            f"{field} must be a day from {FIRST_DAY} to {LAST_DAY}, got {text}",
            reason=reason,
            field=field,
        )
    return day


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def check_past(as_of: dt.date, today: dt.date) -> None:
    """Interest is posted only for days that are over (UTC).

    Raises:
        InvalidArgument: ``INVALID_AS_OF`` if ``as_of`` is ``today`` or later.
    """
    if as_of >= today:
        raise InvalidArgument(
            f"as_of must be a day before today ({today.isoformat()} UTC), got {as_of.isoformat()}",
            reason="INVALID_AS_OF",
            field="as_of",
        )


@dataclass(frozen=True, slots=True)
class InterestPosting:
    """The last interest posted on an account, as every replica keeps it.

    Attributes:
        through: the last day it covers.
        op_id: the interest op.
        amount: the interest credited, minor units.
        rate: the annual rate in percent, canonical.
        day_balance: the balance at the end of ``through``, before the interest.
    """

    through: dt.date
    op_id: OpId
    amount: int
    rate: str
    day_balance: int


@dataclass(frozen=True, slots=True)
class Period:
    """The days a new posting covers, and the balance they start from.

    Attributes:
        first_day, through: the first and last day covered.
        opening_balance: the balance at the end of the day before ``first_day``.
        after: the posting this one follows (None: the account's first).
    """

    first_day: dt.date
    through: dt.date
    opening_balance: int
    after: OpId | None


def posted_already(last: InterestPosting | None, through: dt.date) -> InterestPosting | None:
    """``last`` if it covers ``through`` already: what a request for that day returns."""
    return last if last is not None and through <= last.through else None


def period_for(
    account_type: AccountType,
    opened_hlc: int,
    last: InterestPosting | None,
    through: dt.date,
) -> Period:
    """The days a posting through ``through`` covers (not ``posted_already``).

    Raises:
        WrongAccountType: the account is not a savings account.
        InvalidArgument: ``INVALID_AS_OF`` if ``through`` is before the opening day.
        ValueError: ``last`` covers ``through`` already.
    """
    if account_type is not AccountType.SAVINGS:
        raise WrongAccountType(f"interest applies to savings accounts, not {account_type.value}")
    if last is not None:
        if through <= last.through:
            raise ValueError(f"interest is posted through {last.through} already")
        return Period(last.through + dt.timedelta(days=1), through, last.day_balance, last.op_id)
    opened = hlc_day(opened_hlc)
    if through < opened:
        raise InvalidArgument(
            f"the account was opened on {opened.isoformat()}; as_of cannot be earlier",
            reason="INVALID_AS_OF",
            field="as_of",
        )
    return Period(opened, through, 0, None)


@dataclass(frozen=True, slots=True)
class Accrual:
    """What a posting credits: computed by the owner branch, checked by the planner.

    Attributes:
        after: the posting it follows (None: the first); the planner refuses it if the
            account's last posting has changed since.
        amount: the interest, minor units, rounded half-even once.
        day_balance: the balance at the end of the period's last day.
    """

    after: OpId | None
    amount: int
    day_balance: int


def accrue(period: Period, changes: Iterable[tuple[dt.date, int]], rate: Decimal) -> Accrual:
    """The interest of ``period`` at ``rate`` percent a year.

    ``changes`` are ``(day, balance change)`` of the account's ops after the period's
    opening balance, in order; those after the period's last day are ignored.

    Raises:
        ValueError: a change dated before the period (the opening balance holds it).
    """
    balance = period.opening_balance
    weighted = 0  # sum over the days of the end-of-day balance
    day = period.first_day
    for when, change in changes:
        if when > period.through:
            break
        if when < day:
            raise ValueError(f"a change on {when} before the period or out of order")
        weighted += balance * (when - day).days
        day, balance = when, balance + change
    weighted += balance * ((period.through - day).days + 1)
    interest = Fraction(weighted) * Fraction(rate) / (100 * DAYS_PER_YEAR)
    # round() of a Fraction rounds half to even.
    return Accrual(period.after, round(interest), balance)

"""Account statements (design §6): the balance at the start of a range of days, the
entries of those days, the interest among them, and the balance at the end."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from dbank.errors import InvalidArgument
from dbank.ledger.clock import hlc_day
from dbank.ledger.history import Entry, EntryKind, change_of, entries
from dbank.ledger.ops import Op

MAX_STATEMENT_OPS = 10_000
"""The most ops a statement reads: those from its first day on, up to the present."""


@dataclass(frozen=True, slots=True)
class Statement:
    """``closing_balance == opening_balance + sum(e.change for e in entries)`` always.

    Attributes:
        first_day, last_day: the days covered (UTC), both included.
        opening_balance: the balance at the start of ``first_day``.
        entries: every history entry dated within the range, oldest first.
        interest: the interest credited within the range (part of ``entries``).
        closing_balance: the balance at the end of ``last_day`` (or now, if that is later
            than the replica's state).
    """

    account_id: str
    currency: str
    first_day: dt.date
    last_day: dt.date
    opening_balance: int
    entries: tuple[Entry, ...]
    interest: int
    closing_balance: int


def check_range(first_day: dt.date, last_day: dt.date) -> None:
    """Raises ``InvalidArgument`` (``INVALID_DATE_RANGE``) if the range is empty."""
    if first_day > last_day:
        raise InvalidArgument(
            f"from_date ({first_day.isoformat()}) must not be after to_date"
            f" ({last_day.isoformat()})",
            reason="INVALID_DATE_RANGE",
            field="to_date",
        )


def check_size(read: int) -> None:
    """Raises ``InvalidArgument`` (``RANGE_TOO_LARGE``) past ``MAX_STATEMENT_OPS``."""
    if read > MAX_STATEMENT_OPS:
        raise InvalidArgument(
            f"more than {MAX_STATEMENT_OPS} transactions from the range's first day to now;"
            " ask for a later range, or page through ListTransactions",
            reason="RANGE_TOO_LARGE",
            field="from_date",
        )


def build_statement(
    account_id: str,
    currency: str,
    first_day: dt.date,
    last_day: dt.date,
    *,
    balance_now: int,
    since_first_day: Sequence[Op],
) -> Statement:
    """The statement of ``account_id`` for ``first_day`` .. ``last_day``.

    ``since_first_day`` is the account's history from the start of ``first_day`` on, in
    order, read at the same replica state as ``balance_now``: the opening balance is what
    the balance was before them.
    """
    opening = balance_now - sum(change_of(op, account_id)[1] for op in since_first_day)
    within = [op for op in since_first_day if hlc_day(op.hlc) <= last_day]
    listed = entries(within, account_id, opening)
    interest = sum(e.change for e in listed if e.kind is EntryKind.INTEREST)
    closing = listed[-1].balance if listed else opening
    return Statement(
        account_id, currency, first_day, last_day, opening, tuple(listed), interest, closing
    )

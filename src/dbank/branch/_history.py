"""Reading an account's history from the store (design §6): pages of entries, statements,
and the interest a posting credits. The ledger does the arithmetic; this module reads.

Every read names a snapshot (a version vector this replica covers), so what it finds
depends only on that snapshot, never on ops committed while it reads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

from dbank.ledger import (
    Entry,
    InterestPosting,
    InvalidArgument,
    Op,
    PageToken,
    Statement,
    VersionVector,
)
from dbank.ledger.clock import hlc_day
from dbank.ledger.history import Position, change_of, day_position, entries, position
from dbank.ledger.interest import Accrual, Period, accrue
from dbank.ledger.statement import build_statement, check_size
from dbank.money import MAX_AMOUNT
from dbank.store import Store

READ_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; ``next_token`` is None after the last page."""

    entries: list[Entry]
    next_token: PageToken | None


class HistoryReader:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def page(
        self, account_id: str, size: int, token: PageToken | None, snapshot: VersionVector
    ) -> Page:
        """Up to ``size`` entries after ``token`` (None: from the account's opening)."""
        after, balance = (token.after, token.balance) if token else (None, 0)
        # One more than asked tells whether another page follows.
        ops = await self._store.read_account_ops(
            account_id, after=after, snapshot=snapshot, limit=size + 1
        )
        listed = entries(ops[:size], account_id, balance)
        if any(not 0 <= entry.balance <= MAX_AMOUNT for entry in listed):
            # No account's running balance leaves 0..int64: the token's balance is not one
            # its listing had.
            raise InvalidArgument(
                "page_token is not a token of this account's listing; start again without one",
                reason="INVALID_PAGE_TOKEN",
                field="page_token",
            )
        if len(ops) <= size:
            return Page(listed, None)
        last = listed[-1]
        return Page(listed, PageToken(account_id, snapshot, position(ops[size - 1]), last.balance))

    async def accrual(
        self, account_id: str, period: Period, rate: Decimal, snapshot: VersionVector
    ) -> Accrual:
        """The interest of ``period``: ``snapshot`` must hold every op of its days."""
        changes: list[tuple[dt.date, int]] = []
        async for batch in self._batches(account_id, day_position(period.first_day), snapshot):
            for op in batch:
                day = hlc_day(op.hlc)
                if day > period.through:
                    return accrue(period, changes, rate)
                changes.append((day, change_of(op, account_id)[1]))
        return accrue(period, changes, rate)

    async def statement(
        self,
        account_id: str,
        currency: str,
        days: tuple[dt.date, dt.date],
        *,
        balance_now: int,
        snapshot: VersionVector,
    ) -> Statement:
        """The statement of ``days`` (first and last, both included); ``balance_now`` is
        the account's balance at ``snapshot``.

        Raises:
            InvalidArgument: ``RANGE_TOO_LARGE``, too many ops from the first day on.
        """
        first_day, last_day = days
        since: list[Op] = []
        async for batch in self._batches(account_id, day_position(first_day), snapshot):
            since.extend(batch)
            check_size(len(since))
        return build_statement(
            account_id,
            currency,
            first_day,
            last_day,
            balance_now=balance_now,
            since_first_day=since,
        )

    async def _batches(
        self, account_id: str, after: Position, snapshot: VersionVector
    ) -> AsyncIterator[list[Op]]:
        while True:
            batch = await self._store.read_account_ops(
                account_id, after=after, snapshot=snapshot, limit=READ_BATCH
            )
            if batch:
                yield batch
            if len(batch) < READ_BATCH:
                return
            after = position(batch[-1])


@dataclass(frozen=True, slots=True)
class InterestResult:
    """A posting of interest, as the answering branch's replica holds it.

    Attributes:
        posting: the posting that covers the day asked for: made by this request, or an
            earlier one if that day was posted already.
        posted_now: whether this request made the posting (or a retry of it).
        unconfirmed: with ``wait_all``, the branches that had not applied it in time.
    """

    account_id: str
    currency: str
    posting: InterestPosting
    posted_now: bool
    session: VersionVector
    unconfirmed: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class HistoryPage:
    account_id: str
    currency: str
    entries: list[Entry]
    next_page_token: str
    """"" after the last page."""
    session: VersionVector


@dataclass(frozen=True, slots=True)
class StatementResult:
    statement: Statement
    session: VersionVector

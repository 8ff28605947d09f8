"""What the client returns: plain frozen dataclasses, never protobuf messages."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dbank.errors import DbankError
from dbank.ledger import AccountType, EntryKind, OpId


@dataclass(frozen=True, slots=True)
class Account:
    """An account as the answering branch's replica saw it. Amounts are minor units."""

    account_id: str
    type: AccountType
    currency: str
    currency_exponent: int
    owner: str
    balance: int
    withdrawable_here: int
    owner_branch: int


@dataclass(frozen=True, slots=True)
class BalanceChange:
    """The result of a deposit or a withdrawal: the balance right after it."""

    account_id: str
    balance: int
    currency: str
    op_id: OpId
    request_id: str
    unconfirmed_branches: tuple[int, ...] = ()
    """With ``WriteConcern.ALL``: branches that had not applied the write when it answered."""
    answered_by: int = 0
    """The branch whose answer this is: the one asked, or the request's first branch
    (``request_branch``) that it forwarded the request to."""


@dataclass(frozen=True, slots=True)
class TransferResult:
    """The result of a transfer: both balances right after it."""

    from_account_id: str
    from_balance: int
    to_account_id: str
    to_balance: int
    currency: str
    op_id: OpId
    request_id: str
    unconfirmed_branches: tuple[int, ...] = ()
    """With ``WriteConcern.ALL``: branches that had not applied the write when it answered."""
    answered_by: int = 0
    """The branch whose answer this is: the one asked, or the request's first branch
    (``request_branch``) that it forwarded the request to."""


@dataclass(frozen=True, slots=True)
class InterestPosted:
    """The interest posting that covers the day asked for. Amounts are minor units.

    Attributes:
        interest: what the posting credited (0 is a posting too: its days are done).
        posted_through: the last day it covers: the day asked for, or a later one if that
            was posted already.
        day_balance: the balance at the end of ``posted_through``, before the interest.
        posted_now: False if the day was posted already by another request (nothing was
            added).
    """

    account_id: str
    interest: int
    currency: str
    posted_through: dt.date
    annual_rate: str
    day_balance: int
    op_id: OpId
    posted_now: bool
    request_id: str
    unconfirmed_branches: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Transaction:
    """One entry of an account's history.

    Attributes:
        amount: the change to the balance, minor units, negative for money out.
        balance: the balance right after it.
        time: when it committed (UTC); its day is ``time.date()``.
        counterparty: the other account of a transfer, else "".
    """

    op_id: OpId
    kind: EntryKind
    amount: int
    balance: int
    time: dt.datetime
    request_id: str
    counterparty: str = ""


@dataclass(frozen=True, slots=True)
class TransactionPage:
    """A page of an account's history, oldest first; ``next_page_token`` is "" after the
    last page."""

    account_id: str
    currency: str
    transactions: tuple[Transaction, ...]
    next_page_token: str


@dataclass(frozen=True, slots=True)
class AccountStatement:
    """``closing_balance == opening_balance + sum(t.amount for t in transactions)``."""

    account_id: str
    currency: str
    from_date: dt.date
    to_date: dt.date
    opening_balance: int
    transactions: tuple[Transaction, ...]
    interest: int
    closing_balance: int


@dataclass(frozen=True, slots=True)
class DepositEntry:
    """A deposit in a batch (``BankClient.batch``); ``request_id`` None: the client makes
    one, the same for every retry of the batch."""

    account_id: str
    amount: int
    currency: str = ""
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class WithdrawEntry:
    """A withdrawal in a batch (see ``DepositEntry``)."""

    account_id: str
    amount: int
    currency: str = ""
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class TransferEntry:
    """A transfer in a batch (see ``DepositEntry``)."""

    from_account_id: str
    to_account_id: str
    amount: int
    currency: str = ""
    request_id: str | None = None


BatchEntry = DepositEntry | WithdrawEntry | TransferEntry


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """A batch's answer: for each entry in order, its result or the error it alone would
    have raised (``DbankError``); and, with ``WriteConcern.ALL``, the branches that had
    not applied the batch when it answered."""

    results: tuple[BalanceChange | TransferResult | DbankError, ...]
    unconfirmed_branches: tuple[int, ...] = ()

    @property
    def failed(self) -> dict[int, DbankError]:
        """The refused entries, by index."""
        return {i: r for i, r in enumerate(self.results) if isinstance(r, DbankError)}

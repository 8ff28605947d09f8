"""Ops: the replicated changes of the bank, as plain frozen values.

An op is created once, at its origin branch, inside the transaction that commits it, and is
then applied unchanged by every replica (``LedgerState.apply``). Amounts are ``int`` minor
units and always positive.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from dbank.ledger.version_vector import OpId, VersionVector


class AccountType(enum.Enum):
    """What an account is for; interest applies to savings accounts only."""

    CHECKING = "checking"
    SAVINGS = "savings"


@dataclass(frozen=True, slots=True)
class OpenAccount:
    """Opens an account with a zero balance (only the account's owner branch does this)."""

    account_id: str
    type: AccountType
    currency: str
    owner: str


@dataclass(frozen=True, slots=True)
class Deposit:
    """Credits ``amount`` to the account, in the origin branch's escrow share."""

    account_id: str
    amount: int


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """Debits ``amount`` from the origin branch's escrow share of the account."""

    account_id: str
    amount: int


@dataclass(frozen=True, slots=True)
class Transfer:
    """Debits the origin's share of one account and credits its share of another."""

    from_account_id: str
    to_account_id: str
    amount: int


@dataclass(frozen=True, slots=True)
class Grant:
    """Moves ``amount`` of the origin branch's escrow share of an account to another branch."""

    account_id: str
    amount: int
    to_branch: int


@dataclass(frozen=True, slots=True)
class Interest:
    """Credits a savings account's interest for every day up to ``through`` not yet posted,
    in the origin's escrow share; only the account's owner branch originates it (design §6).

    Attributes:
        amount: the interest in minor units, >= 0: a posting of nothing still marks its
            days as posted, so that no later call posts them again.
        through: the last day (UTC) the posting covers.
        rate: the annual rate in percent, as a canonical decimal string ("4.25").
        day_balance: the balance at the end of ``through``, before this interest: where
            the next posting starts.
    """

    account_id: str
    amount: int
    through: dt.date
    rate: str
    day_balance: int


@dataclass(frozen=True, slots=True)
class Genesis:
    """Opens an account with each branch's share of its opening balance already in escrow:
    the bank's first op (origin 0, seq 1, no deps), made from a scenario file before any
    branch starts and byte-identical at every branch (design §2.2).

    Attributes:
        owner_branch: the branch that owns the account id (``owner_branch``), fixed here
            because origin 0 is no branch.
        shares: ``(branch id, amount)`` pairs in branch id order, every amount > 0.
    """

    account_id: str
    type: AccountType
    currency: str
    owner: str
    owner_branch: int
    shares: tuple[tuple[int, int], ...]

    @property
    def amount(self) -> int:
        return sum(amount for _, amount in self.shares)


OpBody = OpenAccount | Deposit | Withdrawal | Transfer | Grant | Interest | Genesis


@dataclass(frozen=True, slots=True)
class Op:
    """One replicated change.

    Attributes:
        id: ``(origin, seq)``; unique in the bank.
        deps: the origin's full version vector when the op committed (``deps[origin]`` is
            ``seq - 1``): a replica applies the op only once it has applied all of these.
        hlc: the hybrid-logical-clock timestamp of the commit; HLC order extends causality.
        request_id: the client's request id that made the op ("" for none).
        currency: the ISO 4217 code of the amounts in ``body``.
        body: what changes.
        caller: who made the request, as its token names it ("" on an ``--insecure``
            bank): part of the request's idempotency key, so two callers' equal request
            ids never meet.
    """

    id: OpId
    deps: VersionVector
    hlc: int
    request_id: str
    currency: str
    body: OpBody
    caller: str = ""

    def accounts(self) -> tuple[str, ...]:
        """The ids of the accounts this op touches."""
        if isinstance(self.body, Transfer):
            return (self.body.from_account_id, self.body.to_account_id)
        return (self.body.account_id,)

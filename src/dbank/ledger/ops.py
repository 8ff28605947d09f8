"""Ops: the replicated changes of the bank, as plain frozen values.

An op is created once, at its origin branch, inside the transaction that commits it, and is
then applied unchanged by every replica (``LedgerState.apply``). Amounts are ``int`` minor
units and always positive.
"""

from __future__ import annotations

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


OpBody = OpenAccount | Deposit | Withdrawal | Transfer | Grant


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
    """

    id: OpId
    deps: VersionVector
    hlc: int
    request_id: str
    currency: str
    body: OpBody

    def accounts(self) -> tuple[str, ...]:
        """The ids of the accounts this op touches."""
        if isinstance(self.body, Transfer):
            return (self.body.from_account_id, self.body.to_account_id)
        return (self.body.account_id,)

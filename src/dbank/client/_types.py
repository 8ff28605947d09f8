"""What the client returns: plain frozen dataclasses, never protobuf messages."""

from __future__ import annotations

from dataclasses import dataclass

from dbank.ledger import AccountType, OpId


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

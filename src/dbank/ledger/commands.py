"""Commands: what a customer asks a branch to do, validated when they are made.

A command that exists is well formed (ids, amounts, currency codes); whether the bank's
state allows it is the planner's question. Each command names its idempotency key and a
fingerprint of the parameters that define it (design §3): the same key with the same
fingerprint is the same request.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from dbank.errors import InvalidArgument, shown
from dbank.ledger.interest import Accrual, canonical_rate, parse_rate
from dbank.ledger.ops import (
    AccountType,
    Deposit,
    Genesis,
    Grant,
    Interest,
    OpBody,
    OpenAccount,
    Transfer,
    Withdrawal,
)
from dbank.money import check_amount, currency

_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_REQUEST_ID_BYTES = 64

IdempotencyKey = tuple[str, str]
"""``(scope, request)``: the account the request writes first, then the request id, with
its caller in front of it when it has one (``request_key``)."""


def request_key(caller: str, request_id: str) -> str:
    """The request part of an idempotency key: the request id alone on an ``--insecure``
    bank, else the caller, a unit separator and the request id (callers' names cannot
    hold the separator, so two callers' keys never meet)."""
    return f"{caller}\x1f{request_id}" if caller else request_id


def check_id(value: str, *, field: str, reason: str = "INVALID_ACCOUNT_ID") -> str:
    """Return ``value`` if it is 1-64 characters of ``[A-Za-z0-9_.:-]``."""
    if not _ID.fullmatch(value):
        raise InvalidArgument(
            f"{field} must be 1-64 characters of [A-Za-z0-9_.:-], got {shown(value)}",
            reason=reason,
            field=field,
        )
    return value


def check_request_id(value: str) -> str:
    """Return ``value`` if it is a request id of 1-64 bytes (UTF-8)."""
    size = len(value.encode())
    if not 1 <= size <= MAX_REQUEST_ID_BYTES:
        raise InvalidArgument(
            f"request_id must be 1-{MAX_REQUEST_ID_BYTES} bytes, got {size}",
            reason="INVALID_REQUEST_ID",
            field="request_id",
        )
    return value


def check_currency_code(code: str) -> str:
    """Return ``code`` if it is empty (unspecified) or a known ISO 4217 code."""
    if code:
        currency(code)
    return code


@dataclass(frozen=True, slots=True)
class OpenAccountCommand:
    """Open an account with a zero balance. ``currency`` is a known ISO 4217 code."""

    account_id: str
    type: AccountType
    currency: str
    owner: str
    request_id: str
    caller: str = ""

    def __post_init__(self) -> None:
        check_id(self.account_id, field="account_id")
        check_id(self.owner, field="owner", reason="INVALID_OWNER")
        # Explicit here: the wire's "unspecified means USD" is resolved at the edge.
        if not self.currency:
            raise InvalidArgument(
                "currency must be an ISO 4217 code", reason="UNKNOWN_CURRENCY", field="currency"
            )
        currency(self.currency)
        check_request_id(self.request_id)

    @property
    def key(self) -> IdempotencyKey:
        return (self.account_id, request_key(self.caller, self.request_id))

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(OpenAccount(self.account_id, self.type, self.currency, self.owner))


@dataclass(frozen=True, slots=True)
class DepositCommand:
    """Credit ``amount`` minor units; ``currency`` ("" for any) must match the account's."""

    account_id: str
    amount: int
    request_id: str
    currency: str = ""
    caller: str = ""

    def __post_init__(self) -> None:
        check_id(self.account_id, field="account_id")
        check_amount(self.amount)
        check_currency_code(self.currency)
        check_request_id(self.request_id)

    @property
    def key(self) -> IdempotencyKey:
        return (self.account_id, request_key(self.caller, self.request_id))

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(Deposit(self.account_id, self.amount))


@dataclass(frozen=True, slots=True)
class WithdrawCommand:
    """Debit ``amount`` minor units, never below a zero balance."""

    account_id: str
    amount: int
    request_id: str
    currency: str = ""
    caller: str = ""

    def __post_init__(self) -> None:
        check_id(self.account_id, field="account_id")
        check_amount(self.amount)
        check_currency_code(self.currency)
        check_request_id(self.request_id)

    @property
    def key(self) -> IdempotencyKey:
        return (self.account_id, request_key(self.caller, self.request_id))

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(Withdrawal(self.account_id, self.amount))


@dataclass(frozen=True, slots=True)
class TransferCommand:
    """Move ``amount`` minor units between two distinct accounts of one currency."""

    from_account_id: str
    to_account_id: str
    amount: int
    request_id: str
    currency: str = ""
    caller: str = ""

    def __post_init__(self) -> None:
        check_id(self.from_account_id, field="from_account_id")
        check_id(self.to_account_id, field="to_account_id")
        if self.from_account_id == self.to_account_id:
            raise InvalidArgument(
                "a transfer needs two different accounts",
                reason="SAME_ACCOUNT",
                field="to_account_id",
            )
        check_amount(self.amount)
        check_currency_code(self.currency)
        check_request_id(self.request_id)

    @property
    def key(self) -> IdempotencyKey:
        return (self.from_account_id, request_key(self.caller, self.request_id))

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(Transfer(self.from_account_id, self.to_account_id, self.amount))


@dataclass(frozen=True, slots=True)
class GrantCommand:
    """Hand up to ``shortfall`` minor units of this branch's escrow share of an account to
    ``to_branch``, which is borrowing them (design §2.3). ``borrow_id`` makes it idempotent:
    one borrowing round gets at most one grant from each branch."""

    account_id: str
    to_branch: int
    shortfall: int
    borrow_id: str

    def __post_init__(self) -> None:
        check_id(self.account_id, field="account_id")
        check_amount(self.shortfall)
        check_request_id(self.borrow_id)

    @property
    def request_id(self) -> str:
        return self.borrow_id

    @property
    def caller(self) -> str:
        """Branches grant escrow to each other; no customer's request is behind it."""
        return ""

    @property
    def key(self) -> IdempotencyKey:
        # "/" never occurs in an account id, so no customer request shares this scope.
        return (f"{self.account_id}/grant", self.borrow_id)

    @property
    def fingerprint(self) -> str:
        return f"Grant|{self.account_id}|{self.to_branch}|{self.shortfall}"


@dataclass(frozen=True, slots=True)
class InterestCommand:
    """Post a savings account's interest through day ``as_of`` at ``annual_rate`` percent.

    The owner branch computes ``accrual`` (the amount, from the account's history) before
    it submits the command; the planner refuses an accrual whose starting posting is no
    longer the account's last. ``rate`` is the canonical spelling of ``annual_rate``; only
    it and ``as_of`` define the request (design §3), not the accrual.
    """

    account_id: str
    annual_rate: str
    as_of: dt.date
    request_id: str
    accrual: Accrual | None = None
    caller: str = ""

    def __post_init__(self) -> None:
        check_id(self.account_id, field="account_id")
        parse_rate(self.annual_rate)
        check_request_id(self.request_id)

    @property
    def rate(self) -> str:
        return canonical_rate(parse_rate(self.annual_rate))

    @property
    def key(self) -> IdempotencyKey:
        return (self.account_id, request_key(self.caller, self.request_id))

    @property
    def fingerprint(self) -> str:
        return _interest_fingerprint(self.account_id, self.rate, self.as_of)


Command = (
    OpenAccountCommand
    | DepositCommand
    | WithdrawCommand
    | TransferCommand
    | GrantCommand
    | InterestCommand
)


def fingerprint_of(body: OpBody) -> str:
    """The fingerprint of the request that an op of this body carries out: one definition,
    so that a branch recognises a request that another branch applied."""
    match body:
        case OpenAccount():
            return f"CreateAccount|{body.account_id}|{body.type.value}|{body.currency}|{body.owner}"
        case Deposit():
            return f"Deposit|{body.account_id}|{body.amount}"
        case Withdrawal():
            return f"Withdraw|{body.account_id}|{body.amount}"
        case Transfer():
            return f"Transfer|{body.from_account_id}|{body.to_account_id}|{body.amount}"
        case Grant():
            return f"Grant|{body.account_id}|{body.to_branch}|{body.amount}"
        case Interest():
            return _interest_fingerprint(body.account_id, body.rate, body.through)
        case Genesis():
            return f"Genesis|{body.account_id}"


def _interest_fingerprint(account_id: str, rate: str, through: dt.date) -> str:
    return f"CalculateInterest|{account_id}|{rate}|{through.isoformat()}"

"""Who may do what: the roles of callers and the one pure authorization rule (design §11).

``may`` decides from the caller and the account's owner as the replica knows it, nothing
else. A customer is refused an unknown account exactly as it is refused another customer's,
so a refusal never tells whether an account exists; ``require`` words every refusal so that
the message does not tell either.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dbank.errors import PermissionDenied


class Role(StrEnum):
    """A caller's role, as the ``role`` claim of its token names it."""

    CUSTOMER = "customer"
    TELLER = "teller"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Action(StrEnum):
    """What a call does to one account."""

    OPEN_ACCOUNT = "open_account"
    READ = "read"
    DEPOSIT = "deposit"
    WITHDRAW = "withdraw"
    TRANSFER = "transfer"
    """Checked on the source account only: money may go to any account."""
    INTEREST = "interest"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: ``subject`` is the token's ``sub``, which a customer's
    accounts name as their owner."""

    subject: str
    role: Role


_VERBS = {
    Action.OPEN_ACCOUNT: "open",
    Action.READ: "read",
    Action.DEPOSIT: "deposit to",
    Action.WITHDRAW: "withdraw from",
    Action.TRANSFER: "transfer from",
    Action.INTEREST: "pay interest on",
}

INSECURE_PRINCIPAL = Principal("anonymous", Role.ADMIN)
"""Every caller of an ``--insecure`` branch: it may do everything (development only)."""


def may(principal: Principal, action: Action, *, owner: str | None) -> bool:
    """Whether ``principal`` may do ``action`` on an account owned by ``owner``.

    Args:
        principal: the caller.
        action: what the call does; for a transfer, to its source account.
        owner: the account's owner as this replica knows it, None if it knows no such
            account; for OPEN_ACCOUNT, the owner the request names.

    Pure and total: the same arguments always give the same answer.
    """
    role = principal.role
    if role is Role.ADMIN:
        return True
    if role is Role.AUDITOR:
        return action is Action.READ
    if action is Action.INTEREST:
        return False
    if role is Role.TELLER:
        return True
    return owner is not None and owner == principal.subject


def require(principal: Principal, action: Action, *, owner: str | None) -> None:
    """Return if ``may`` allows the call, else raise PermissionDenied.

    Raises:
        PermissionDenied: reason PERMISSION_DENIED; the message depends only on the caller
            and the action, never on whether the account exists.
    """
    if not may(principal, action, owner=owner):
        raise PermissionDenied(
            f"{principal.role} {principal.subject!r} may not {_VERBS[action]} this account",
            reason="PERMISSION_DENIED",
        )

"""Who may call what: each ``dbank.v1.Bank`` method's action and the accounts it is
checked on, applied to the caller through ``dbank.security.require``.

A test walks the service descriptor and fails if a method has no entry here. The check
runs at the branch a call reaches, and again at a branch it is forwarded to (the caller's
token travels with it). A customer's rights depend on who owns the account, which this
replica knows once it covers the caller's session; an account it does not know counts as
someone else's, so a refusal never tells whether an account exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dbank.security import Action

Accounts = Callable[[Any], list[str]]
"""The account ids of a request that the action is checked on."""


@dataclass(frozen=True, slots=True)
class Rule:
    """``action`` on every account ``accounts`` names; for an opening, the owner the
    request names is the account's owner (``opens``)."""

    action: Action
    accounts: Accounts
    opens: bool = False
    pays_into: Accounts | None = None
    """The account a write pays into, which a customer need not own: answers about it
    must tell a customer no more than that it took the money."""


def _one(field: str) -> Accounts:
    return lambda request: [getattr(request, field)]


BANK_RULES: dict[str, Rule] = {
    "CreateAccount": Rule(Action.OPEN_ACCOUNT, _one("owner"), opens=True),
    "GetBalance": Rule(Action.READ, _one("account_id")),
    "GetBalances": Rule(Action.READ, lambda request: list(request.account_ids)),
    "Deposit": Rule(Action.DEPOSIT, _one("account_id")),
    "Withdraw": Rule(Action.WITHDRAW, _one("account_id")),
    # The source account only: a customer may pay into any account.
    "Transfer": Rule(Action.TRANSFER, _one("from_account_id"), pays_into=_one("to_account_id")),
    "CalculateInterest": Rule(Action.INTEREST, _one("account_id")),
    "ListTransactions": Rule(Action.READ, _one("account_id")),
    "GetStatement": Rule(Action.READ, _one("account_id")),
}

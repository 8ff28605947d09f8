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

from dbank.branch import MAX_BATCH_ENTRIES
from dbank.errors import InvalidArgument
from dbank.security import Action

Accounts = Callable[[Any], list[str]]
"""The account ids of a request that the action is checked on."""


@dataclass(frozen=True, slots=True)
class Rule:
    """``action`` on every account ``accounts`` names; for an opening, the owner the
    request names is the account's owner (``opens``)."""

    action: Action | None
    accounts: Accounts
    opens: bool = False
    pays_into: Accounts | None = None
    """The account a write pays into, which a customer need not own: answers about it
    must tell a customer no more than that it took the money."""
    parts: Callable[[Any], list[tuple[Rule, Any]]] | None = None
    """For a request made of others (a batch): each part's own rule and message, every
    one of which must be allowed (the request's own ``action`` is then None)."""


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

_ENTRY_METHODS = {"deposit": "Deposit", "withdraw": "Withdraw", "transfer": "Transfer"}
"""Each kind of batch entry (its field in ``BatchEntry``) to the method it stands for."""


def batch_parts(request: Any) -> list[tuple[Rule, Any]]:
    """A batch's entries, each with the rule of the request it is, in the request's order.

    Raises:
        InvalidArgument: no entries or more than ``MAX_BATCH_ENTRIES``
            (``BATCH_TOO_LARGE``), or an entry that is none of deposit, withdraw,
            transfer (``BATCH_ENTRY_EMPTY``): the batch's shape is refused before any
            entry is looked at, so no batch escapes its entries' rules.
    """
    entries = request.entries
    if not 1 <= len(entries) <= MAX_BATCH_ENTRIES:
        raise InvalidArgument(
            f"a batch holds 1-{MAX_BATCH_ENTRIES} entries, not {len(entries)}",
            reason="BATCH_TOO_LARGE",
            field="entries",
            max_entries=str(MAX_BATCH_ENTRIES),
        )
    parts = []
    for index, entry in enumerate(entries):
        kind = entry.WhichOneof("entry")
        if kind is None:
            raise InvalidArgument(
                f"entry {index} is none of deposit, withdraw, transfer",
                reason="BATCH_ENTRY_EMPTY",
                field=f"entries[{index}]",
            )
        parts.append((BANK_RULES[_ENTRY_METHODS[kind]], getattr(entry, kind)))
    return parts


# A batch is allowed only if every entry alone would be: one entry that is not refuses it
# whole, nothing applied.
BANK_RULES["Batch"] = Rule(None, lambda request: [], parts=batch_parts)

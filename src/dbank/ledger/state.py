"""The replicated state of the bank: accounts, the escrow share and the net credit of
every branch.

For every account ``a`` and branch ``b`` a replica keeps ``rights[a, b]``, the part of
``a``'s balance that ``b`` may spend, and ``credits[a, b]``, what the ops of ``b`` have
added to ``a``'s balance net of what they took out; ``balance(a)`` is the sum of either;
and for every savings account its last interest posting. ``apply`` is the only way the
state changes, and it refuses (``InvariantViolation``) any op that would take a share
below zero or past 2^63 - 1, post interest for a day posted already, or that arrives out
of causal order, before changing anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TypeVar

from dbank.errors import AccountNotFound, InvariantViolation
from dbank.ledger._layer import Layer
from dbank.ledger.interest import InterestPosting
from dbank.ledger.ops import (
    AccountType,
    Deposit,
    Genesis,
    Grant,
    Interest,
    Op,
    OpenAccount,
    Transfer,
    Withdrawal,
)
from dbank.ledger.version_vector import OpId, VersionVector
from dbank.money import MAX_AMOUNT

K = TypeVar("K")
V = TypeVar("V")

GENESIS_ORIGIN = 0
"""The origin of the genesis op: no branch (branch ids are positive)."""
GENESIS_ID = OpId(GENESIS_ORIGIN, 1)

RightsKey = tuple[str, int]
"""``(account_id, branch_id)``."""
Change = tuple[RightsKey, int]


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """The fixed attributes of an account, set by the op that opened it."""

    account_id: str
    type: AccountType
    currency: str
    owner: str
    owner_branch: int
    opened_hlc: int


@dataclass(frozen=True, slots=True)
class StateDelta:
    """What a set of applied ops changed: new values only, keyed like the state."""

    accounts: Mapping[str, AccountRecord]
    rights: Mapping[RightsKey, int]
    applied: Mapping[int, int]
    postings: Mapping[str, InterestPosting] = field(default_factory=dict)
    """Each account's last interest posting, where a posting replaced it."""
    credits: Mapping[RightsKey, int] = field(default_factory=dict)
    """Each changed net credit (``LedgerState.credits``)."""


class LedgerState:
    """One replica's state. Not thread-safe: one writer owns it.

    ``overlay()`` gives a child state whose changes stay apart until ``absorb``: the writer
    plans and applies a batch there, and readers keep seeing only committed state.
    """

    def __init__(
        self,
        accounts: MutableMapping[str, AccountRecord] | None = None,
        rights: MutableMapping[RightsKey, int] | None = None,
        applied: MutableMapping[int, int] | None = None,
        balances: MutableMapping[str, int] | None = None,
        postings: MutableMapping[str, InterestPosting] | None = None,
        credits: MutableMapping[RightsKey, int] | None = None,
    ) -> None:
        self.accounts: MutableMapping[str, AccountRecord] = accounts if accounts is not None else {}
        self.rights: MutableMapping[RightsKey, int] = rights if rights is not None else {}
        self.applied: MutableMapping[int, int] = applied if applied is not None else {}
        # The last interest posting of each account that has one.
        self.postings: MutableMapping[str, InterestPosting] = (
            postings if postings is not None else {}
        )
        # What each branch's own ops have added to each account, net (``credit_changes``):
        # the origin bounds it by its credit limit (design §2.1), as rights bound its debits.
        self.credits: MutableMapping[RightsKey, int] = credits if credits is not None else {}
        if balances is None:
            balances = {}
            for (account_id, _), amount in self.rights.items():
                balances[account_id] = balances.get(account_id, 0) + amount
        # The sum of an account's rights, kept so that a balance read is O(1).
        self.balances: MutableMapping[str, int] = balances

    # Reads ---------------------------------------------------------------------------

    def account(self, account_id: str) -> AccountRecord:
        """The account's record; raises ``AccountNotFound`` if this replica has none."""
        record = self.accounts.get(account_id)
        if record is None:
            raise AccountNotFound(f"no account {account_id!r}", account_id=account_id)
        return record

    def balance(self, account_id: str) -> int:
        return self.balances.get(account_id, 0)

    def rights_of(self, account_id: str, branch: int) -> int:
        return self.rights.get((account_id, branch), 0)

    def credit_of(self, account_id: str, branch: int) -> int:
        return self.credits.get((account_id, branch), 0)

    def version_vector(self) -> VersionVector:
        return VersionVector(self.applied)

    def has_applied(self, op: Op) -> bool:
        return self.applied.get(op.id.origin, 0) >= op.id.seq

    def is_ready(self, op: Op) -> bool:
        """True if ``op`` is the next op of its origin and its deps are all applied."""
        origin, seq = op.id.origin, op.id.seq
        if self.applied.get(origin, 0) != seq - 1 or op.deps[origin] != seq - 1:
            return False
        return all(self.applied.get(o, 0) >= s for o, s in op.deps.items())

    # Changes -------------------------------------------------------------------------

    def apply(self, op: Op) -> bool:
        """Apply ``op`` exactly once; return False if it was applied already.

        Raises:
            InvariantViolation: the op is not ready (``is_ready``) or would break an
                invariant; nothing is changed.
        """
        if self.has_applied(op):
            return False
        if not self.is_ready(op):
            raise InvariantViolation(f"op {op.id} applied before its deps {op.deps}")
        rights, credits = self._effects(op)
        for (account_id, branch), delta in rights:
            self._add_rights(account_id, branch, delta)
        for key, delta in credits:
            self.credits[key] = self.credits.get(key, 0) + delta
        body = op.body
        if isinstance(body, OpenAccount | Genesis):
            # Origin 0 is no branch: a genesis op names the owner branch itself.
            owner = body.owner_branch if isinstance(body, Genesis) else op.id.origin
            self.accounts[body.account_id] = AccountRecord(
                body.account_id, body.type, body.currency, body.owner, owner, op.hlc
            )
            self.balances.setdefault(body.account_id, 0)
        elif isinstance(body, Interest):
            self.postings[body.account_id] = InterestPosting(
                body.through, op.id, body.amount, body.rate, body.day_balance
            )
        self.applied[op.id.origin] = op.id.seq
        return True

    def _effects(self, op: Op) -> tuple[list[Change], list[Change]]:
        """The rights and the credit changes of ``op``, checked against every invariant
        first."""
        body = op.body
        match body:
            case OpenAccount():
                if body.account_id in self.accounts:
                    raise InvariantViolation(f"op {op.id} opens {body.account_id!r} again")
            case Deposit() | Withdrawal() | Transfer() | Grant():
                self._check_movement(op, body.amount)
            case Interest():
                self._check_interest(op, body)
                # A posting of no interest still marks its days as posted.
                self._check_movement(op, body.amount, least=0)
            case Genesis():
                self._check_genesis(op, body)
        credits = credit_changes(op)
        rights = credits
        if isinstance(body, Grant):
            # A grant moves escrow and changes no balance; every other op changes rights
            # exactly as it changes its branches' credits.
            rights = [
                ((body.account_id, op.id.origin), -body.amount),
                ((body.account_id, body.to_branch), body.amount),
            ]
        self._check_bounds(op, rights, credits)
        return rights, credits

    def _check_movement(self, op: Op, amount: int, least: int = 1) -> None:
        if amount < least:
            raise InvariantViolation(f"op {op.id} moves an amount below {least}")
        for account_id in op.accounts():
            record = self.accounts.get(account_id)
            if record is None or record.currency != op.currency:
                raise InvariantViolation(
                    f"op {op.id} names unknown {op.currency} account {account_id!r}"
                )

    def _check_genesis(self, op: Op, body: Genesis) -> None:
        if op.id != GENESIS_ID or op.deps:
            raise InvariantViolation(f"op {op.id} is a genesis op but not the bank's first")
        if body.account_id in self.accounts:
            raise InvariantViolation(f"op {op.id} opens {body.account_id!r} again")
        branches = [branch for branch, _ in body.shares]
        if branches != sorted(set(branches)) or any(b <= 0 or a <= 0 for b, a in body.shares):
            raise InvariantViolation(f"op {op.id} has malformed shares {body.shares}")

    def _check_interest(self, op: Op, body: Interest) -> None:
        record = self.accounts.get(body.account_id)
        if record is not None and record.type is not AccountType.SAVINGS:
            raise InvariantViolation(f"op {op.id} posts interest on a {record.type.value} account")
        last = self.postings.get(body.account_id)
        if last is not None and body.through <= last.through:
            raise InvariantViolation(f"op {op.id} posts interest through {last.through} again")
        if body.day_balance < 0:
            raise InvariantViolation(f"op {op.id} has a negative day balance")

    def _check_bounds(self, op: Op, rights: list[Change], credits: list[Change]) -> None:
        shares: dict[RightsKey, int] = {}
        balances: dict[str, int] = {}
        for key, delta in rights:
            shares[key] = shares.get(key, self.rights.get(key, 0)) + delta
            balances[key[0]] = balances.get(key[0], self.balance(key[0])) + delta
        for value in (*shares.values(), *balances.values()):
            if not 0 <= value <= MAX_AMOUNT:
                raise InvariantViolation(f"op {op.id} would take a share or balance to {value}")
        nets: dict[RightsKey, int] = {}
        for key, delta in credits:
            nets[key] = nets.get(key, self.credits.get(key, 0)) + delta
        for (account_id, branch), value in nets.items():
            # Within the credit limits a net credit never leaves [-(2^63 - 1), 2^63 - 1]:
            # the others' are at most their limits, which sum to 2^63 - 1, and balance >= 0.
            if abs(value) > MAX_AMOUNT:
                raise InvariantViolation(
                    f"op {op.id} would take branch {branch}'s net credit to {account_id!r}"
                    f" to {value}"
                )

    def _add_rights(self, account_id: str, branch: int, delta: int) -> None:
        key = (account_id, branch)
        self.rights[key] = self.rights.get(key, 0) + delta
        self.balances[account_id] = self.balances.get(account_id, 0) + delta

    # Overlays ------------------------------------------------------------------------

    def overlay(self) -> LedgerState:
        """A child state: reads fall through to this one, changes stay in the child."""
        return LedgerState(
            Layer(self.accounts),
            Layer(self.rights),
            Layer(self.applied),
            Layer(self.balances),
            Layer(self.postings),
            Layer(self.credits),
        )

    def delta(self) -> StateDelta:
        """The changes made in this overlay (only valid on a state from ``overlay()``)."""
        return StateDelta(
            _own(self.accounts),
            _own(self.rights),
            _own(self.applied),
            _own(self.postings),
            _own(self.credits),
        )

    def absorb(self, child: LedgerState) -> None:
        """Make the changes of an overlay of this state part of it."""
        self.accounts.update(_own(child.accounts))
        self.rights.update(_own(child.rights))
        self.applied.update(_own(child.applied))
        self.balances.update(_own(child.balances))
        self.postings.update(_own(child.postings))
        self.credits.update(_own(child.credits))


def credit_changes(op: Op) -> list[Change]:
    """What ``op`` adds to (or, negative, takes from) each account's balance, keyed by the
    branch whose net credit it counts in: the op's origin, or, for the genesis op, the
    branch of each share. A grant changes no balance, so no credit."""
    body, origin = op.body, op.id.origin
    match body:
        case OpenAccount() | Grant():
            return []
        case Deposit():
            return [((body.account_id, origin), body.amount)]
        case Interest():
            return [((body.account_id, origin), body.amount)] if body.amount else []
        case Withdrawal():
            return [((body.account_id, origin), -body.amount)]
        case Transfer():
            return [
                ((body.from_account_id, origin), -body.amount),
                ((body.to_account_id, origin), body.amount),
            ]
        case Genesis():
            return [((body.account_id, branch), amount) for branch, amount in body.shares]


def net_credits(ops: Iterable[Op]) -> dict[RightsKey, int]:
    """``LedgerState.credits`` after ``ops``, in any order: what a store that did not keep
    the credits yet derives from its ops when it is upgraded."""
    credits: dict[RightsKey, int] = {}
    for op in ops:
        for key, delta in credit_changes(op):
            credits[key] = credits.get(key, 0) + delta
    return credits


def _own(mapping: Mapping[K, V]) -> dict[K, V]:
    if not isinstance(mapping, Layer):
        raise TypeError("not an overlay")
    return mapping.own

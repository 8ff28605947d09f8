"""Helpers shared by the ledger's unit tests: originate ops the way the writer does, take
comparable snapshots of a state, and check the escrow invariants."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dbank.ledger import AccountType, LedgerState, Op, OpBody, OpenAccount, OpId
from dbank.money import MAX_AMOUNT


class Ticker:
    """A strictly increasing HLC stand-in."""

    def __init__(self, start: int = 1_000) -> None:
        self.last = start

    def __call__(self) -> int:
        self.last += 1
        return self.last


def make_op(state: LedgerState, branch: int, currency: str, body: OpBody, hlc: int) -> Op:
    """The op ``branch`` would originate next from ``state``, as ``Writer._decide`` does."""
    return Op(
        id=OpId(branch, state.applied.get(branch, 0) + 1),
        deps=state.version_vector(),
        hlc=hlc,
        request_id=f"req-{branch}-{hlc}",
        currency=currency,
        body=body,
    )


def originate(state: LedgerState, branch: int, currency: str, body: OpBody, hlc: int) -> Op:
    """Make the next op of ``branch`` and apply it to ``state``."""
    op = make_op(state, branch, currency, body, hlc)
    assert state.apply(op) is True
    return op


def open_account(state: LedgerState, branch: int, account_id: str, currency: str, hlc: int) -> Op:
    body = OpenAccount(account_id, AccountType.CHECKING, currency, "owner")
    return originate(state, branch, currency, body, hlc)


def snapshot(state: LedgerState) -> tuple[Any, ...]:
    """Everything observable about a state, as plain values."""
    names = set(state.accounts) | set(state.balances) | {a for a, _ in state.rights}
    return (
        dict(state.accounts),
        dict(state.rights),
        dict(state.applied),
        {a: state.balance(a) for a in sorted(names)},
        dict(state.postings),
        {key: value for key, value in state.credits.items() if value},
    )


def check_invariants(state: LedgerState, limits: Mapping[int, int] | None = None) -> None:
    """Every share and balance is within [0, 2^63 - 1], and every balance is the sum of its
    shares and the sum of its branches' net credits; with ``limits``, every branch's net
    credit is within its credit limit."""
    sums: dict[str, int] = {}
    for (account_id, branch), value in state.rights.items():
        assert 0 <= value <= MAX_AMOUNT, (account_id, branch, value)
        assert account_id in state.accounts, account_id
        sums[account_id] = sums.get(account_id, 0) + value
    credited: dict[str, int] = {}
    for (account_id, branch), value in state.credits.items():
        assert account_id in state.accounts, account_id
        if limits is not None:
            assert value <= limits[branch], (account_id, branch, value)
        credited[account_id] = credited.get(account_id, 0) + value
    for account_id in state.accounts:
        balance = state.balance(account_id)
        assert 0 <= balance <= MAX_AMOUNT, (account_id, balance)
        assert balance == sums.get(account_id, 0), (account_id, balance, sums)
        assert balance == credited.get(account_id, 0), (account_id, balance, credited)


def totals_by_currency(state: LedgerState) -> dict[str, int]:
    totals: dict[str, int] = {}
    for account_id, record in state.accounts.items():
        totals[record.currency] = totals.get(record.currency, 0) + state.balance(account_id)
    return totals


def apply_all(state: LedgerState, ops: Iterable[Op]) -> None:
    for op in ops:
        assert state.apply(op) is True

"""The checkers: each reads a whole history (and the replicas' final state) and says
whether the bank kept one promise, with every anomaly it found.

- ``no_negative``: no balance and no branch's escrow share of one was ever negative, in
  any read and in any replica at the end.
- ``read_totals``: every read of all shared accounts sums to the opening total plus some
  of the deposits and minus some of the withdrawals that may have been applied by then
  (invoked before the read answered, and not refused): money neither appears nor vanishes.
- ``sessions``: every read of a worker's own account (which only that worker touches, with
  one session, at any branch) shows every write of its own that was acknowledged before
  the read began, and none that was refused (read-your-writes); and of its writes whose
  outcome it did not know, shows every one an earlier read showed (monotonic reads).
- ``final_balances``: once every request's outcome is settled, each account at each replica
  holds exactly its opening balance plus the acknowledged writes.
- ``no_duplicates``: no request id appears twice in any account's history at any replica.
- ``acknowledged_everywhere``: every acknowledged write is in the history of its accounts
  at every replica.
- ``converged``: every replica holds the same balances and the same history.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dbank.check._history import History, Kind, Operation, Outcome, effect


@dataclass(frozen=True, slots=True)
class Replica:
    """What one branch holds at the end: each account's balance and its history as
    ``(request id, op id)`` pairs, oldest first."""

    balances: Mapping[str, int]
    entries: Mapping[str, Sequence[tuple[str, str]]]


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One broken promise: what, where in the history (an operation's index, or None for
    the final state), when (ns since the run began), and by how much (minor units, or 1
    where there is no amount), so that the worst can be told."""

    description: str
    operation: int | None
    at_ns: int | None
    size: int = 1


@dataclass(slots=True)
class Verdict:
    name: str
    checked: int = 0
    anomalies: list[Anomaly] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.anomalies

    def found(self, description: str, op: Operation | None = None, size: int = 1) -> None:
        at = None if op is None else op.completed_ns
        self.anomalies.append(Anomaly(description, None if op is None else op.index, at, size))

    def to_json(self) -> dict[str, Any]:
        first = self.anomalies[0] if self.anomalies else None
        worst = max(self.anomalies, key=lambda a: a.size) if self.anomalies else None
        return {
            "name": self.name,
            "ok": self.ok,
            "checked": self.checked,
            "anomalies": len(self.anomalies),
            "first": None if first is None else _anomaly(first),
            "worst": None if worst is None else _anomaly(worst),
        }


def _anomaly(anomaly: Anomaly) -> dict[str, Any]:
    return {
        "description": anomaly.description,
        "operation": anomaly.operation,
        "at_ns": anomaly.at_ns,
        "size": anomaly.size,
    }


def check(history: History, replicas: Mapping[int, Replica] | None) -> list[Verdict]:
    """Every checker over ``history``; those of the final state only with ``replicas``
    (the state once the faults healed and every outcome was settled)."""
    verdicts = [no_negative(history, replicas), read_totals(history), sessions(history)]
    if replicas is not None:
        verdicts += [
            final_balances(history, replicas),
            no_duplicates(replicas),
            acknowledged_everywhere(history, replicas),
            converged(replicas),
        ]
    return verdicts


def no_negative(history: History, replicas: Mapping[int, Replica] | None) -> Verdict:
    verdict = Verdict("no_negative")
    for op in _answered_reads(history):
        verdict.checked += 1
        for account, balance, share in zip(op.accounts, op.balances, op.withdrawable, strict=False):
            if balance < 0:
                verdict.found(f"branch {op.branch} read {account} at {balance}", op, -balance)
            if share < 0:
                held = f"branch {op.branch} held a share of {share} of {account}"
                verdict.found(held, op, -share)
    for branch, replica in (replicas or {}).items():
        for account, balance in replica.balances.items():
            verdict.checked += 1
            if balance < 0:
                verdict.found(f"branch {branch} ended with {account} at {balance}", size=-balance)
    return verdict


def read_totals(history: History) -> Verdict:
    verdict = Verdict("read_totals")
    shared = set(history.shared)
    opening = sum(history.opening[a] for a in history.shared)
    changes = _changes_of_total(history, shared)
    for op in _answered_reads(history):
        if set(op.accounts) != shared:
            continue
        verdict.checked += 1
        assert op.completed_ns is not None
        done = op.completed_ns
        low = opening - sum(-c for t, c in changes if c < 0 and t < done)
        high = opening + sum(c for t, c in changes if c > 0 and t < done)
        total = sum(op.balances)
        if not low <= total <= high:
            off = low - total if total < low else total - high
            verdict.found(
                f"branch {op.branch} read a total of {total}, outside [{low}, {high}]", op, off
            )
    return verdict


def _changes_of_total(history: History, shared: set[str]) -> list[tuple[int, int]]:
    """(first invocation, signed amount) of every deposit and withdrawal on a shared
    account that was not refused: the changes a total read may include."""
    changes = []
    for attempts in history.requests().values():
        first = attempts[0]
        if first.kind is Kind.TRANSFER or first.accounts[0] not in shared:
            continue
        if effect(attempts) is Outcome.FAIL:
            continue
        sign = 1 if first.kind is Kind.DEPOSIT else -1
        changes.append((first.invoked_ns, sign * first.amount))
    return changes


def sessions(history: History) -> Verdict:
    verdict = Verdict("sessions")
    mine = {account: worker for worker, account in history.private.items()}
    requests = history.requests()
    # Per worker, the sets of its unsettled writes that its last read may have shown:
    # a write a session has seen stays seen, so each read must show a superset of one.
    shown: dict[int, set[frozenset[str]] | None] = {}
    for op in _answered_reads(history):
        if len(op.accounts) != 1 or mine.get(op.accounts[0]) != op.worker:
            continue
        account = op.accounts[0]
        verdict.checked += 1
        assert op.completed_ns is not None
        known = history.opening[account]
        maybe: dict[str, int] = {}
        for request_id, attempts in requests.items():
            first = attempts[0]
            if first.worker != op.worker or first.accounts != (account,):
                continue
            if effect(attempts) is Outcome.FAIL or first.invoked_ns > op.completed_ns:
                continue
            acked = [a.completed_ns for a in attempts if a.outcome is Outcome.OK]
            change = first.amount if first.kind is Kind.DEPOSIT else -first.amount
            if any(t is not None and t < op.invoked_ns for t in acked):
                known += change
            else:
                maybe[request_id] = change
        balance = op.balances[0]
        low = known + sum(c for c in maybe.values() if c < 0)
        high = known + sum(c for c in maybe.values() if c > 0)
        if not low <= balance <= high:
            off = low - balance if balance < low else balance - high
            verdict.found(
                f"worker {op.worker} read its {account} at {balance} at branch {op.branch},"
                f" its own writes say [{low}, {high}]",
                op,
                off,
            )
            shown[op.worker] = None
            continue
        before = shown.get(op.worker, {frozenset()})
        if before is None or len(maybe) > MAX_UNSETTLED:
            shown[op.worker] = None  # too many to tell which: monotonic reads unchecked
            continue
        fits = {
            frozenset(chosen)
            for n in range(len(maybe) + 1)
            for chosen in itertools.combinations(sorted(maybe), n)
            if known + sum(maybe[r] for r in chosen) == balance
        }
        now = {s for s in fits if any(old & maybe.keys() <= s for old in before)}
        if not now:
            verdict.found(
                f"worker {op.worker} read its {account} at {balance} at branch {op.branch}:"
                " its session had seen a write this read does not show",
                op,
            )
            now = fits
        shown[op.worker] = now
    return verdict


MAX_UNSETTLED = 12
"""Past this many unsettled writes of one worker at once, which of them a read shows is
not worked out (2^n subsets), and its monotonic reads are not checked from there on."""


def final_balances(history: History, replicas: Mapping[int, Replica]) -> Verdict:
    verdict = Verdict("final_balances")
    expected = dict(history.opening)
    for request_id, attempts in history.requests().items():
        result = effect(attempts)
        if result is Outcome.INFO:
            verdict.found(f"request {request_id} was never settled", attempts[-1])
            continue
        if result is Outcome.FAIL:
            continue
        first = attempts[0]
        if first.kind is Kind.DEPOSIT:
            expected[first.accounts[0]] += first.amount
        elif first.kind is Kind.WITHDRAW:
            expected[first.accounts[0]] -= first.amount
        else:
            expected[first.accounts[0]] -= first.amount
            expected[first.accounts[1]] += first.amount
    for branch, replica in replicas.items():
        for account, balance in expected.items():
            verdict.checked += 1
            held = replica.balances.get(account)
            if held != balance:
                off = abs((held or 0) - balance)
                verdict.found(
                    f"branch {branch} holds {account} at {held}, the acknowledged writes say"
                    f" {balance}",
                    size=off,
                )
    return verdict


def no_duplicates(replicas: Mapping[int, Replica]) -> Verdict:
    verdict = Verdict("no_duplicates")
    for branch, replica in replicas.items():
        for account, entries in replica.entries.items():
            verdict.checked += len(entries)
            counts = Counter(request_id for request_id, _ in entries)
            for request_id, n in counts.items():
                if n > 1:
                    verdict.found(
                        f"branch {branch}: request {request_id} is {n} times in {account}",
                        size=n - 1,
                    )
    return verdict


def acknowledged_everywhere(history: History, replicas: Mapping[int, Replica]) -> Verdict:
    verdict = Verdict("acknowledged_everywhere")
    held = {
        branch: {account: {op_id for _, op_id in entries} for account, entries in r.entries.items()}
        for branch, r in replicas.items()
    }
    for op in history.writes():
        if op.outcome is not Outcome.OK:
            continue
        for branch, accounts in held.items():
            for account in op.accounts:
                verdict.checked += 1
                if op.op_id not in accounts.get(account, set()):
                    verdict.found(
                        f"branch {branch} lacks acknowledged {op.kind} {op.op_id} of {account}", op
                    )
    return verdict


def converged(replicas: Mapping[int, Replica]) -> Verdict:
    verdict = Verdict("converged")
    branches = sorted(replicas)
    if not branches:
        return verdict
    first = replicas[branches[0]]
    for branch in branches[1:]:
        other = replicas[branch]
        for account in sorted(set(first.balances) | set(other.balances)):
            verdict.checked += 1
            a, b = first.balances.get(account), other.balances.get(account)
            if a != b:
                verdict.found(
                    f"{account}: branch {branches[0]} holds {a}, branch {branch} holds {b}",
                    size=abs((a or 0) - (b or 0)),
                )
            ours = {op_id for _, op_id in first.entries.get(account, ())}
            theirs = {op_id for _, op_id in other.entries.get(account, ())}
            if ours != theirs:
                verdict.found(
                    f"{account}: branches {branches[0]} and {branch} differ in"
                    f" {len(ours ^ theirs)} history entries",
                    size=len(ours ^ theirs),
                )
    return verdict


def _answered_reads(history: History) -> list[Operation]:
    return [op for op in history.operations if op.kind is Kind.READ and op.outcome is Outcome.OK]

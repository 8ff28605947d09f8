"""What the SQLite store knows of its rows' digests (design §7.3): which tables carry one
and over which columns, the state their rows make, and ``verify_file``, the scan behind
``SqliteStore.verify``."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dbank.ledger import (
    AccountRecord,
    AccountType,
    InterestPosting,
    Internal,
    LedgerState,
    Op,
    OpId,
    history_accounts,
)
from dbank.ledger.codec import decode_op
from dbank.store._integrity import Verification, describe, replay, row_digest

PER_BRANCH = ("account_id", "branch", "amount")
OUTCOME = ("scope", "request_id", "data")
Row = tuple[Any, ...]
DIGESTED: dict[str, tuple[tuple[str, ...], int]] = {
    "ops": (("origin", "seq", "hlc", "data"), 2),
    "accounts": (("account_id", "type", "currency", "owner", "owner_branch", "opened_hlc"), 1),
    "rights": (PER_BRANCH, 2),
    "credits": (PER_BRANCH, 2),
    "applied": (("origin", "seq"), 1),
    "outcomes": (OUTCOME, 2),
    "postings": (("account_id", "through", "origin", "seq", "amount", "rate", "day_balance"), 1),
}
"""The tables whose rows carry a digest: their columns (the digest covers all of them, in
this order) and how many lead columns form the key that names a row."""


def row_key(table: str, row: Row) -> dict[str, object]:
    columns, keys = DIGESTED[table]
    return dict(zip(columns[:keys], row[:keys], strict=True))


def bad_row(table: str, values: Sequence[object]) -> str:
    """The problem of a row whose digest does not match, naming the row by its key."""
    name = describe(table, row_key(table, tuple(values)))
    return f"{name}: its digest does not match its contents"


def state_of(rows_of: Callable[[str], list[Row]]) -> LedgerState:
    """The ledger state of the rows ``rows_of`` gives for each state table."""
    accounts = {
        r[0]: AccountRecord(r[0], AccountType(r[1]), r[2], r[3], r[4], r[5])
        for r in rows_of("accounts")
    }
    postings = {
        r[0]: InterestPosting(dt.date.fromisoformat(r[1]), OpId(r[2], r[3]), r[4], r[5], r[6])
        for r in rows_of("postings")
    }
    return LedgerState(
        accounts,
        {(a, b): n for a, b, n in rows_of("rights")},
        {o: seq for o, seq in rows_of("applied")},
        postings=postings,
        credits={(a, b): n for a, b, n in rows_of("credits")},
    )


def history_rows(ops: Sequence[Op]) -> list[Row]:
    """The ``history`` rows of ``ops``: one per op and account whose history holds it."""
    return [
        (account_id, op.hlc, op.id.origin, op.id.seq)
        for op in ops
        for account_id in history_accounts(op)
    ]


def verify_file(db: sqlite3.Connection, path: Path, replay_ops: bool) -> Verification:
    """``Store.verify`` of the SQLite file ``path`` open as ``db``, on the store's thread
    (which it holds for the whole scan: the writer waits).

    Raises:
        sqlite3.Error: as the caller's ``_translated`` expects.
    """
    found = Verification(str(path))
    # Autocommit reads would each see the latest commit; one transaction is one state.
    db.execute("BEGIN")
    try:
        state = state_of(lambda table: _scan(db, table, found))
        counts = db.execute("SELECT origin, count(*), max(seq) FROM ops GROUP BY origin")
        found.check_vector(state.applied, {o: (n, last) for o, n, last in counts})
        if replay_ops:
            ops = _scan_ops(db, found)
            if len(ops) == found.rows.get("ops", 0):  # else the bad rows say it already
                replay(ops, state, found)
                _check_history(db, ops, found)
        else:
            _scan_digests(db, "ops", found)
        _scan_digests(db, "outcomes", found)
    finally:
        db.execute("COMMIT")
    return found


def _scan(db: sqlite3.Connection, table: str, found: Verification) -> list[Row]:
    """Every row of ``table`` whose digest matches; a problem for each other one."""
    columns = DIGESTED[table][0]
    good: list[Row] = []
    for row in db.execute(f"SELECT {', '.join(columns)}, digest FROM {table}"):
        if found.check_row(table, row_key(table, row), row[:-1], row[-1]):
            good.append(row[:-1])
    return good


def _scan_digests(db: sqlite3.Connection, table: str, found: Verification) -> None:
    """Check every row's digest without keeping the rows (the start-up check)."""
    columns = DIGESTED[table][0]
    checked = 0
    for row in db.execute(f"SELECT {', '.join(columns)}, digest FROM {table}"):
        checked += 1
        if row[-1] != row_digest(table, *row[:-1]):
            found.problem(bad_row(table, row[:-1]))
    found.count(table, checked)


def _scan_ops(db: sqlite3.Connection, found: Verification) -> list[Op]:
    """Every op whose row's digest matches, decoded, checked against its columns."""
    ops: list[Op] = []
    for origin, seq, hlc, data in _scan(db, "ops", found):
        try:
            op = decode_op(data)
        except Internal as exc:
            found.problem(f"{describe('ops', {'origin': origin, 'seq': seq})}: {exc.message}")
            continue
        if (op.id.origin, op.id.seq, op.hlc) != (origin, seq, hlc):
            found.problem(
                f"{describe('ops', {'origin': origin, 'seq': seq})}: its columns say"
                f" hlc {hlc}, its op is {op.id} at hlc {op.hlc}"
            )
        ops.append(op)
    return ops


def _check_history(db: sqlite3.Connection, ops: list[Op], found: Verification) -> None:
    expected = set(history_rows(ops))
    stored = set(db.execute("SELECT account_id, hlc, origin, seq FROM history"))
    found.count("history", len(stored))
    for account_id, hlc, origin, seq in sorted(expected ^ stored):
        what = "missing" if (account_id, hlc, origin, seq) in expected else "no such op"
        names = {"account_id": account_id, "hlc": hlc, "origin": origin, "seq": seq}
        found.problem(f"{describe('history', names)}: {what}")

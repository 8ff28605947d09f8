"""The embedded SQLite store: one file per branch, WAL, ``synchronous=FULL``.

All access goes through one thread that owns the connection, so the asyncio loop never
blocks on disk and SQLite sees a single writer. A ``Commit`` is one statement, and so one
transaction (an ``INSERT`` into the ``batch`` view, whose trigger writes every table); with
``synchronous=FULL`` it returns only once the WAL is fsynced, so a returned ``commit``
survives power loss. The writer batches many requests into one commit
(group commit), which is what makes that fsync affordable.

Schema version 2 adds ``history`` (one row per op and account whose history holds it, the
index behind ``read_account_ops``) and ``postings`` (each account's last interest
posting); version 3 adds ``credits`` (each branch's net credit to each account); version 4
adds a ``digest`` to every row of ops, state and outcomes (``_integrity``), written in the
same statement as its row and checked whenever the row is read. An older file is upgraded
when it is opened, in one transaction, from the ops it holds (its rows digested as they
are: nothing older can be checked).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from dbank.ledger import (
    IdempotencyKey,
    Op,
    Outcome,
    Unavailable,
    VersionVector,
    net_credits,
)
from dbank.ledger.codec import decode_op, decode_outcome, encode_op, encode_outcome
from dbank.store._base import Commit, Decide, Snapshot
from dbank.store._errors import StoreCorrupt
from dbank.store._integrity import Verification, row_digest, text_row_digest
from dbank.store._sqlite_rows import (
    DIGESTED,
    OUTCOME,
    PER_BRANCH,
    Row,
    bad_row,
    history_rows,
    state_of,
    verify_file,
)

T = TypeVar("T")

SCHEMA_VERSION = 4
_KEYS_PER_QUERY = 400  # two parameters each, well under SQLite's limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ops (
    origin INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    hlc INTEGER NOT NULL,
    data BLOB NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (origin, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS accounts (
    account_id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    currency TEXT NOT NULL,
    owner TEXT NOT NULL,
    owner_branch INTEGER NOT NULL,
    opened_hlc INTEGER NOT NULL,
    digest TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rights (
    account_id TEXT NOT NULL,
    branch INTEGER NOT NULL,
    amount INTEGER NOT NULL CHECK (amount >= 0),
    digest TEXT NOT NULL,
    PRIMARY KEY (account_id, branch)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS applied (
    origin INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    digest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outcomes (
    scope TEXT NOT NULL,
    request_id TEXT NOT NULL,
    data BLOB NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (scope, request_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
    account_id TEXT NOT NULL,
    hlc INTEGER NOT NULL,
    origin INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (account_id, hlc, origin, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS postings (
    account_id TEXT PRIMARY KEY,
    through TEXT NOT NULL,
    origin INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    amount INTEGER NOT NULL CHECK (amount >= 0),
    rate TEXT NOT NULL,
    day_balance INTEGER NOT NULL,
    digest TEXT NOT NULL
) WITHOUT ROWID;
-- No CHECK on the sign: a branch that spends escrow granted to it takes out more than
-- its own ops put in.
CREATE TABLE IF NOT EXISTS credits (
    account_id TEXT NOT NULL,
    branch INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (account_id, branch)
) WITHOUT ROWID;
"""
# A position before every op: HLCs, origins and seqs are never negative.
_FIRST = (-1, -1, -1)


class _Refused(Unavailable):
    """A commit broke a key or constraint (a request id that has an outcome already, for
    one); nothing of it was written."""


@contextlib.contextmanager
def _translated(action: str) -> Iterator[None]:
    """Turn SQLite's errors into dbank's, in this one place."""
    try:
        yield
    except sqlite3.Error as exc:
        raise Unavailable(f"sqlite store could not {action}: {exc}") from exc


class SqliteStore:
    """Implements ``Store`` on one SQLite file. Create with ``await SqliteStore.open(...)``."""

    def __init__(
        self, executor: ThreadPoolExecutor, connection: sqlite3.Connection, path: Path
    ) -> None:
        self._executor = executor
        self._db = connection
        self._path = path

    @classmethod
    async def open(cls, path: Path, *, branch_id: int, create: bool = True) -> SqliteStore:
        """Open the store of branch ``branch_id`` at ``path``, creating it if ``create``.

        Raises:
            Unavailable: the file cannot be opened or belongs to another branch.
            StoreCorrupt: not ``create``, and the file is missing, empty or holds no
                branch (nothing is created).
        """
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dbank-sqlite")
        loop = asyncio.get_running_loop()
        try:
            db = await loop.run_in_executor(executor, _connect, path, branch_id, create)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(executor, db, path)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def load(self) -> Snapshot:
        return await self._run(self._load)

    def _load(self) -> Snapshot:
        # Every state row is read, so every state row's digest is checked here.
        with _translated("load"):
            state = state_of(lambda table: self._checked(table))
            (last_hlc,) = self._db.execute("SELECT coalesce(max(hlc), 0) FROM ops").fetchone()
        return Snapshot(state, last_hlc)

    def _checked(self, table: str, where: str = "", params: Sequence[object] = ()) -> list[Row]:
        """The rows of ``table`` (``where`` selects some), each checked against its digest.

        Raises:
            StoreCorrupt: naming the first row whose digest does not match.
        """
        columns = DIGESTED[table][0]
        rows = self._db.execute(
            f"SELECT {', '.join(columns)}, digest FROM {table} {where}", params
        ).fetchall()
        for row in rows:
            self._check(table, row)
        return [row[:-1] for row in rows]

    def _check(self, table: str, row: Row) -> None:
        """``row``: the table's digested columns, then its digest."""
        *values, digest = row
        if digest != row_digest(table, *values):
            raise StoreCorrupt(f"{self._path}: {bad_row(table, values)}")

    async def get_outcomes(self, keys: Sequence[IdempotencyKey]) -> dict[IdempotencyKey, Outcome]:
        return await self._run(lambda: self._get_outcomes(keys))

    def _get_outcomes(self, keys: Sequence[IdempotencyKey]) -> dict[IdempotencyKey, Outcome]:
        if not keys:
            return {}
        found: dict[IdempotencyKey, Outcome] = {}
        with _translated("read request outcomes"):
            for start in range(0, len(keys), _KEYS_PER_QUERY):
                chunk = keys[start : start + _KEYS_PER_QUERY]
                # A join, not ``(scope, request_id) IN (VALUES ...)``: SQLite plans the
                # row-value IN as a scan of the whole table, the join as one primary-key
                # search per key.
                rows = self._db.execute(
                    f"WITH wanted (scope, request_id) AS (VALUES {_pairs(len(chunk))})"
                    " SELECT o.scope, o.request_id, o.data, o.digest FROM wanted w"
                    " JOIN outcomes o ON o.scope = w.scope AND o.request_id = w.request_id",
                    [part for key in chunk for part in key],
                )
                for row in rows:
                    self._check("outcomes", row)
                    scope, request_id, data, _ = row
                    found[scope, request_id] = decode_outcome(data)
        return found

    async def transact(self, keys: Sequence[IdempotencyKey], decide: Decide) -> None:
        # Almost every request id is new: decide as if none had an outcome yet and let the
        # outcomes table's primary key refuse the commit if one had (the whole statement
        # fails, nothing is written). Only then, or if a request was not decided for good
        # (a transient failure stores nothing to collide), look the outcomes up and decide
        # again. One process owns the file and its writer is the only one, so no outcome
        # can appear between that lookup and the commit. The common batch thus costs the
        # store's thread one job, and ``decide`` and the encoding run on the caller's
        # thread: Python on the store's thread would contend with the event loop for the
        # interpreter lock.
        commit = decide({})
        decided = {key for key, _ in commit.outcomes} if commit is not None else set()
        if all(key in decided for key in keys):
            if commit is None:
                return
            rows = _commit_rows(commit)
            try:
                await self._run(lambda: self._commit(rows))
                return
            except _Refused:
                pass
        commit = decide(await self.get_outcomes(keys))
        if commit is not None:
            await self.commit(commit)

    async def commit(self, commit: Commit) -> None:
        rows = _commit_rows(commit)
        await self._run(lambda: self._commit(rows))

    def _commit(self, rows: tuple[str, ...]) -> None:
        # One statement in autocommit mode: its own transaction, all of it or nothing;
        # with synchronous=FULL it returns once the WAL is fsynced.
        with _translated("commit"):
            try:
                self._db.execute(_INSERT_BATCH, rows)
            except sqlite3.IntegrityError as exc:
                raise _Refused(str(exc)) from exc

    async def catch_up(self) -> list[Op]:
        return []  # one process owns the store: nothing is committed behind its back

    async def read_ops(self, origin: int, after_seq: int, limit: int) -> list[Op]:
        return await self._run(lambda: self._read_ops(origin, after_seq, limit))

    def _read_ops(self, origin: int, after_seq: int, limit: int) -> list[Op]:
        with _translated("read ops"):
            rows = self._checked(
                "ops",
                "WHERE origin = ? AND seq > ? ORDER BY seq LIMIT ?",
                (origin, after_seq, limit),
            )
        return [decode_op(row[3]) for row in rows]

    async def read_account_ops(
        self,
        account_id: str,
        *,
        after: tuple[int, int, int] | None,
        snapshot: VersionVector,
        limit: int,
    ) -> list[Op]:
        return await self._run(lambda: self._read_account_ops(account_id, after, snapshot, limit))

    def _read_account_ops(
        self,
        account_id: str,
        after: tuple[int, int, int] | None,
        snapshot: VersionVector,
        limit: int,
    ) -> list[Op]:
        if not snapshot or limit <= 0:
            return []
        # One statement is one consistent read, even while the writer commits.
        with _translated("read an account's history"):
            rows = self._db.execute(
                f"WITH snapshot (origin, seq) AS (VALUES {_pairs(len(snapshot))})"
                " SELECT o.origin, o.seq, o.hlc, o.data, o.digest FROM history h"
                " JOIN ops o ON o.origin = h.origin AND o.seq = h.seq"
                " WHERE h.account_id = ? AND (h.hlc, h.origin, h.seq) > (?, ?, ?)"
                # A scalar subquery, not a join: the scan stays in index order, so a page
                # reads O(limit) rows (an origin outside the snapshot compares to NULL).
                " AND h.seq <= (SELECT s.seq FROM snapshot s WHERE s.origin = h.origin)"
                " ORDER BY h.hlc, h.origin, h.seq LIMIT ?",
                [
                    *(part for item in snapshot.items() for part in item),
                    account_id,
                    *(after or _FIRST),
                    limit,
                ],
            ).fetchall()
            for row in rows:
                self._check("ops", row)
        return [decode_op(row[3]) for row in rows]

    async def verify(self, *, replay: bool = False) -> Verification:
        return await self._run(lambda: self._verify(replay))

    def _verify(self, replay: bool) -> Verification:
        with _translated("verify"):
            return verify_file(self._db, self._path, replay)

    async def close(self) -> None:
        await self._run(self._db.close)
        self._executor.shutdown(wait=True)


def _connect(path: Path, branch_id: int, create: bool) -> sqlite3.Connection:
    if not create and (not path.exists() or path.stat().st_size == 0):
        state = "missing" if not path.exists() else "empty (zero bytes)"
        raise StoreCorrupt(f"{path} is {state}, but this data directory held branch {branch_id}")
    with _translated(f"open {path}"):
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are explicit BEGIN IMMEDIATE ... COMMIT.
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            if not create and not _has_table(db, "meta"):
                raise StoreCorrupt(f"{path} holds no branch, but this data directory held one")
            db.executescript(_SCHEMA)
            version = _claim(db, path, branch_id)
            if version in _UPGRADABLE:
                _add_digest_columns(db)
            db.executescript(_BATCH_VIEW)
            if _upgrade(db, version) != str(SCHEMA_VERSION):
                raise Unavailable(f"{path} has schema version {version}, expected {SCHEMA_VERSION}")
        except BaseException:
            db.close()
            raise
    return db


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return found.fetchone() is not None


def _pairs(count: int) -> str:
    """``count`` placeholders for pairs of values, for a ``VALUES`` list."""
    return ", ".join(["(?, ?)"] * count)


@dataclass(frozen=True, slots=True)
class _Part:
    """One table's rows in a commit: a column of the ``batch`` view."""

    name: str
    columns: tuple[str, ...]
    table: str = ""
    """The table the rows go to (default: ``name``)."""
    key: int = 0
    """How many leading columns form the key that an upsert updates the rest under
    (0: a plain insert, where a duplicate key fails the whole commit)."""
    blob: str = ""
    """The column stored as a blob: the codec's bytes (ASCII JSON), which cross as a JSON
    string."""
    ignore: bool = False
    """Keep the stored row when the key has one."""

    def statement(self) -> str:
        values = ", ".join(
            f"CAST(value->>{i} AS BLOB)" if column == self.blob else f"value->>{i}"
            for i, column in enumerate(self.columns)
        )
        verb = "INSERT OR IGNORE" if self.ignore else "INSERT"
        upsert = ""
        if self.key:
            keys = ", ".join(self.columns[: self.key])
            sets = ", ".join(f"{c} = excluded.{c}" for c in self.columns[self.key :])
            upsert = f" ON CONFLICT ({keys}) DO UPDATE SET {sets}"
        # ``WHERE true`` lets SQLite parse an upsert after a SELECT.
        return (
            f"{verb} INTO {self.table or self.name} ({', '.join(self.columns)})"
            f" SELECT {values} FROM json_each(NEW.{self.name}) WHERE true{upsert};"
        )


_D = "digest"
_PARTS = (
    _Part("ops", (*DIGESTED["ops"][0], _D), blob="data"),
    _Part("accounts", (*DIGESTED["accounts"][0], _D)),
    _Part("rights", (*PER_BRANCH, _D), key=2),
    _Part("credits", (*PER_BRANCH, _D), key=2),
    _Part("applied", (*DIGESTED["applied"][0], _D), key=1),
    _Part("history", ("account_id", "hlc", "origin", "seq")),
    _Part("postings", (*DIGESTED["postings"][0], _D), key=1),
    _Part("outcomes", (*OUTCOME, _D), blob="data"),
    _Part("learned", (*OUTCOME, _D), table="outcomes", blob="data", ignore=True),
)
# A commit is one INSERT into this view, whose trigger spreads the rows over the tables:
# one statement is one step of SQLite's, so the store's thread takes the interpreter lock
# back once per commit instead of once per table or row (each time a thread switch while
# the event loop is busy). In autocommit mode the statement is its own transaction.
_BATCH_VIEW = f"""
CREATE TEMP VIEW batch ({", ".join(p.name for p in _PARTS)})
    AS SELECT {", ".join("NULL" for _ in _PARTS)};
CREATE TEMP TRIGGER batch_insert INSTEAD OF INSERT ON batch BEGIN
    {" ".join(p.statement() for p in _PARTS)}
END;
"""
_INSERT_BATCH = f"INSERT INTO batch VALUES ({', '.join('?' for _ in _PARTS)})"

_Rows = Sequence[tuple[object, ...]]


def _batch(**rows: _Rows) -> tuple[str, ...]:
    """The parameters of ``_INSERT_BATCH``: each part's rows as one JSON array (a blob
    column's bytes given as their ASCII text), each row of a digested table followed by
    its digest."""
    return tuple(
        json.dumps(_signed(part.table or part.name, rows.get(part.name, ()))) for part in _PARTS
    )


def _signed(table: str, rows: _Rows) -> _Rows:
    if table not in DIGESTED:
        return rows
    # The blob columns cross as their ASCII text here: no row holds bytes.
    return [(*row, text_row_digest(table, row)) for row in rows]


def _commit_rows(commit: Commit) -> tuple[str, ...]:
    delta = commit.delta
    return _batch(
        ops=[(op.id.origin, op.id.seq, op.hlc, encode_op(op).decode()) for op in commit.ops],
        accounts=[
            (a.account_id, a.type.value, a.currency, a.owner, a.owner_branch, a.opened_hlc)
            for a in delta.accounts.values()
        ],
        rights=_per_branch_rows(delta.rights),
        credits=_per_branch_rows(delta.credits),
        applied=list(delta.applied.items()),
        history=history_rows(commit.ops),
        postings=[
            (a, p.through.isoformat(), p.op_id.origin, p.op_id.seq, p.amount, p.rate, p.day_balance)
            for a, p in delta.postings.items()
        ],
        outcomes=_outcome_rows(commit.outcomes),
        learned=_outcome_rows(commit.learned),
    )


def _outcome_rows(outcomes: Sequence[tuple[IdempotencyKey, Outcome]]) -> _Rows:
    return [(scope, rid, encode_outcome(o).decode()) for (scope, rid), o in outcomes]


def _per_branch_rows(amounts: Mapping[tuple[str, int], int]) -> _Rows:
    return [(account_id, branch, amount) for (account_id, branch), amount in amounts.items()]


_UPGRADABLE = ("1", "2", "3")


def _add_digest_columns(db: sqlite3.Connection) -> None:
    """Give the digested tables of an older file their (empty) digest column. Each
    statement is idempotent, so an upgrade that fails later leaves nothing to undo: the
    file keeps its old version, and its empty digests are filled when it is upgraded."""
    for table in DIGESTED:
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if "digest" not in columns:
            db.execute(f"ALTER TABLE {table} ADD COLUMN digest TEXT NOT NULL DEFAULT ''")


def _upgrade(db: sqlite3.Connection, version: str) -> str:
    """Bring a file of an older schema to ``SCHEMA_VERSION`` in one transaction (the new
    tables and columns exist already), deriving what the older versions did not keep from
    the ops: version 1 lacks the history index, versions 1 and 2 the net credits, versions
    1 to 3 the digests, made here of the rows as they are."""
    if version not in _UPGRADABLE:
        return version
    db.execute("BEGIN IMMEDIATE")
    try:
        if version in ("1", "2"):
            ops = [decode_op(row[0]) for row in db.execute("SELECT data FROM ops")]
            history = history_rows(ops) if version == "1" else ()
            db.execute(
                _INSERT_BATCH, _batch(credits=_per_branch_rows(net_credits(ops)), history=history)
            )
        for table, (columns, keys) in DIGESTED.items():
            names = ", ".join(columns)
            where = " AND ".join(f"{c} = ?" for c in columns[:keys])
            rows = db.execute(f"SELECT {names} FROM {table} WHERE digest = ''").fetchall()
            db.executemany(
                f"UPDATE {table} SET digest = ? WHERE {where}",
                ((row_digest(table, *row), *row[:keys]) for row in rows),
            )
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return str(SCHEMA_VERSION)


def _claim(db: sqlite3.Connection, path: Path, branch_id: int) -> str:
    """Mark a new file as branch ``branch_id``'s; refuse a file of another branch. Returns
    the file's schema version."""
    db.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('branch_id', ?), ('schema', ?)",
        (str(branch_id), str(SCHEMA_VERSION)),
    )
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    if meta["branch_id"] != str(branch_id):
        raise Unavailable(
            f"{path} holds branch {meta['branch_id']}'s data, not branch {branch_id}'s"
        )
    return str(meta["schema"])

"""What keeps a store from lying: a digest per stored row, and the checks that use it.

Every row a store keeps (an op, a state entry, a request's outcome) is written together
with ``row_digest`` of its table and its values, in the same atomic commit. A read checks
the digest of each row it returns; ``Store.verify`` checks every row, the version vector
against the ops (each origin's ops are ``1..applied[origin]``, none missing), and with
``replay`` decodes every op and compares the state the ops produce with the stored one.
A difference is reported naming the row; a read that meets one raises ``StoreCorrupt``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import blake2b as _blake2b
from typing import Any

from dbank.ledger import InvariantViolation, LedgerState, Op

MAX_PROBLEMS = 100
"""How many bad rows a verification lists; the count of rows checked goes on."""


def row_digest(table: str, *values: object) -> str:
    """The digest of one stored row: BLAKE2b-128 over the table's name and each value
    (bytes as they are, anything else as its ``str``), joined by the unit separator.

    A value may contain the separator (a request id can), so two different rows could in
    principle join alike; but a changed, lost or added byte always changes the joined
    input, and that is what the digest is for: a check that what is read is what was
    written, not a defence against someone who can write the store. (Length prefixes would
    rule the collision out at twice the cost, which the start-up check pays per row.)
    """
    joined = b"\x1f".join(
        [value if value.__class__ is bytes else str(value).encode() for value in (table, *values)]
    )
    return _blake2b(joined, digest_size=16).hexdigest()


def text_row_digest(table: str, row: tuple[object, ...]) -> str:
    """``row_digest(table, *row)`` for a row without bytes values, a quarter cheaper: what
    a commit computes for every row it writes, on the event loop's thread."""
    return _blake2b("\x1f".join([table, *map(str, row)]).encode(), digest_size=16).hexdigest()


def describe(table: str, key: Mapping[str, object]) -> str:
    """``table row k=v, k=v``: how a problem names its row."""
    return f"{table} row " + ", ".join(f"{name}={value!r}" for name, value in key.items())


@dataclass(slots=True)
class Verification:
    """What ``Store.verify`` checked and what it found.

    Attributes:
        store: the store checked, as a person names it (a file, a Redis key prefix).
        rows: rows checked, per table.
        replayed: ops decoded and applied to a fresh state (0 without ``replay``).
        problems: one line per bad row (at most ``MAX_PROBLEMS``), each naming the row.
        more: problems found beyond those listed.
    """

    store: str
    rows: dict[str, int] = field(default_factory=dict)
    replayed: int = 0
    problems: list[str] = field(default_factory=list)
    more: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def count(self, table: str, rows: int = 1) -> None:
        self.rows[table] = self.rows.get(table, 0) + rows

    def problem(self, line: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(line)
        else:
            self.more += 1

    def check_row(
        self, table: str, key: Mapping[str, object], values: Sequence[object], digest: object
    ) -> bool:
        """Count one row and record a problem unless ``digest`` is its digest."""
        self.count(table)
        if digest == row_digest(table, *values):
            return True
        self.problem(f"{describe(table, key)}: its digest does not match its contents")
        return False

    def check_vector(self, applied: Mapping[int, int], ops: Mapping[int, tuple[int, int]]) -> None:
        """Each origin's stored ops are seqs 1..applied[origin]: ``ops`` maps an origin to
        (how many ops it has, its largest seq)."""
        for origin in sorted({*applied, *ops}):
            seq = applied.get(origin, 0)
            count, last = ops.get(origin, (0, 0))
            if count != seq or last != seq:
                self.problem(
                    f"applied row origin={origin}: the version vector says {seq} ops,"
                    f" the ops table holds {count} (last seq {last})"
                )

    def summary(self) -> str:
        """One line for the start-up refusal: the first problem, and how many more."""
        if self.ok:
            return f"{self.store}: ok"
        others = len(self.problems) - 1 + self.more
        tail = f" (and {others} more)" if others else ""
        return f"{self.store}: {self.problems[0]}{tail}"


def replay(ops: Iterable[Op], stored: LedgerState, found: Verification) -> None:
    """Apply ``ops`` to a fresh state in causal order and record every entry where the
    result differs from ``stored``. The caller passes every stored op: with some left out
    (rows that failed their digest) the comparison would only repeat those problems."""
    pending = sorted(ops, key=lambda op: (op.hlc, op.id.origin, op.id.seq))
    state = LedgerState()
    while pending:
        waiting: list[Op] = []
        for op in pending:
            if state.is_ready(op):
                try:
                    state.apply(op)
                except InvariantViolation as exc:
                    found.problem(f"ops row origin={op.id.origin}, seq={op.id.seq}: {exc.message}")
                    return
                found.replayed += 1
            else:
                waiting.append(op)
        if len(waiting) == len(pending):
            op = waiting[0]
            found.problem(
                f"ops row origin={op.id.origin}, seq={op.id.seq}: its deps {op.deps} are not"
                " among the stored ops"
            )
            return
        pending = waiting
    _compare("accounts", dict(state.accounts), dict(stored.accounts), found)
    _compare("rights", _nonzero(state.rights), _nonzero(stored.rights), found)
    _compare("credits", _nonzero(state.credits), _nonzero(stored.credits), found)
    _compare("applied", dict(state.applied), dict(stored.applied), found)
    _compare("postings", dict(state.postings), dict(stored.postings), found)


def _nonzero(amounts: Mapping[tuple[str, int], int]) -> dict[tuple[str, int], int]:
    return {key: amount for key, amount in amounts.items() if amount}


_KEY_NAMES = {
    "accounts": ("account_id",),
    "rights": ("account_id", "branch"),
    "credits": ("account_id", "branch"),
    "applied": ("origin",),
    "postings": ("account_id",),
}


def _compare(
    table: str, replayed: Mapping[Any, object], stored: Mapping[Any, object], found: Verification
) -> None:
    for key in sorted({*replayed, *stored}, key=repr):
        if replayed.get(key) != stored.get(key):
            parts = key if isinstance(key, tuple) else (key,)
            names = dict(zip(_KEY_NAMES[table], parts, strict=True))
            found.problem(
                f"{describe(table, names)}: stored {_shown(stored, key)}, the ops give"
                f" {_shown(replayed, key)}"
            )


def _shown(entries: Mapping[Any, object], key: object) -> str:
    return repr(entries[key]) if key in entries else "no row"

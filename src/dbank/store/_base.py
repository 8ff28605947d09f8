"""The storage interface of a branch: one small protocol, implemented once per backend.

A store persists the branch's ops, the escrow state they produced, the outcome of every
request id and the version vector, and commits each batch of the writer atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from dbank.ledger import IdempotencyKey, LedgerState, Op, Outcome, StateDelta, VersionVector
from dbank.store._integrity import Verification


@dataclass(frozen=True, slots=True)
class Commit:
    """One batch of the writer: everything in it becomes durable together or not at all.

    Attributes:
        ops: the ops applied in the batch, in apply order.
        delta: the new values of every state entry the ops changed: accounts, escrow
            rights, the version vector, each account's last interest posting
            (``StateDelta.postings``) and each branch's net credit to each account
            (``StateDelta.credits``, which may be negative); ``load`` returns all of them.
        outcomes: the first definite outcome of each request decided in the batch.
        learned: the outcomes of other branches' ops applied in the batch, stored unless
            the key has one already, so that a retry sent here is recognised.
    """

    ops: Sequence[Op]
    delta: StateDelta
    outcomes: Sequence[tuple[IdempotencyKey, Outcome]]
    learned: Sequence[tuple[IdempotencyKey, Outcome]] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The committed state of a store, as a branch loads it at start."""

    state: LedgerState
    last_hlc: int


Decide = Callable[[Mapping[IdempotencyKey, Outcome]], Commit | None]
"""Given the stored outcomes of a batch's keys, return what to commit (None: nothing)."""


class Store(Protocol):
    """Where a branch keeps its durable state. Coroutines; one writer at a time."""

    async def load(self) -> Snapshot:
        """Read the whole committed state: every acknowledged commit, no partial one."""
        ...

    async def get_outcomes(self, keys: Sequence[IdempotencyKey]) -> dict[IdempotencyKey, Outcome]:
        """Return the stored outcome of each key that has one (committed state only)."""
        ...

    async def commit(self, commit: Commit) -> None:
        """Make ``commit`` durable atomically: when this returns, all of it survives a
        crash of the process or the machine; if it raises, none of it is stored.

        Raises:
            Unavailable: the store could not commit; nothing was written.
        """
        ...

    async def transact(self, keys: Sequence[IdempotencyKey], decide: Decide) -> None:
        """In one atomic, durable transaction: read the stored outcomes of ``keys``, call
        ``decide`` with them, and commit what it returns.

        The lookup happens inside the transaction, so no other writer of the same store
        can store an outcome for these keys in between. ``decide`` may run on another
        thread; it must only read state that nothing changes meanwhile. A store may call
        it more than once, each time with at least the outcomes it was given before (for
        example first with none, guessing that every key is new); each call decides
        afresh, and only what the last call returned is committed. When this returns,
        the commit is durable; if it raises (or ``decide`` does), nothing was written.

        Raises:
            Unavailable: the store could not commit.
        """
        ...

    async def catch_up(self) -> list[Op]:
        """The ops that other processes serving the same branch committed to this store
        since the state this store's writer holds, in HLC order; afterwards commits are
        checked against the state after them. Stores that one process owns return []."""
        ...

    async def read_ops(self, origin: int, after_seq: int, limit: int) -> list[Op]:
        """Up to ``limit`` ops of ``origin`` with seq > ``after_seq``, in seq order."""
        ...

    async def read_account_ops(
        self,
        account_id: str,
        *,
        after: tuple[int, int, int] | None,
        snapshot: VersionVector,
        limit: int,
    ) -> list[Op]:
        """An account's history: up to ``limit`` committed ops that touch ``account_id``.

        An op is in an account's history if ``dbank.ledger.history_accounts(op)`` names
        the account: every op that opens it or changes its balance (deposit, withdrawal,
        both sides of a transfer, interest), not grants, which only move escrow between
        branches. The ops come in ascending ``(op.hlc, op.id.origin, op.id.seq)`` order,
        each strictly after ``after`` in that order (``None``: from the first; ``after``
        need not be an op's position: ``(t, -1, -1)`` starts at the first op whose hlc is
        at least ``t``, see ``dbank.ledger.history.day_position``), and only
        ops that ``snapshot`` covers (``op.id.seq <= snapshot[op.id.origin]``; an origin
        missing from the vector counts as 0, so none of its ops is returned). Ops outside
        the snapshot are skipped, not counted against ``limit``: fewer than ``limit`` ops
        means there are no more.

        Because the result depends only on the arguments and committed ops (never on ops
        committed later, which the snapshot leaves out), paging with ``after`` set to the
        last op's position returns every op once, however writes continue meanwhile.
        Reads committed state in one consistent read and writes nothing; a backend keeps
        an index by ``(account_id, hlc, origin, seq)``, so a page costs O(limit) reads
        plus the ops it skips.

        Raises:
            Unavailable: the store could not be read.
        """
        ...

    async def verify(self, *, replay: bool = False) -> Verification:
        """Check that the store holds what was written (design §7.3): every row of ops,
        state and outcomes against its digest, and the version vector against the ops
        (each origin's ops are exactly seqs 1 to its entry). With ``replay``, also decode
        every op, apply the ops to an empty state, and compare the result with the stored
        state (and a backend's history index with the ops). Reads one consistent state
        and writes nothing; problems are reported, not raised.

        Raises:
            Unavailable: the store could not be read.
        """
        ...

    async def close(self) -> None:
        """Release the store. Committed data stays; later calls fail."""
        ...

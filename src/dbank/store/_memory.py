"""A store in memory: the twin of the durable stores for unit tests. Nothing survives."""

from __future__ import annotations

from collections.abc import Sequence

from dbank.ledger import IdempotencyKey, LedgerState, Op, Outcome, VersionVector, history_accounts
from dbank.ledger.history import position
from dbank.store._base import Commit, Decide, Snapshot
from dbank.store._integrity import Verification
from dbank.store._integrity import replay as _replay


class MemoryStore:
    """Implements ``Store``; each commit is atomic because it runs without an await."""

    def __init__(self) -> None:
        self._state = LedgerState()
        self._ops: dict[tuple[int, int], Op] = {}
        self._outcomes: dict[IdempotencyKey, Outcome] = {}
        self._last_hlc = 0

    async def load(self) -> Snapshot:
        state = LedgerState(
            dict(self._state.accounts),
            dict(self._state.rights),
            dict(self._state.applied),
            postings=dict(self._state.postings),
            credits=dict(self._state.credits),
        )
        return Snapshot(state, self._last_hlc)

    async def get_outcomes(self, keys: Sequence[IdempotencyKey]) -> dict[IdempotencyKey, Outcome]:
        return {key: self._outcomes[key] for key in keys if key in self._outcomes}

    async def transact(self, keys: Sequence[IdempotencyKey], decide: Decide) -> None:
        commit = decide(await self.get_outcomes(keys))
        if commit is not None:
            await self.commit(commit)

    async def commit(self, commit: Commit) -> None:
        for op in commit.ops:
            if (op.id.origin, op.id.seq) in self._ops:
                raise ValueError(f"op {op.id} stored twice")
        for key, _ in commit.outcomes:
            if key in self._outcomes:
                raise ValueError(f"outcome {key} stored twice")
        for op in commit.ops:
            self._ops[op.id.origin, op.id.seq] = op
            self._last_hlc = max(self._last_hlc, op.hlc)
        self._state.accounts.update(commit.delta.accounts)
        self._state.rights.update(commit.delta.rights)
        self._state.applied.update(commit.delta.applied)
        self._state.postings.update(commit.delta.postings)
        self._state.credits.update(commit.delta.credits)
        self._outcomes.update(commit.outcomes)
        for key, outcome in commit.learned:
            self._outcomes.setdefault(key, outcome)

    async def catch_up(self) -> list[Op]:
        return []  # one process owns the store: nothing is committed behind its back

    async def read_ops(self, origin: int, after_seq: int, limit: int) -> list[Op]:
        found: list[Op] = []
        seq = after_seq + 1
        while len(found) < limit and (origin, seq) in self._ops:
            found.append(self._ops[origin, seq])
            seq += 1
        return found

    async def read_account_ops(
        self,
        account_id: str,
        *,
        after: tuple[int, int, int] | None,
        snapshot: VersionVector,
        limit: int,
    ) -> list[Op]:
        # A scan of every op: the twin is for tests, not for size.
        found = sorted(
            (
                op
                for op in self._ops.values()
                if account_id in history_accounts(op)
                and op.id.seq <= snapshot[op.id.origin]
                and (after is None or position(op) > after)
            ),
            key=position,
        )
        return found[: max(limit, 0)]

    async def verify(self, *, replay: bool = False) -> Verification:
        # Nothing can change memory behind the store's back: only the ops can disagree.
        found = Verification("memory")
        found.count("ops", len(self._ops))
        found.count("outcomes", len(self._outcomes))
        counts: dict[int, tuple[int, int]] = {}
        for origin, seq in self._ops:
            count, last = counts.get(origin, (0, 0))
            counts[origin] = (count + 1, max(last, seq))
        found.check_vector(self._state.applied, counts)
        if replay:
            _replay(list(self._ops.values()), (await self.load()).state, found)
        return found

    async def close(self) -> None:
        return None

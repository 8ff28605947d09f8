"""The Redis store: a branch's state under its own key prefix (``_redis_keys``), every
state change one Lua script (``lua/commit.lua``) that checks everything before it writes.

Durable only on a Redis with the settings of ``_redis_safety`` (an append-only file fsynced
before every reply): then a returned ``commit`` survives a crash of Redis or the machine.
``open`` refuses any other Redis unless told the risk is accepted.

Several processes may serve one branch from one Redis. Each store remembers the version
vector of the state its writer holds (set by ``load`` and ``catch_up``, advanced by its
own commits), and a commit applies only if the stored vector is still that one: every
change of the state is an op, and every op advances the vector, so an unchanged vector
means the writer decided on the stored state. Otherwise the commit raises
``StoreConflict`` and writes nothing. One process holds the replication ``lease``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator, Sequence

import redis.asyncio

from dbank.ledger import (
    AccountRecord,
    AccountType,
    IdempotencyKey,
    InterestPosting,
    LedgerState,
    Op,
    OpId,
    Outcome,
    Unavailable,
    VersionVector,
    history_accounts,
    net_credits,
)
from dbank.ledger.codec import decode_op, decode_outcome, encode_op, encode_outcome
from dbank.ledger.history import position
from dbank.store._base import Commit, Decide, Snapshot
from dbank.store._errors import StoreUnusable, UnsafeSettings
from dbank.store.redis._client import Scripts, as_bytes, connect, translated
from dbank.store.redis._keys import (
    SCHEMA_VERSION,
    UPGRADABLE_SCHEMAS,
    RedisKeys,
    branch_field,
    history_member,
    outcome_field,
    split_branch_field,
)
from dbank.store.redis._lease import RedisLease
from dbank.store.redis._notices import commit_notices
from dbank.store.redis._safety import durability_problems
from dbank.store.redis._url import RedisAddress, parse_redis_url


class RedisStore:
    """Implements ``Store`` on Redis. Create with ``await RedisStore.open(...)``."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        branch_id: int,
    ) -> None:
        self._client = client
        self._branch_id = branch_id
        self._keys = RedisKeys.of_branch(branch_id)
        self._scripts = Scripts.register(client)
        self._vector: dict[int, int] = {}
        self.lease = RedisLease(client, self._keys, self._scripts)

    @classmethod
    async def open(
        cls, address: RedisAddress | str, *, branch_id: int, unsafe: bool = False
    ) -> RedisStore:
        """Connect to the Redis at ``address`` and claim branch ``branch_id``'s keys.

        Keys of an older schema are upgraded (``UPGRADABLE_SCHEMAS``) in one script; no
        process of an older version may be serving the branch meanwhile.

        Raises:
            StoreUnusable: Redis cannot be reached, or its keys hold another schema.
            UnsafeSettings: its settings can lose acknowledged writes (unless ``unsafe``).
        """
        if isinstance(address, str):
            address = parse_redis_url(address)
        client = connect(address)
        try:
            store = cls(client, branch_id)
            await store._check(address, unsafe=unsafe)
        except BaseException:
            await client.aclose()
            raise
        return store

    async def _check(self, address: RedisAddress, *, unsafe: bool) -> None:
        try:
            with translated(f"reach {address}"):
                problems = await durability_problems(self._client)
                claimed = await self._scripts.claim(
                    keys=[self._keys.meta], args=[self._branch_id, SCHEMA_VERSION]
                )
        except Unavailable as exc:
            raise StoreUnusable(exc.message) from exc
        if problems and not unsafe:
            raise UnsafeSettings(
                f"the Redis at {address} can lose acknowledged writes: {'; '.join(problems)}."
                " A branch that loses ops it has acknowledged endangers the whole bank"
            )
        branch, schema = (value.decode() for value in claimed)
        if branch == str(self._branch_id) and schema in UPGRADABLE_SCHEMAS:
            try:
                schema = await self._upgrade(schema)
            except Unavailable as exc:
                raise StoreUnusable(exc.message) from exc
        if branch != str(self._branch_id) or schema != SCHEMA_VERSION:
            raise StoreUnusable(
                f"{address} key prefix {self._keys.prefix!r} holds branch {branch}'s data"
                f" in schema {schema}, not branch {self._branch_id}'s in {SCHEMA_VERSION}"
            )

    async def _upgrade(self, schema: str) -> str:
        """Store the net credits that keys of ``schema`` lack, derived from the branch's
        ops; return the schema the keys are in afterwards."""
        keys = self._keys
        with translated(f"upgrade keys of schema {schema}"):
            applied = await self._client.hgetall(keys.applied)
            async with self._client.pipeline(transaction=True) as pipe:
                for origin, seq in applied.items():
                    pipe.lrange(keys.ops(int(origin)), 0, int(seq) - 1)
                runs = await pipe.execute()
            ops = [decode_op(as_bytes(data)) for run in runs for data in run]
            credits = net_credits(ops).items()
            args = [
                schema,
                SCHEMA_VERSION,
                *(p for (a, b), n in credits for p in (branch_field(a, b), n)),
            ]
            upgraded = await self._scripts.upgrade(keys=[keys.meta, keys.credits], args=args)
        return as_bytes(upgraded).decode()

    # Reads ---------------------------------------------------------------------------

    async def load(self) -> Snapshot:
        keys = self._keys
        with translated("load"):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hgetall(keys.accounts)
                pipe.hgetall(keys.rights)
                pipe.hgetall(keys.applied)
                pipe.hgetall(keys.postings)
                pipe.hgetall(keys.credits)
                pipe.hget(keys.meta, "last_hlc")
                accounts, rights, applied, postings, credits, last_hlc = await pipe.execute()
        state = LedgerState(
            {k.decode(): _decode_account(k.decode(), v) for k, v in accounts.items()},
            _decode_by_branch(rights),
            {int(k): int(v) for k, v in applied.items()},
            postings={k.decode(): _decode_posting(v) for k, v in postings.items()},
            credits=_decode_by_branch(credits),
        )
        self._vector = dict(state.applied)
        return Snapshot(state, int(last_hlc or 0))

    async def catch_up(self) -> list[Op]:
        """The ops other processes committed since the state this store's writer holds,
        in HLC order (which extends causal order), from one consistent state. The writer
        must apply exactly these: later commits are checked against the state after them.
        """
        with translated("read other processes' commits"):
            applied = await self._client.hgetall(self._keys.applied)
            stored = {int(k): int(v) for k, v in applied.items()}
            behind = {o: (self._vector.get(o, 0), s) for o, s in stored.items()}
            behind = {o: span for o, span in behind.items() if span[0] < span[1]}
            async with self._client.pipeline(transaction=False) as pipe:
                for origin, (have, upto) in behind.items():
                    pipe.lrange(self._keys.ops(origin), have, upto - 1)
                runs = await pipe.execute()
        ops = [decode_op(as_bytes(data)) for run in runs for data in run]
        ops.sort(key=lambda op: (op.hlc, op.id))
        self._vector = stored
        return ops

    def commit_notices(self) -> AsyncIterator[None]:
        """Yields at once, then whenever other processes serving this branch have
        committed ops since (``_redis_notices``): each time, ``catch_up`` has them."""
        return commit_notices(self._client, self._keys.commits, self.lease.holder)

    async def get_outcomes(self, keys: Sequence[IdempotencyKey]) -> dict[IdempotencyKey, Outcome]:
        if not keys:
            return {}
        with translated("read request outcomes"):
            fields = [outcome_field(k) for k in keys]
            found = await self._client.hmget(self._keys.outcomes, fields)
        stored = zip(keys, found, strict=True)
        return {key: decode_outcome(as_bytes(data)) for key, data in stored if data is not None}

    async def read_ops(self, origin: int, after_seq: int, limit: int) -> list[Op]:
        if limit <= 0:
            return []
        with translated("read ops"):
            last = after_seq + limit - 1
            found = await self._client.lrange(self._keys.ops(origin), after_seq, last)
        return [decode_op(as_bytes(data)) for data in found]

    async def read_account_ops(
        self,
        account_id: str,
        *,
        after: tuple[int, int, int] | None,
        snapshot: VersionVector,
        limit: int,
    ) -> list[Op]:
        if limit <= 0:
            return []
        start = "" if after is None else history_member(*after)
        vector = [part for item in snapshot.items() for part in item]
        with translated("read an account's history"):
            found = await self._scripts.account_ops(
                keys=[self._keys.history(account_id)],
                args=[self._keys.prefix, start, limit, len(snapshot), *vector],
            )
        return [decode_op(as_bytes(data)) for data in found]

    # Writes --------------------------------------------------------------------------

    async def transact(self, keys: Sequence[IdempotencyKey], decide: Decide) -> None:
        # The commit script checks again that no outcome of these keys was stored since.
        commit = decide(await self.get_outcomes(keys))
        if commit is not None:
            await self.commit(commit)

    async def commit(self, commit: Commit) -> None:
        script_keys, args = self._commit_arguments(commit)
        with translated("commit"):
            await self._scripts.commit(keys=script_keys, args=args)
        self._vector.update(commit.delta.applied)

    def _commit_arguments(self, commit: Commit) -> tuple[list[str], list[str | int | bytes]]:
        keys = self._keys
        # The order lua/commit.lua expects.
        script_keys = [
            keys.meta,
            keys.accounts,
            keys.rights,
            keys.applied,
            keys.outcomes,
            keys.fence,
            keys.postings,
            keys.credits,
        ]
        token = self.lease.token
        last_hlc = max((op.hlc for op in commit.ops), default=0)
        args: list[str | int | bytes] = [
            "" if token is None else token,
            last_hlc,
            keys.commits,
            self.lease.holder,
        ]
        args += [len(self._vector), *(p for item in self._vector.items() for p in item)]
        args.append(len(commit.ops))
        for op in commit.ops:
            accounts = history_accounts(op)
            script_keys += [keys.ops(op.id.origin), *(keys.history(a) for a in accounts)]
            args += [op.id.seq, encode_op(op), len(accounts), history_member(*position(op))]
        delta = commit.delta
        args.append(len(delta.accounts))
        for account_id, record in delta.accounts.items():
            args += [account_id, _encode_account(record)]
        for by_branch in (delta.rights, delta.credits):
            args.append(len(by_branch))
            for (account_id, branch), amount in by_branch.items():
                args += [branch_field(account_id, branch), amount]
        args.append(len(delta.applied))
        for origin, seq in delta.applied.items():
            args += [origin, seq]
        args.append(len(delta.postings))
        for account_id, posting in delta.postings.items():
            args += [account_id, _encode_posting(posting)]
        for outcomes in (commit.outcomes, commit.learned):
            args.append(len(outcomes))
            for key, outcome in outcomes:
                args += [outcome_field(key), encode_outcome(outcome)]
        return script_keys, args

    async def close(self) -> None:
        # Best effort: a lease that is not released expires on its own.
        with contextlib.suppress(Unavailable):
            await self.lease.release()
        await self._client.aclose()


def _encode_account(record: AccountRecord) -> bytes:
    fields = [record.type.value, record.currency, record.owner]
    return json.dumps([*fields, record.owner_branch, record.opened_hlc]).encode()


def _encode_posting(posting: InterestPosting) -> bytes:
    op_id = posting.op_id
    fields = [posting.through.isoformat(), op_id.origin, op_id.seq, posting.amount]
    return json.dumps([*fields, posting.rate, posting.day_balance]).encode()


def _decode_posting(data: bytes) -> InterestPosting:
    through, origin, seq, amount, rate, day_balance = json.loads(data)
    day = dt.date.fromisoformat(through)
    return InterestPosting(day, OpId(origin, seq), amount, rate, day_balance)


def _decode_by_branch(fields: dict[bytes, bytes]) -> dict[tuple[str, int], int]:
    return {split_branch_field(k.decode()): int(v) for k, v in fields.items()}


def _decode_account(account_id: str, data: bytes) -> AccountRecord:
    kind, currency, owner, owner_branch, opened_hlc = json.loads(data)
    return AccountRecord(account_id, AccountType(kind), currency, owner, owner_branch, opened_hlc)

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

Every stored value carries its row's digest (``_rows``), checked on every read.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence

import redis.asyncio

from dbank.ledger import (
    IdempotencyKey,
    Op,
    Outcome,
    Unavailable,
    VersionVector,
    history_accounts,
    net_credits,
)
from dbank.ledger.codec import decode_op, decode_outcome, encode_op, encode_outcome
from dbank.ledger.history import position
from dbank.store._base import Commit, Decide, Snapshot
from dbank.store._errors import StoreCorrupt, StoreUnusable, UnsafeSettings
from dbank.store._integrity import Verification, describe
from dbank.store.redis._client import Scripts, as_bytes, connect, translated
from dbank.store.redis._keys import (
    SCHEMA_VERSION,
    UPGRADABLE_SCHEMAS,
    RedisKeys,
    branch_field,
    history_member,
    outcome_field,
)
from dbank.store.redis._lease import RedisLease
from dbank.store.redis._notices import commit_notices
from dbank.store.redis._rows import (
    encode_account,
    encode_posting,
    payload_of,
    sign,
    state_of,
)
from dbank.store.redis._safety import durability_problems
from dbank.store.redis._url import RedisAddress, parse_redis_url
from dbank.store.redis._verify import dump, verify_dump


class RedisStore:
    """Implements ``Store`` on Redis. Create with ``await RedisStore.open(...)``."""

    def __init__(self, client: redis.asyncio.Redis, branch_id: int, where: str = "redis") -> None:
        self._client = client
        self._branch_id = branch_id
        self._keys = RedisKeys.of_branch(branch_id)
        self._where = f"{where} key prefix {self._keys.prefix!r}"
        """How a report names this store."""
        self._scripts = Scripts.register(client)
        self._vector: dict[int, int] = {}
        self.lease = RedisLease(client, self._keys, self._scripts)

    @classmethod
    async def open(
        cls,
        address: RedisAddress | str,
        *,
        branch_id: int,
        unsafe: bool = False,
        create: bool = True,
    ) -> RedisStore:
        """Connect to the Redis at ``address`` and claim branch ``branch_id``'s keys (unless
        ``create`` is false: then the keys must exist already, and nothing is written to
        keys that hold no branch).

        Keys of an older schema are upgraded (``UPGRADABLE_SCHEMAS``) in one script; no
        process of an older version may be serving the branch meanwhile.

        Raises:
            StoreUnusable: Redis cannot be reached, or its keys hold another schema.
            UnsafeSettings: its settings can lose acknowledged writes (unless ``unsafe``).
            StoreCorrupt: not ``create``, and the database holds no keys of the branch.
        """
        if isinstance(address, str):
            address = parse_redis_url(address)
        client = connect(address)
        try:
            store = cls(client, branch_id, str(address))
            await store._check(address, unsafe=unsafe, create=create)
        except BaseException:
            await client.aclose()
            raise
        return store

    async def _check(self, address: RedisAddress, *, unsafe: bool, create: bool) -> None:
        try:
            with translated(f"reach {address}"):
                problems = await durability_problems(self._client)
                if create:
                    claimed = await self._scripts.claim(
                        keys=[self._keys.meta], args=[self._branch_id, SCHEMA_VERSION]
                    )
                else:
                    claimed = await self._client.hmget(self._keys.meta, ["branch_id", "schema"])
        except Unavailable as exc:
            raise StoreUnusable(exc.message) from exc
        if None in claimed:
            raise StoreCorrupt(f"{self._where}: no keys of branch {self._branch_id}")
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
        """Bring keys of ``schema`` to ``SCHEMA_VERSION``: store the net credits that
        schema 1 lacks, derived from the branch's ops, and give every value its digest
        (schema 3), made of the values as they are. Returns the schema the keys are in
        afterwards. One script writes it all, unless another process upgraded first."""
        with translated(f"upgrade keys of schema {schema}"):
            stored = await dump(self._client, self._keys)
        if schema == "1":
            ops = [decode_op(data) for run in stored.ops.values() for data in run]
            credits = net_credits(ops).items()
            stored.hashes["credits"] = {
                branch_field(a, b): str(n).encode() for (a, b), n in credits
            }
        keys: list[str] = [self._keys.meta]
        args: list[str | int | bytes] = [schema, SCHEMA_VERSION]
        for table, fields in stored.hashes.items():
            keys.append(getattr(self._keys, table))
            args += ["h", len(fields)]
            for name, value in fields.items():
                args += [name, sign(table, (name,), value)]
        for origin, run in stored.ops.items():
            keys.append(self._keys.ops(origin))
            args += ["l", len(run)]
            for index, data in enumerate(run):
                args += [index, sign("ops", (origin, index + 1), data)]
        with translated(f"upgrade keys of schema {schema}"):
            upgraded = await self._scripts.upgrade(keys=keys, args=args)
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
        state = state_of(
            {
                "accounts": self._opened("accounts", accounts),
                "rights": self._opened("rights", rights),
                "credits": self._opened("credits", credits),
                "applied": self._opened("applied", applied),
                "postings": self._opened("postings", postings),
            }
        )
        self._vector = dict(state.applied)
        return Snapshot(state, int(last_hlc or 0))

    def _opened(self, table: str, fields: Mapping[bytes | str, bytes | str]) -> dict[str, bytes]:
        """A hash's fields and their payloads, each checked against its digest."""
        opened = {}
        for field, value in fields.items():
            name = as_bytes(field).decode()
            opened[name] = payload_of(table, (name,), as_bytes(value), self._where)
        return opened

    def _ops_of(self, origin: int, first_seq: int, run: Sequence[bytes | str]) -> list[Op]:
        """The ops of one origin's list from ``first_seq`` on, each checked."""
        return [
            decode_op(payload_of("ops", (origin, first_seq + i), as_bytes(v), self._where))
            for i, v in enumerate(run)
        ]

    async def catch_up(self) -> list[Op]:
        """The ops other processes committed since the state this store's writer holds,
        in HLC order (which extends causal order), from one consistent state. The writer
        must apply exactly these: later commits are checked against the state after them.
        """
        with translated("read other processes' commits"):
            applied = await self._client.hgetall(self._keys.applied)
            stored = {int(k): int(v) for k, v in self._opened("applied", applied).items()}
            behind = {o: (self._vector.get(o, 0), s) for o, s in stored.items()}
            behind = {o: span for o, span in behind.items() if span[0] < span[1]}
            async with self._client.pipeline(transaction=False) as pipe:
                for origin, (have, upto) in behind.items():
                    pipe.lrange(self._keys.ops(origin), have, upto - 1)
                runs = await pipe.execute()
        ops = [
            op
            for (origin, (have, _)), run in zip(behind.items(), runs, strict=True)
            for op in self._ops_of(origin, have + 1, run)
        ]
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
        return {
            key: decode_outcome(payload_of("outcomes", (name,), as_bytes(data), self._where))
            for key, name, data in zip(keys, fields, found, strict=True)
            if data is not None
        }

    async def read_ops(self, origin: int, after_seq: int, limit: int) -> list[Op]:
        if limit <= 0:
            return []
        with translated("read ops"):
            last = after_seq + limit - 1
            found = await self._client.lrange(self._keys.ops(origin), after_seq, last)
        return self._ops_of(origin, after_seq + 1, found)

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
        ops = []
        for member, data in zip(found[::2], found[1::2], strict=True):
            _, origin, seq = (int(part) for part in as_bytes(member).split(b":"))
            if data is None:
                names = {"account_id": account_id, "origin": origin, "seq": seq}
                raise StoreCorrupt(f"{self._where}: {describe('history', names)}: no such op")
            ops.extend(self._ops_of(origin, seq, [data]))
        return ops

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
            data = sign("ops", (op.id.origin, op.id.seq), encode_op(op))
            args += [op.id.seq, data, len(accounts), history_member(*position(op))]
        delta = commit.delta
        args.append(len(delta.accounts))
        for account_id, record in delta.accounts.items():
            args += [account_id, sign("accounts", (account_id,), encode_account(record))]
        for table, by_branch in (("rights", delta.rights), ("credits", delta.credits)):
            args.append(len(by_branch))
            for (account_id, branch), amount in by_branch.items():
                field = branch_field(account_id, branch)
                args += [field, sign(table, (field,), amount)]
        args.append(len(delta.applied))
        for origin, seq in delta.applied.items():
            args += [origin, sign("applied", (str(origin),), seq)]
        args.append(len(delta.postings))
        for account_id, posting in delta.postings.items():
            args += [account_id, sign("postings", (account_id,), encode_posting(posting))]
        for outcomes in (commit.outcomes, commit.learned):
            args.append(len(outcomes))
            for key, outcome in outcomes:
                field = outcome_field(key)
                args += [field, sign("outcomes", (field,), encode_outcome(outcome))]
        return script_keys, args

    async def verify(self, *, replay: bool = False) -> Verification:
        with translated("verify"):
            stored = await dump(self._client, self._keys, history=replay)
        return verify_dump(stored, self._where, replay_ops=replay)

    async def close(self) -> None:
        # Best effort: a lease that is not released expires on its own.
        with contextlib.suppress(Unavailable):
            await self.lease.release()
        await self._client.aclose()

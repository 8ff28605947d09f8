"""Reading all of a branch's keys at once, and checking them (``RedisStore.verify``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis.asyncio

from dbank.ledger import Internal, Op, history_accounts
from dbank.ledger.codec import decode_op
from dbank.ledger.history import position
from dbank.store._integrity import Verification, describe, replay
from dbank.store.redis._client import as_bytes
from dbank.store.redis._keys import RedisKeys, history_member
from dbank.store.redis._rows import DIGEST_WIDTH, problem_of, state_of

HASHES = ("accounts", "rights", "credits", "applied", "postings", "outcomes")
"""The branch's hashes of rows, by their ``RedisKeys`` property."""


@dataclass(slots=True)
class Dump:
    """Every row of a branch's keys, as stored, from one consistent state."""

    hashes: dict[str, dict[str, bytes]] = field(default_factory=dict)
    ops: dict[int, list[bytes]] = field(default_factory=dict)
    history: dict[str, list[bytes]] = field(default_factory=dict)


async def dump(client: redis.asyncio.Redis, keys: RedisKeys, *, history: bool = False) -> Dump:
    """Read every hash and ops list (and with ``history`` the history sets) of a branch
    in one MULTI/EXEC: one consistent state, even while other processes commit.

    Raises:
        redis.exceptions.RedisError: as redis-py does (the caller translates).
    """
    ops_keys = [as_bytes(k).decode() async for k in client.scan_iter(match=f"{keys.prefix}ops:*")]
    history_keys: list[str] = []
    if history:
        pattern = keys.history("*")
        history_keys = [as_bytes(k).decode() async for k in client.scan_iter(match=pattern)]
    async with client.pipeline(transaction=True) as pipe:
        for table in HASHES:
            pipe.hgetall(getattr(keys, table))
        for key in ops_keys:
            pipe.lrange(key, 0, -1)
        for key in history_keys:
            pipe.zrange(key, 0, -1)
        replies = await pipe.execute()
    found = Dump()
    for table, fields in zip(HASHES, replies, strict=False):
        found.hashes[table] = {as_bytes(k).decode(): as_bytes(v) for k, v in fields.items()}
    runs = replies[len(HASHES) : len(HASHES) + len(ops_keys)]
    for key, run in zip(ops_keys, runs, strict=True):
        found.ops[int(key.rsplit(":", 1)[1])] = [as_bytes(v) for v in run]
    sets = replies[len(HASHES) + len(ops_keys) :]
    history_prefix = len(keys.history(""))
    for key, members in zip(history_keys, sets, strict=True):
        found.history[key[history_prefix:]] = [as_bytes(m) for m in members]
    return found


def verify_dump(stored: Dump, where: str, *, replay_ops: bool) -> Verification:
    """Check every value of ``stored`` against its digest and the version vector against
    the ops lists; with ``replay_ops`` also replay the ops and check the history sets."""
    found = Verification(where)
    payloads: dict[str, dict[str, bytes]] = {}
    for table, fields in stored.hashes.items():
        payloads[table] = {}
        for name, value in fields.items():
            found.count(table)
            problem = problem_of(table, (name,), value)
            if problem is None:
                payloads[table][name] = value[DIGEST_WIDTH + 1 :]
            else:
                found.problem(problem)
    ops: list[Op] = []
    for origin, run in sorted(stored.ops.items()):
        for index, value in enumerate(run):
            found.count("ops")
            problem = problem_of("ops", (origin, index + 1), value)
            if problem is not None:
                found.problem(problem)
            elif replay_ops:
                ops.extend(_decoded(origin, index + 1, value[DIGEST_WIDTH + 1 :], found))
    state = state_of(payloads)
    # An ops list's index i holds seq i + 1: its length is its last seq.
    found.check_vector(state.applied, {o: (len(run), len(run)) for o, run in stored.ops.items()})
    if replay_ops and len(ops) == found.rows.get("ops", 0):  # else the bad rows say it
        replay(ops, state, found)
        _check_history(ops, stored.history, found)
    return found


def _decoded(origin: int, seq: int, data: bytes, found: Verification) -> list[Op]:
    name = describe("ops", {"origin": origin, "seq": seq})
    try:
        op = decode_op(data)
    except Internal as exc:
        found.problem(f"{name}: {exc.message}")
        return []
    if (op.id.origin, op.id.seq) != (origin, seq):
        found.problem(f"{name}: it holds op {op.id}")
        return []
    return [op]


def _check_history(ops: list[Op], stored: dict[str, list[bytes]], found: Verification) -> None:
    expected: dict[str, set[bytes]] = {}
    for op in ops:
        member = history_member(*position(op)).encode()
        for account_id in history_accounts(op):
            expected.setdefault(account_id, set()).add(member)
    for account_id in sorted({*expected, *stored}):
        have = set(stored.get(account_id, ()))
        found.count("history", len(have))
        for member in sorted(have ^ expected.get(account_id, set())):
            what = "missing" if member in expected.get(account_id, set()) else "no such op"
            names = {"account_id": account_id, "member": member.decode()}
            found.problem(f"{describe('history', names)}: {what}")

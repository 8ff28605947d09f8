"""What the Redis store adds to the store contract: several processes on one branch's keys
(conflicts, catching up, the replication lease and its fencing), refusing a Redis that
can lose writes, and reading addresses strictly. Real redis-server processes throughout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis
from support.redis_server import RedisServer

from dbank.branch import Writer
from dbank.hosting import free_ports
from dbank.ledger import (
    AccountType,
    DepositCommand,
    GrantCommand,
    HybridLogicalClock,
    LedgerState,
    Op,
    OpenAccount,
    OpenAccountCommand,
    OpId,
    Outcome,
    TransferCommand,
    VersionVector,
)
from dbank.ledger.ops import Deposit
from dbank.store import (
    Commit,
    LeaseLost,
    MemoryStore,
    RedisAddress,
    RedisStore,
    Store,
    StoreConflict,
    StoreUnusable,
    UnsafeSettings,
    parse_redis_url,
)
from dbank.store.redis import DIGEST_WIDTH, SCHEMA_VERSION, RedisKeys

BRANCH = 1
NOTICE_DEADLINE = 10.0
"""Seconds for a commit notice to arrive (milliseconds, unless the machine is swamped)."""


@pytest.fixture
async def two(redis_url: str) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    """Two processes' stores on the same branch's keys."""
    first = await RedisStore.open(redis_url, branch_id=BRANCH)
    second = await RedisStore.open(redis_url, branch_id=BRANCH)
    yield first, second
    await first.close()
    await second.close()


def _op(origin: int, seq: int, deps: dict[int, int], body: OpenAccount | Deposit) -> Op:
    return Op(OpId(origin, seq), VersionVector(deps), seq * 10 + origin, f"r{seq}", "USD", body)


def _commit(state: LedgerState, *ops: Op, key: tuple[str, str] | None = None) -> Commit:
    overlay = state.overlay()
    for op in ops:
        overlay.apply(op)
    outcomes = [(key, Outcome("fp", ops[-1].id))] if key else []
    return Commit(list(ops), overlay.delta(), outcomes)


def _open(seq: int, account_id: str) -> Op:
    return _op(
        BRANCH, seq, {BRANCH: seq - 1}, OpenAccount(account_id, AccountType.CHECKING, "USD", "o")
    )


async def test_a_commit_decided_on_a_state_another_process_changed_writes_nothing(
    two: tuple[RedisStore, RedisStore],
) -> None:
    first, second = two
    base = (await first.load()).state
    assert (await second.load()).state.version_vector() == base.version_vector()
    await first.commit(_commit(base, _open(1, "a"), key=("a", "r1")))
    # The second process decided seq 1 too, on the state before the first one's commit.
    with pytest.raises(StoreConflict):
        await second.commit(_commit(base, _open(1, "b"), key=("b", "r1")))
    assert set((await first.load()).state.accounts) == {"a"}
    assert await first.get_outcomes([("b", "r1")]) == {}
    # Catching up hands it exactly what it missed; then its next decision commits.
    caught = await second.catch_up()
    assert caught == [_open(1, "a")]
    state = base.overlay()
    for op in caught:
        state.apply(op)
    await second.commit(_commit(state, _open(2, "b"), key=("b", "r1")))
    assert await second.catch_up() == []
    assert (await first.load()).state.version_vector() == VersionVector({BRANCH: 2})


async def test_a_process_is_told_of_the_others_commits(
    two: tuple[RedisStore, RedisStore],
) -> None:
    first, second = two
    base = (await first.load()).state
    await second.load()
    notices = second.commit_notices()
    await anext(notices)  # subscribed: every commit from now on is told
    try:
        await first.commit(_commit(base, _open(1, "a"), key=("a", "r1")))
        await asyncio.wait_for(anext(notices), NOTICE_DEADLINE)
        assert await second.catch_up() == [_open(1, "a")]
    finally:
        await notices.aclose()


async def test_a_lost_subscription_is_made_again_and_told(
    two: tuple[RedisStore, RedisStore],
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second = two
    base = (await first.load()).state
    await second.load()
    notices = second.commit_notices()
    await anext(notices)
    try:
        # Cut the subscriber off; the commit's notice is published to no one.
        assert redis_server.client().client_kill_filter(_type="pubsub") >= 1
        await first.commit(_commit(base, _open(1, "a"), key=("a", "r1")))
        # Subscribing again is told like a commit, so that what was missed is taken in.
        await asyncio.wait_for(anext(notices), NOTICE_DEADLINE)
        assert "commit notices from redis lost" in caplog.text
        assert await second.catch_up() == [_open(1, "a")]
    finally:
        await notices.aclose()


async def test_an_outcome_another_process_stored_refuses_the_commit(
    two: tuple[RedisStore, RedisStore],
) -> None:
    first, second = two
    await first.load()
    await second.load()
    refused = Outcome("fp", error_type="InsufficientFunds", error_reason="INSUFFICIENT_FUNDS")
    empty = LedgerState().overlay().delta()
    await first.commit(Commit([], empty, [(("a", "same"), refused)]))
    with pytest.raises(StoreConflict):
        await second.commit(Commit([], empty, [(("a", "same"), Outcome("other"))]))
    assert await second.get_outcomes([("a", "same")]) == {("a", "same"): refused}


async def test_one_process_holds_the_lease_and_a_deposed_holder_applies_nothing(
    two: tuple[RedisStore, RedisStore], redis_url: str
) -> None:
    first, second = two
    assert await first.lease.acquire()
    assert not await second.lease.acquire()
    assert await first.lease.renew()
    assert first.lease.token is not None
    old_token = first.lease.token
    # The lease runs out while its holder is paused; another process takes it.
    with _raw(redis_url) as raw:
        raw.delete(RedisKeys.of_branch(BRANCH).lease)
    assert await second.lease.acquire()
    assert second.lease.token is not None
    assert second.lease.token > old_token
    base = (await first.load()).state
    with pytest.raises(LeaseLost):
        await first.commit(_commit(base, _open(1, "a")))
    assert not await first.lease.renew()
    assert (await second.load()).state.version_vector() == VersionVector()
    # Given up, its commits are no longer fenced; released, the lease is free at once.
    await first.lease.release()
    await first.commit(_commit(base, _open(1, "a")))
    await second.lease.release()
    assert await first.lease.acquire()


async def test_refuses_a_redis_that_can_lose_acknowledged_writes(
    own_redis_server: RedisServer,
) -> None:
    with own_redis_server.client() as client:
        client.config_set("appendfsync", "everysec")
        client.config_set("maxmemory-policy", "allkeys-lru")
    with pytest.raises(UnsafeSettings) as refused:
        await RedisStore.open(own_redis_server.url(), branch_id=BRANCH)
    assert "appendfsync is 'everysec', must be 'always'" in refused.value.message
    assert "maxmemory-policy is 'allkeys-lru'" in refused.value.message
    accepted = await RedisStore.open(own_redis_server.url(), branch_id=BRANCH, unsafe=True)
    await accepted.close()


async def test_an_unreachable_redis_is_unusable() -> None:
    (port,) = free_ports(1)
    with pytest.raises(StoreUnusable, match=f"127.0.0.1:{port}"):
        await RedisStore.open(f"redis://127.0.0.1:{port}/0", branch_id=BRANCH)


async def test_keys_of_another_schema_are_refused(redis_url: str) -> None:
    store = await RedisStore.open(redis_url, branch_id=BRANCH)
    await store.close()
    with _raw(redis_url) as raw:
        raw.hset(RedisKeys.of_branch(BRANCH).meta, "schema", "0")
    with pytest.raises(StoreUnusable, match="schema 0"):
        await RedisStore.open(redis_url, branch_id=BRANCH)


@pytest.mark.parametrize("schema", ["1", "2"])
async def test_keys_of_an_older_schema_are_upgraded_with_digests_and_net_credits(
    redis_url: str, schema: str
) -> None:
    store = await RedisStore.open(redis_url, branch_id=BRANCH)
    await _some_history(store)
    expected = (await store.load()).state
    await store.close()
    assert any(expected.credits.values())
    keys = RedisKeys.of_branch(BRANCH)
    with _raw(redis_url) as raw:
        _strip_digests(raw, keys)
        if schema == "1":
            raw.delete(keys.credits)
        raw.hset(keys.meta, "schema", schema)
    for _ in range(2):  # the second time, the keys are upgraded already
        store = await RedisStore.open(redis_url, branch_id=BRANCH)
        try:
            state = (await store.load()).state
            assert state.credits == expected.credits
            assert state.rights == expected.rights
            assert (await store.verify(replay=True)).ok
        finally:
            await store.close()
    with _raw(redis_url) as raw:
        assert raw.hget(keys.meta, "schema") == SCHEMA_VERSION.encode()


def _strip_digests(raw: redis.Redis, keys: RedisKeys) -> None:
    """Make the values look as a version before digests wrote them."""
    for name in ("accounts", "rights", "credits", "applied", "postings", "outcomes"):
        key = getattr(keys, name)
        for field, value in raw.hgetall(key).items():
            raw.hset(key, field, value[DIGEST_WIDTH + 1 :])
    for key in raw.scan_iter(match=f"{keys.prefix}ops:*"):
        for index, value in enumerate(raw.lrange(key, 0, -1)):
            raw.lset(key, index, value[DIGEST_WIDTH + 1 :])


def _raw(url: str) -> redis.Redis:
    """A plain client, to change keys behind the stores' backs."""
    address = parse_redis_url(url)
    return redis.Redis(host=address.host, port=address.port, db=address.db)


async def test_history_pages_match_the_in_memory_twin(redis_url: str) -> None:
    redis_store = await RedisStore.open(redis_url, branch_id=BRANCH)
    memory = MemoryStore()
    try:
        for store in (memory, redis_store):
            await _some_history(store)
        for snapshot in (VersionVector({BRANCH: 5}), VersionVector({BRANCH: 99})):
            for limit in (1, 2, 50):
                pages = [await _pages(s, "a", snapshot, limit) for s in (memory, redis_store)]
                assert pages[0] == pages[1]
                assert pages[1]
    finally:
        await redis_store.close()


async def _some_history(store: Store) -> None:
    writer = Writer(BRANCH, (await store.load()).state, store, HybridLogicalClock(lambda: 0))
    writer.start()
    try:
        for account_id in ("a", "b"):
            await writer.submit(
                OpenAccountCommand(account_id, AccountType.CHECKING, "USD", "o", "open")
            )
        for n in range(6):
            await writer.submit(DepositCommand("a", 10 + n, f"d{n}"))
            await writer.submit(TransferCommand("a", "b", 1, f"t{n}"))
        await writer.submit(GrantCommand("a", 2, 3, "borrow"))  # not in the history
    finally:
        await writer.stop()


async def _pages(store: Store, account_id: str, snapshot: VersionVector, limit: int) -> list[Op]:
    found: list[Op] = []
    after: tuple[int, int, int] | None = None
    while True:
        page = await store.read_account_ops(account_id, after=after, snapshot=snapshot, limit=limit)
        found += page
        if len(page) < limit:
            return found
        last = page[-1]
        after = (last.hlc, last.id.origin, last.id.seq)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("redis://127.0.0.1:6390/3", RedisAddress("127.0.0.1", 6390, 3)),
        ("redis://db.example", RedisAddress("db.example", 6379, 0)),
        ("redis://[::1]:7000/0", RedisAddress("::1", 7000, 0)),
    ],
)
def test_reads_redis_urls(text: str, expected: RedisAddress) -> None:
    assert parse_redis_url(text) == expected
    assert parse_redis_url(str(expected)) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("http://h:1/0", "scheme"),
        ("redis://:6379/0", "no host"),
        ("redis://h:99999/0", "port"),
        ("redis://h:0/0", "port 0"),
        ("redis://h:6379/x", "database"),
        ("redis://u:p@h:6379/0", "credentials"),
        ("redis://h:6379/0?prefix=x", "query"),
        ("h:6379", "scheme"),
    ],
)
def test_refuses_malformed_redis_urls(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_redis_url(text)

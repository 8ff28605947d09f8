"""``dbank run --store redis://...``: the branches of a run keep their state in a real
redis-server and write the same output as with SQLite; a database that is not the run's
own (an earlier run's state, other keys) or a Redis that can lose writes is refused before
any branch starts, with one line and status 2, and left as it was."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.redis_server import RedisServer

from dbank.scenario import ACCOUNT_ID, load_scenario, run_model
from dbank.store import RedisStore

CASE = Path(__file__).resolve().parents[1] / "conformance" / "cases" / "p1-classic"
DEADLINE = 60.0


def dbank_run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dbank", "run", CASE / "input.json", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )


def refused(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a run refused as a usage mistake printed."""
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    return done.stderr.strip().splitlines()[-1]


def database_size(url: str, server: RedisServer) -> int:
    with server.client(int(url.rsplit("/", 1)[1])) as client:
        return int(client.dbsize())


@pytest.mark.parametrize("hosting", [(), ("--in-process",)], ids=["forked", "in-process"])
async def test_a_conformance_case_through_redis_writes_the_expected_output(
    hosting: tuple[str, ...], redis_url: str
) -> None:
    done = dbank_run("--store", redis_url, *hosting)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (CASE / "expected.json").read_text()
    # The state is in Redis, every branch's under its own keys, and the replicas agree.
    scenario = load_scenario(CASE / "input.json")
    moved = sum(
        r.event.money if r.event.interface == "deposit" else -r.event.money
        for r in run_model(scenario)
        if r.event.money and r.result == "success"
    )
    for branch_id in scenario.branches:
        store = await RedisStore.open(redis_url, branch_id=branch_id)
        try:
            state = (await store.load()).state
        finally:
            await store.close()
        assert state.balance(ACCOUNT_ID) == scenario.opening_balance + moved


def test_a_database_that_is_not_the_runs_own_is_refused_and_left_as_it_was(
    redis_server: RedisServer, redis_url: str
) -> None:
    assert dbank_run("--store", redis_url).returncode == 0
    size = database_size(redis_url, redis_server)
    line = refused(dbank_run("--store", redis_url))
    assert line.startswith(f"error: {redis_url} holds the state of a dbank run started ")
    assert "FLUSHDB" in line
    assert database_size(redis_url, redis_server) == size

    other = redis_server.new_database()
    with redis_server.client(int(other.rsplit("/", 1)[1])) as client:
        client.set("someone-else", "x")
    line = refused(dbank_run("--store", other))
    assert f"{other} is not empty (1 key)" in line
    assert database_size(other, redis_server) == 1


def test_a_redis_that_can_lose_writes_is_refused_before_any_branch_starts(
    own_redis_server: RedisServer,
) -> None:
    with own_redis_server.client() as client:
        client.config_set("appendfsync", "everysec")
    line = refused(dbank_run("--store", own_redis_server.url()))
    assert "appendfsync is 'everysec', must be 'always'" in line
    assert "endangers the whole bank" in line
    assert "--unsafe-redis" in line
    assert database_size(own_redis_server.url(), own_redis_server) == 0


def test_store_flags_that_cannot_work_are_one_line_and_status_2(tmp_path: Path) -> None:
    unreachable = refused(dbank_run("--store", "redis://127.0.0.1:1/0"))
    assert unreachable.startswith("error: cannot use redis://127.0.0.1:1/0")
    assert "not both" in refused(dbank_run("--store", "redis://h:1/0", "--data", tmp_path))
    assert "--unsafe-redis goes with --store" in refused(dbank_run("--unsafe-redis"))
    assert "redis://HOST:PORT/DB" in refused(dbank_run("--store", "redis://h:1/db"))

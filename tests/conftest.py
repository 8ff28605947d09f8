"""Fixtures shared by every test folder."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from support.redis_server import RedisServer
from support.secure import BankClient, start_branch

from dbank.client import Session
from dbank.hosting import BranchProcess
from dbank.hosting import ProxiedBank as Cluster

pytest_plugins = ["support.kept_link"]


@pytest.fixture(scope="module")
def branch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BranchProcess]:
    """One real branch process on a free port (TLS, tokens: ``support.secure``), shared by
    a test module.

    Tests that share it use their own account ids (``account_id`` fixture).
    """
    process = start_branch(1, tmp_path_factory.mktemp("branch"))
    yield process
    assert process.stop() == 0, process.log()


@pytest.fixture
def fresh_branch(tmp_path: Path) -> Iterator[BranchProcess]:
    """A branch process of the test's own, for tests that kill or restart it."""
    process = start_branch(1, tmp_path / "data")
    yield process
    if process.process.poll() is None:
        process.stop()


@pytest.fixture
async def bank(branch: BranchProcess) -> AsyncIterator[BankClient]:
    async with BankClient(branch.address) as client:
        yield client


@pytest.fixture
def account_id() -> str:
    """An account id no other test uses."""
    return unique_id("acct")


def unique_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# Banks of several branches (each module that uses these defines its ``cluster``) ----------


@pytest.fixture
def healthy(cluster: Cluster) -> Iterator[Cluster]:
    """The module's cluster with every link up and undelayed, healed again after the test."""
    cluster.heal()
    cluster.wait_connected()
    yield cluster
    cluster.heal()


@pytest.fixture
async def clients(healthy: Cluster) -> AsyncIterator[dict[int, BankClient]]:
    """One client per branch, sharing one session."""
    session = Session()
    opened = {i: BankClient(healthy.address(i), session=session) for i in healthy.ids}
    yield opened
    for client in opened.values():
        await client.close()


# Redis ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server with the durable settings, shared by the whole run (each test
    takes a database of its own with ``redis_url``). Fails if redis-server is missing."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """``redis://HOST:PORT/DB`` of an empty database of the test's own."""
    return redis_server.new_database()


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own, for tests that kill or reconfigure it."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()

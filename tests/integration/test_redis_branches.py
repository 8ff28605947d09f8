"""A bank of real branch processes on mixed stores: branch 1 on SQLite, branches 2 and 3
on one real redis-server. The replication tests run on it unchanged, and a Redis branch
killed with SIGKILL comes back on its lease with every acknowledged write."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import unique_id
from support.redis_server import RedisServer
from support.secure import PKI, BankClient
from support.secure import proxied_bank as running_cluster

# The replication tests, run here against the mixed bank of this module's ``cluster``.
from test_replication import (  # noqa: F401 - collected by pytest in this module
    test_a_deposit_with_write_concern_all_is_at_every_branch_when_it_returns,
    test_a_partition_keeps_both_sides_working_within_their_escrow,
    test_a_session_token_gives_read_your_writes_across_branches_on_slow_links,
    test_concurrent_withdrawals_everywhere_never_overdraw,
    test_opening_one_id_at_every_branch_at_once_gives_one_account,
)

from dbank.client import Session
from dbank.hosting import DBANK_BRANCH, free_ports
from dbank.hosting import ProxiedBank as Cluster

REDIS_BRANCHES = (2, 3)


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[Cluster]:
    url = redis_server.new_database()
    stores = dict.fromkeys(REDIS_BRANCHES, url)
    with running_cluster(tmp_path_factory.mktemp("mixed"), stores=stores) as bank:
        yield bank


@pytest.mark.usefixtures("healthy")
async def test_a_killed_redis_branch_restarts_with_every_acknowledged_write(
    cluster: Cluster,
) -> None:
    account_id = unique_id("kill")
    session = Session()
    async with BankClient(cluster.address(2), session=session) as bank:
        await bank.create_account(account_id=account_id, owner="ann")
        for _ in range(20):
            await bank.deposit(account_id=account_id, amount=5)
    cluster.branches[2].kill()
    # The dead process still holds the replication lease: the new one serves without links
    # until it runs out, then takes it over and connects.
    cluster.start(2)
    cluster.wait_connected()
    for i in cluster.ids:
        async with BankClient(cluster.address(i), session=Session(session.token)) as bank:
            assert (await bank.get_balance(account_id=account_id)).balance == 100


def _branch_exit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DBANK_BRANCH, "--id", "1", "--tls-dir", str(PKI.tls_dir), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_branch_refuses_a_redis_that_can_lose_writes(own_redis_server: RedisServer) -> None:
    with own_redis_server.client() as client:
        client.config_set("appendfsync", "everysec")
    refused = _branch_exit("--store", own_redis_server.url())
    assert refused.returncode == 2
    assert refused.stdout == ""
    (message,) = refused.stderr.strip().splitlines()
    assert "appendfsync is 'everysec', must be 'always'" in message
    assert "endangers the whole bank" in message
    assert "--unsafe-redis" in message


def test_an_unreachable_redis_or_a_malformed_url_is_one_line_and_status_2(
    tmp_path: Path,
) -> None:
    (port,) = free_ports(1)
    for store in (f"redis://127.0.0.1:{port}/0", "redis://127.0.0.1:70000/0", "mysql://x/0"):
        result = _branch_exit("--store", store)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert "redis://" in result.stderr
    bank_file = tmp_path / "bank.toml"
    bank_file.write_text('[branches.1]\nlisten = "127.0.0.1:0"\nstore = "redis://h:1/x"\n')
    result = _branch_exit("--config", str(bank_file))
    assert result.returncode == 2
    assert "branches.1.store" in result.stderr

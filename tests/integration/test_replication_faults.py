"""Faults between real branch processes: SIGKILL under load, cut links, and Jepsen's bank
workload (a fixed total moved around by concurrent transfers) under both. Each test runs on
a bank of SQLite branches and on a mixed bank (branches 2 and 3 on one real redis-server),
every branch on TLS (mutual TLS between them, through the proxies) and every client with a
token."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from conftest import unique_id
from support.secure import BankClient
from support.secure import proxied_bank as running_cluster

from dbank.check import Fault, Workload, check_bank, converged
from dbank.client import Session, WriteConcern, new_request_id
from dbank.hosting import ProxiedBank as Cluster
from dbank.ledger import DbankError

REDIS_BRANCHES = (2, 3)


@pytest.fixture(params=["sqlite", "mixed"])
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    stores = {}
    if request.param == "mixed":
        stores = dict.fromkeys(REDIS_BRANCHES, request.getfixturevalue("redis_url"))
    with running_cluster(tmp_path_factory.mktemp("faults"), stores=stores) as bank:
        yield bank


async def test_a_branch_killed_under_load_catches_up_and_loses_nothing(cluster: Cluster) -> None:
    account_id = unique_id("kill")
    session = Session()
    async with BankClient(cluster.address(1), session=session) as one:
        await one.create_account(account_id=account_id, owner="ann")
    acked: dict[str, int] = {}
    unsure: dict[str, tuple[int, int]] = {}  # request id -> (branch, amount)
    killed = asyncio.Event()

    async def deposit_at(i: int) -> None:
        async with BankClient(
            cluster.address(i), write_concern=WriteConcern.LOCAL, timeout=2.0
        ) as client:
            for k in range(60):
                request_id, amount = new_request_id(), 1 + k
                try:
                    await client.deposit(
                        account_id=account_id, amount=amount, request_id=request_id
                    )
                except DbankError:
                    unsure[request_id] = (i, amount)
                    if i == 2:
                        return
                else:
                    acked[request_id] = amount
                if i == 2 and k == 20:
                    cluster.branches[2].kill()
                    killed.set()

    await asyncio.gather(*(deposit_at(i) for i in cluster.ids))
    assert killed.is_set()
    cluster.start(2)
    cluster.wait_connected()
    # Settle every request whose outcome the client never learned, at the branch it was
    # sent to (its request id belongs there): applied exactly once either way.
    for request_id, (i, amount) in unsure.items():
        async with BankClient(cluster.address(i), session=session) as client:
            await client.deposit(account_id=account_id, amount=amount, request_id=request_id)
        acked[request_id] = amount
    for i in cluster.ids:
        async with BankClient(cluster.address(i), session=session) as client:
            await client.get_balance(account_id=account_id)
    assert await converged(cluster, [account_id], session, connect=BankClient) == [
        sum(acked.values())
    ]


async def test_bank_workload_keeps_every_promise_under_kills_and_cuts(cluster: Cluster) -> None:
    """Jepsen's "bank", extended (``dbank check``'s workload and checkers): no balance or
    escrow share negative, every read's total within what the writes allow, every
    customer's reads of its own account consistent with its session, and once the faults
    heal and every unanswered request is settled, exact balances, no request applied
    twice, every acknowledged write at every replica, all replicas identical."""
    workload = Workload(cluster, seed=7, workers=6, connect=BankClient)
    history = workload.history

    async def faults() -> None:
        loop = asyncio.get_running_loop()
        await workload.after_acknowledged(40)
        start = history.now()
        cluster.cut(1, 2)
        await workload.after_acknowledged(40)
        cluster.heal()
        history.faults.append(Fault("cut", (1, 2), start, history.now()))
        start = history.now()
        await loop.run_in_executor(None, cluster.branches[3].kill)
        await workload.after_acknowledged(40)
        await loop.run_in_executor(None, cluster.start, 3)
        history.faults.append(Fault("kill", (3,), start, history.now()))
        await workload.after_acknowledged(40)

    verdicts = await check_bank(cluster, workload, faults)
    print(f"bank workload: {workload.counts}")
    assert [v.name for v in verdicts if not v.ok] == [], [
        (v.name, v.anomalies[:3]) for v in verdicts if not v.ok
    ]
    assert all(v.checked > 0 for v in verdicts), [(v.name, v.checked) for v in verdicts]
    assert workload.counts.get("transfer/ok", 0) > 0

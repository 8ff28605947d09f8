"""Two processes serving branch 1 of a two-branch bank from one Redis, beside a SQLite
branch 2: both serve customers, only the holder of the replication lease runs links, yet
the ops either process commits reach branch 2; a process reads fresh enough for any
session token; and when the holder is killed, the other takes the lease over and
replication goes on.

Branch 2 reaches branch 1 through a proxy that fails over from one process to the other
(a load balancer in front of their peer ports, mutual TLS passing through); the processes
of branch 1 reach branch 2 through a proxy too. Cutting one of them leaves a single path for
ops to travel, which is what each step checks.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import unique_id
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.secure import BankClient, channel, start_branch, wait_serving

from dbank.client import Session
from dbank.hosting import BranchProcess, TcpProxy
from dbank.ledger import VersionVector
from dbank.ledger.ownership import owner_branch
from dbank.server import REPLICATION_SERVICE as REPLICATION

DEPOSIT = 7


@dataclass
class Bank:
    holder: BranchProcess
    standby: BranchProcess
    branch_2: BranchProcess
    to_branch_1: TcpProxy
    to_branch_2: TcpProxy


@pytest.fixture
def bank(tmp_path: Path, redis_url: str) -> Iterator[Bank]:
    with TcpProxy() as to_branch_1, TcpProxy() as to_branch_2:
        branch_2 = start_branch(2, tmp_path / "b2", peers={1: to_branch_1.address})
        to_branch_2.set_target(branch_2.peer_address)
        processes = [branch_2]
        try:
            peers = {2: to_branch_2.address}
            holder = start_branch(1, tmp_path / "b1", peers=peers, store=redis_url)
            processes.append(holder)
            wait_serving(holder.address, service=REPLICATION)  # holds the lease: links up
            standby = start_branch(1, tmp_path / "b1", peers=peers, store=redis_url)
            processes.append(standby)
            to_branch_1.set_target(holder.peer_address, standby.peer_address)
            yield Bank(holder, standby, branch_2, to_branch_1, to_branch_2)
        finally:
            for process in processes:
                if process.process.poll() is None:
                    process.stop()


def owned_by_branch_1(count: int) -> list[str]:
    """Account ids that branch 1 opens itself (no forwarding to branch 2 needed)."""
    ids = (unique_id("lease") for _ in itertools.count())
    return list(itertools.islice((i for i in ids if owner_branch(i, [1, 2]) == 1), count))


def replication_status(address: str) -> int:
    with channel(address) as open_channel:
        request = health_pb2.HealthCheckRequest(service=REPLICATION)
        return health_pb2_grpc.HealthStub(open_channel).Check(request, timeout=10).status


async def deposit_at(address: str, account_id: str, session: Session) -> VersionVector:
    """Deposit ``DEPOSIT`` at ``address``; the token of the state right after."""
    async with BankClient(address, session=session) as bank:
        await bank.deposit(account_id=account_id, amount=DEPOSIT)
    return session.token


async def balances_at(address: str, accounts: list[str], token: VersionVector) -> list[int]:
    async with BankClient(address, session=Session(token)) as bank:
        return [a.balance for a in await bank.get_balances(account_ids=accounts)]


async def test_every_process_serves_and_the_lease_passes_on_when_its_holder_dies(
    bank: Bank,
) -> None:
    serving = health_pb2.HealthCheckResponse.SERVING
    assert replication_status(bank.standby.address) != serving  # no links without the lease
    accounts = owned_by_branch_1(2)
    session = Session()
    async with BankClient(bank.standby.address, session=session) as standby:
        for account_id in accounts:
            await standby.create_account(account_id=account_id, owner="ann")
    deposits = dict.fromkeys(accounts, 0)

    # Branch 2 out of reach of both: each process reads the other's writes from the store.
    bank.to_branch_2.cut()
    from_holder = await deposit_at(bank.holder.address, accounts[0], Session(session.token))
    assert await balances_at(bank.standby.address, accounts[:1], from_holder) == [DEPOSIT]
    from_standby = await deposit_at(bank.standby.address, accounts[1], Session(from_holder))
    assert await balances_at(bank.holder.address, accounts[1:], from_standby) == [DEPOSIT]
    deposits[accounts[0]] += DEPOSIT
    deposits[accounts[1]] += DEPOSIT

    # Branch 2 can neither pull from branch 1 nor stream to it: the standby's write reaches
    # it only over the holder's link, which must have taken it in from the store.
    bank.to_branch_2.restore()
    bank.to_branch_1.cut()
    token = await deposit_at(bank.standby.address, accounts[0], Session(from_standby))
    deposits[accounts[0]] += DEPOSIT
    assert await balances_at(bank.branch_2.address, accounts, token) == list(deposits.values())

    # The holder dies; the standby takes the lease over once it runs out, and its links up.
    bank.to_branch_1.restore()
    bank.holder.kill()
    wait_serving(bank.standby.address, service=REPLICATION)
    wait_serving(bank.branch_2.address, service=REPLICATION)  # through the proxy's failover
    bank.to_branch_1.cut()  # again, only branch 1's new holder can carry its ops
    token = await deposit_at(bank.standby.address, accounts[1], Session(token))
    deposits[accounts[1]] += DEPOSIT
    assert await balances_at(bank.branch_2.address, accounts, token) == list(deposits.values())
    bank.to_branch_1.restore()
    token = await deposit_at(bank.branch_2.address, accounts[0], Session(token))
    deposits[accounts[0]] += DEPOSIT

    expected = list(deposits.values())
    for process in (bank.standby, bank.branch_2):
        async with BankClient(process.address, session=Session(token)) as reader:
            found = await reader.get_balances(account_ids=accounts)
        assert [a.balance for a in found] == expected

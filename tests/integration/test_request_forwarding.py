"""A request id belongs to the branch it was first sent to (design §3.1).

Three real branch processes, every link through a proxy the test controls. A retry sent to
another branch carries ``request_branch``: that branch answers it from the op if the op
has replicated there, forwards it to the request's branch if not, and answers UNAVAILABLE
(REQUEST_BRANCH_UNREACHABLE) if that branch cannot be reached. In no case is the request
applied twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from conftest import unique_id
from support.secure import BankClient, cli_env
from support.secure import proxied_bank as running_cluster

from dbank.client import RetryPolicy, Session, WriteConcern
from dbank.hosting import ProxiedBank as Cluster
from dbank.ledger import InvalidArgument, RequestBranchUnreachable, RequestIdReused

REPLICATION_DELAY = 2.0
"""Long enough that a retry sent right after a write reaches the other branch first."""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("bank")) as bank:
        yield bank


@pytest.fixture
async def account(healthy: Cluster) -> str:
    account_id = unique_id("fwd")
    async with BankClient(healthy.address(1)) as client:
        await client.create_account(account_id=account_id, owner="ann")
    return account_id


async def _balance_everywhere(cluster: Cluster, account_id: str, session: Session) -> set[int]:
    found = set()
    for i in cluster.ids:
        async with BankClient(cluster.address(i), session=Session(session.token)) as client:
            found.add((await client.get_balance(account_id=account_id)).balance)
    return found


async def test_a_retry_that_arrives_before_the_op_is_forwarded_and_applied_once(
    healthy: Cluster, account: str
) -> None:
    healthy.proxies[1, 2].delay(REPLICATION_DELAY)  # branch 1's ops reach 2 late
    first = BankClient(healthy.address(1), write_concern=WriteConcern.LOCAL)
    # The retry comes from a caller that never saw the first answer: no session token.
    retry = BankClient(healthy.address(2), write_concern=WriteConcern.LOCAL)
    async with first, retry:
        done = await first.deposit(account_id=account, amount=700, request_id="pay-1")
        again = await retry.deposit(
            account_id=account, amount=700, request_id="pay-1", request_branch=1
        )
    assert done.answered_by == 1
    assert again.answered_by == 1, "branch 2 did not have the op yet: it must have forwarded"
    assert (again.op_id, again.balance) == (done.op_id, 700)
    healthy.proxies[1, 2].delay(0)
    assert await _balance_everywhere(healthy, account, retry.session) == {700}


async def test_a_retry_that_arrives_after_the_op_is_answered_where_it_arrives(
    healthy: Cluster, account: str
) -> None:
    async with BankClient(healthy.address(1)) as first:
        # Write concern ALL: branch 2 has applied the op when this returns.
        done = await first.deposit(account_id=account, amount=50, request_id="d-1")
    async with BankClient(healthy.address(2)) as retry:
        again = await retry.deposit(
            account_id=account, amount=50, request_id="d-1", request_branch=1
        )
        assert again.answered_by == 2
        assert (again.op_id, again.balance) == (done.op_id, 50)
        with pytest.raises(RequestIdReused):
            await retry.deposit(account_id=account, amount=51, request_id="d-1", request_branch=1)


async def test_a_retry_whose_branch_cannot_be_reached_is_refused_and_applies_nothing(
    healthy: Cluster, account: str
) -> None:
    healthy.isolate(2)  # branch 2 can neither reach branch 1 nor learn the op from anyone
    async with BankClient(healthy.address(1), write_concern=WriteConcern.LOCAL) as first:
        done = await first.deposit(account_id=account, amount=30, request_id="w-1")
    once = RetryPolicy(attempts=1)
    async with BankClient(healthy.address(2), retry=once, timeout=3.0) as retry:
        before = (await retry.get_balance(account_id=account)).balance
        with pytest.raises(RequestBranchUnreachable) as refused:
            await retry.deposit(account_id=account, amount=30, request_id="w-1", request_branch=1)
        assert refused.value.metadata == {"branch": "1"}
        assert (await retry.get_balance(account_id=account)).balance == before
    healthy.heal()
    healthy.wait_connected()
    assert done.balance == 30
    assert await _balance_everywhere(healthy, account, first.session) == {30}


async def test_a_request_branch_outside_the_bank_is_invalid(healthy: Cluster, account: str) -> None:
    async with BankClient(healthy.address(2)) as client:
        with pytest.raises(InvalidArgument) as refused:
            await client.withdraw(account_id=account, amount=1, request_id="x", request_branch=9)
    assert refused.value.reason == "UNKNOWN_BRANCH"


def _dbank(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dbank", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
    )


async def test_the_cli_retries_at_another_branch_with_the_request_branch(
    healthy: Cluster, account: str
) -> None:
    async with BankClient(healthy.address(1)) as first:
        done = await first.deposit(account_id=account, amount=250, request_id="cli-1")
    retried = _dbank(
        *("account", "deposit", account, "2.50", "--request-id", "cli-1"),
        *("--request-branch", "1", "--branch", healthy.address(3), "--json"),
    )
    assert retried.returncode == 0, retried.stderr
    shown = json.loads(retried.stdout)
    assert (shown["op_id"], shown["balance"]["minor_units"]) == (str(done.op_id), 250)
    alone = _dbank("account", "deposit", account, "1", "--request-branch", "1")
    assert alone.returncode == 2
    assert "--request-branch" in alone.stderr
    assert "Traceback" not in alone.stderr

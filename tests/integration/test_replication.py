"""Three real branch processes, every link through a proxy the test controls."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from conftest import unique_id
from support.secure import BankClient
from support.secure import proxied_bank as running_cluster

from dbank.client import Session, WriteConcern
from dbank.hosting import ProxiedBank as Cluster
from dbank.ledger import BranchesUnreachable, DbankError, InsufficientFunds


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("bank")) as bank:
        yield bank


async def _balances(cluster: Cluster, account_id: str, session: Session) -> dict[int, int]:
    found = {}
    for i in cluster.ids:
        async with BankClient(cluster.address(i), session=Session(session.token)) as client:
            found[i] = (await client.get_balance(account_id=account_id)).balance
    return found


async def test_a_deposit_with_write_concern_all_is_at_every_branch_when_it_returns(
    healthy: Cluster, clients: dict[int, BankClient]
) -> None:
    account_id = unique_id("all")
    await clients[1].create_account(account_id=account_id, owner="ann")
    change = await clients[2].deposit(account_id=account_id, amount=12_345)
    assert change.unconfirmed_branches == ()
    for i in healthy.ids:
        # A fresh client without a session token: the replica itself must have it.
        async with BankClient(healthy.address(i)) as fresh:
            assert (await fresh.get_balance(account_id=account_id)).balance == 12_345


async def test_opening_one_id_at_every_branch_at_once_gives_one_account(
    healthy: Cluster,
) -> None:
    account_id = unique_id("race")
    owners = ["ann", "bob", "cid"]

    async def open_at(i: int, owner: str) -> str:
        async with BankClient(healthy.address(i)) as client:
            try:
                return (await client.create_account(account_id=account_id, owner=owner)).owner
            except DbankError as exc:
                return exc.reason

    attempts = zip(healthy.ids, owners, strict=True)
    results = await asyncio.gather(*(open_at(i, o) for i, o in attempts))
    winners = [r for r in results if r in owners]
    assert len(winners) == 1, results
    assert sorted(results).count("ACCOUNT_EXISTS") == 2, results
    session = Session()
    for i in healthy.ids:
        async with BankClient(healthy.address(i), session=session) as client:
            assert (await client.get_balance(account_id=account_id)).owner == winners[0]


async def test_concurrent_withdrawals_everywhere_never_overdraw(
    healthy: Cluster, clients: dict[int, BankClient]
) -> None:
    account_id = unique_id("drain")
    await clients[1].create_account(account_id=account_id, owner="ann")
    for i in healthy.ids:
        await clients[i].deposit(account_id=account_id, amount=1_000)
    opening = 3_000
    stop = asyncio.Event()
    negative: list[tuple[int, int]] = []
    failures: list[DbankError] = []

    async def sample(i: int) -> None:
        async with BankClient(healthy.address(i)) as reader:
            while not stop.is_set():
                balance = (await reader.get_balance(account_id=account_id)).balance
                if balance < 0:
                    negative.append((i, balance))

    async def withdraw(i: int, amount: int) -> int:
        async with BankClient(healthy.address(i)) as client:
            try:
                await client.withdraw(account_id=account_id, amount=amount)
            except InsufficientFunds:
                return 0
            except DbankError as exc:
                failures.append(exc)
                return 0
            return amount

    samplers = [asyncio.create_task(sample(i)) for i in healthy.ids]
    amounts = [(i, 170 + 13 * k) for k in range(8) for i in healthy.ids]
    acknowledged = sum(await asyncio.gather(*(withdraw(i, a) for i, a in amounts)))
    stop.set()
    await asyncio.gather(*samplers)
    assert sum(a for _, a in amounts) > opening
    assert acknowledged <= opening
    assert not negative
    # Escrow still moving between branches is the only other outcome (retryable).
    assert all(exc.transient for exc in failures), failures
    session = Session()
    for client in clients.values():
        session.observe(client.session.token)
    # Every replica ends at the same balance, the opening less what was acknowledged.
    final = await _balances(healthy, account_id, session)
    assert set(final.values()) == {opening - acknowledged}, final


async def test_a_partition_keeps_both_sides_working_within_their_escrow(
    healthy: Cluster,
) -> None:
    account_id = unique_id("split")
    session = Session()
    async with BankClient(healthy.address(1), session=session) as one:
        await one.create_account(account_id=account_id, owner="ann")
        await one.deposit(account_id=account_id, amount=500)
    healthy.isolate(3)
    # Each side on its own session: the other side's ops cannot reach it now.
    async with (
        BankClient(healthy.address(1), session=Session(session.token)) as one,
        BankClient(
            healthy.address(3), session=Session(session.token), write_concern=WriteConcern.LOCAL
        ) as three,
    ):
        await three.deposit(account_id=account_id, amount=70)
        await three.withdraw(account_id=account_id, amount=50)  # within its own escrow
        await one.deposit(account_id=account_id, amount=30)
        await one.withdraw(account_id=account_id, amount=400)  # 1 holds 500 + 30
        with pytest.raises(BranchesUnreachable) as refused:
            await three.withdraw(account_id=account_id, amount=100)
        assert "1" in refused.value.metadata["branches"]
        healthy.heal()
        healthy.wait_connected()
        merged = Session(one.session.token)
        merged.observe(three.session.token)
    final = await _balances(healthy, account_id, merged)
    assert set(final.values()) == {500 + 70 - 50 + 30 - 400}, final


async def test_a_retry_sent_to_another_branch_is_recognised_there(
    healthy: Cluster, clients: dict[int, BankClient]
) -> None:
    account_id = unique_id("retry")
    await clients[1].create_account(account_id=account_id, owner="ann")
    first = await clients[1].deposit(account_id=account_id, amount=250, request_id="r-1")
    again = await clients[2].deposit(account_id=account_id, amount=250, request_id="r-1")
    assert again.op_id == first.op_id
    assert (await clients[3].get_balance(account_id=account_id)).balance == 250


async def test_a_session_token_gives_read_your_writes_across_branches_on_slow_links(
    healthy: Cluster,
) -> None:
    account_id = unique_id("session")
    session = Session()
    async with BankClient(healthy.address(1), session=session) as one:
        await one.create_account(account_id=account_id, owner="ann")
    healthy.delay(0.4)
    try:
        async with (
            BankClient(
                healthy.address(1), session=session, write_concern=WriteConcern.LOCAL
            ) as one,
            BankClient(healthy.address(2), session=session) as two,
            BankClient(healthy.address(2), session=Session(session.token)) as stale,
        ):
            await one.deposit(account_id=account_id, amount=75)
            # Without the newest token branch 2 answers from what it has: not the deposit.
            assert (await stale.get_balance(account_id=account_id)).balance == 0
            # With it, branch 2 first waits for (or pulls) the deposit.
            assert (await two.get_balance(account_id=account_id)).balance == 75
    finally:
        healthy.delay(0)

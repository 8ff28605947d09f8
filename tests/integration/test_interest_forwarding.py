"""Interest in a bank of three real branches: any branch forwards it to the account's
owner branch, which posts it once a day only when every branch is past that day (it has
written since, or it says so when asked); history pages are the same at every branch."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest
from support.past import SetClock, branch_with_clock, owned_id
from support.secure import BankClient
from support.secure import proxied_bank as running_cluster

from dbank.branch import RequestContext
from dbank.client import RetryPolicy, Session
from dbank.hosting import ProxiedBank as Cluster
from dbank.ledger import AccountType, DayNotClosed, DepositCommand, OpenAccountCommand

FEB_29 = dt.date(2024, 2, 29)
ACCOUNT = owned_id("savings", 1, [1, 2, 3])


async def _history(data_dir: Path) -> None:
    """Branch 1's file: ACCOUNT opened on Feb 1 2024 with 1000.00."""
    clock = SetClock(dt.datetime(2024, 2, 1, 9, tzinfo=dt.UTC))
    peers = {2: "127.0.0.1:1", 3: "127.0.0.1:1"}  # never dialled: only the shape counts
    async with branch_with_clock(clock, data_dir, peers=peers) as branch:
        command = OpenAccountCommand(ACCOUNT, AccountType.SAVINGS, "USD", "o", "open")
        await branch.open_account(command, RequestContext())
        await branch.deposit(DepositCommand(ACCOUNT, 100_000, "d"), RequestContext())


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("bank")
    asyncio.run(_history(root / "branch-1"))
    with running_cluster(root, 3) as cluster:
        yield cluster


async def test_interest_is_forwarded_to_the_owner_and_posted_once(bank: Cluster) -> None:
    session = Session()
    once = RetryPolicy(attempts=1)
    clients = {i: BankClient(bank.address(i), session=session, retry=once) for i in bank.ids}
    try:
        # Branches 2 and 3 have written nothing: the owner must ask them whether ops of
        # Feb 29 may still come, and branch 3 cannot be asked while it is cut off.
        bank.isolate(3)
        with pytest.raises(DayNotClosed) as caught:
            await clients[2].calculate_interest(account_id=ACCOUNT, annual_rate="5", as_of=FEB_29)
        assert caught.value.metadata["branches"] == "3"
        assert (await clients[1].get_balance(account_id=ACCOUNT)).balance == 100_000
        bank.heal()
        bank.wait_connected()
        # Reachable again, branch 3 seals its clock past the day: no write of its own needed.
        done = await clients[3].calculate_interest(
            account_id=ACCOUNT, annual_rate="5", as_of=FEB_29
        )
        expected = round(Fraction(100_000 * 29 * 5, 36_500))
        assert (done.interest, done.posted_now, done.op_id.origin) == (expected, True, 1)
        # The answering branch has the posting already: read-your-writes there.
        assert (await clients[3].get_balance(account_id=ACCOUNT)).balance == 100_000 + expected
        for i in (2, 3):  # today's deposits are after Feb 29: they change no posting
            await clients[i].deposit(account_id=ACCOUNT, amount=1)
        again = await clients[2].calculate_interest(
            account_id=ACCOUNT, annual_rate="7", as_of=FEB_29
        )
        assert (again.op_id, again.interest, again.posted_now) == (done.op_id, expected, False)
        assert (await clients[1].get_balance(account_id=ACCOUNT)).balance == 100_002 + expected
    finally:
        for client in clients.values():
            await client.close()


async def test_history_pages_are_the_same_at_every_branch(bank: Cluster) -> None:
    session = Session()
    clients = {i: BankClient(bank.address(i), session=session) for i in bank.ids}
    try:
        await clients[2].deposit(account_id=ACCOUNT, amount=5)
        whole = await clients[1].list_transactions(account_id=ACCOUNT, page_size=1000)
        pages = []
        token = ""
        for turn in range(len(whole.transactions)):
            client = clients[bank.ids[turn % 3]]
            page = await client.list_transactions(account_id=ACCOUNT, page_size=1, page_token=token)
            pages.extend(page.transactions)
            await clients[3].deposit(account_id=ACCOUNT, amount=1)  # the listing ignores it
            token = page.next_page_token
        assert token == ""
        assert pages == list(whole.transactions)
    finally:
        for client in clients.values():
            await client.close()

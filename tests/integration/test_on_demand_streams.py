"""Branches that stream on demand (``Streams.ON_DEMAND``, how ``dbank run`` starts its
bank): no stream and no catch-up in the background, yet every request gets what its
session has seen, and a write at ``ALL`` opens the streams it needs. Four secure branches
in this process's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from support.secure import PKI, BankClient

from dbank.branch import Streams
from dbank.client import Session, WriteConcern
from dbank.hosting import bank_configs
from dbank.ledger import genesis_op
from dbank.server import BranchServer

BRANCHES = [1, 2, 3, 4]
ACCOUNT, OWNER = "pool", "pool-owner"


@pytest.fixture
async def bank(tmp_path: Path) -> AsyncIterator[dict[int, BranchServer]]:
    genesis = genesis_op(
        account_id=ACCOUNT, currency="JPY", owner=OWNER, balance=4_000, branch_ids=BRANCHES
    )
    configs = bank_configs(
        BRANCHES, tmp_path, genesis, tls_dir=PKI.tls_dir, streams=Streams.ON_DEMAND
    )
    servers = await asyncio.gather(*(BranchServer.start(config) for config in configs))
    try:
        yield {server.branch.branch_id: server for server in servers}
    finally:
        await asyncio.gather(*(server.stop(1.0) for server in servers))


def _client(server: BranchServer, **options: object) -> BankClient:
    return BankClient(server.address, **options)  # type: ignore[arg-type]


async def test_a_session_brings_a_write_where_it_is_read_and_nowhere_else(
    bank: dict[int, BranchServer],
) -> None:
    assert all(not server.replicator.links for server in bank.values())
    session = Session()
    async with _client(bank[1], session=session, write_concern=WriteConcern.LOCAL) as one:
        await one.deposit(account_id=ACCOUNT, amount=25)
    written = session.token
    async with _client(bank[3], session=session) as three:
        account = await three.get_balance(account_id=ACCOUNT)
    assert account.balance == 4_025
    assert bank[3].branch.version_vector.covers(written)
    # Nothing travels unasked: branch 2 was in no request, and no stream was opened.
    assert not bank[2].branch.version_vector.covers(written)
    assert all(not server.replicator.links for server in bank.values())


async def test_a_write_at_all_opens_its_streams_and_is_confirmed_by_every_branch(
    bank: dict[int, BranchServer],
) -> None:
    async with _client(bank[2]) as client:  # WriteConcern.ALL, the default
        change = await client.deposit(account_id=ACCOUNT, amount=5)
    assert change.unconfirmed_branches == ()
    assert set(bank[2].replicator.links) == {1, 3, 4}
    assert {server.branch.account(ACCOUNT).balance for server in bank.values()} == {4_005}


async def test_a_branch_connects_at_start_to_the_peers_it_is_told_to_and_to_no_other(
    tmp_path: Path,
) -> None:
    # ``dbank run`` names each branch the peers its events will fetch from first.
    configs = bank_configs(
        [1, 2, 3],
        tmp_path,
        tls_dir=PKI.tls_dir,
        streams=Streams.ON_DEMAND,
        connect_early={3: frozenset({1})},
    )
    servers = await asyncio.gather(*(BranchServer.start(config) for config in configs))
    try:
        early = servers[2].replicator.peer(1).channel
        async with asyncio.timeout(10):
            state = early.get_state()
            while state is not grpc.ChannelConnectivity.READY:
                await early.wait_for_state_change(state)
                state = early.get_state()
        assert servers[2].replicator.peer(2).channel.get_state() is grpc.ChannelConnectivity.IDLE
        assert servers[0].replicator.peer(3).channel.get_state() is grpc.ChannelConnectivity.IDLE
    finally:
        await asyncio.gather(*(server.stop(1.0) for server in servers))

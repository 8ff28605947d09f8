"""A bank of more branches than ``FULL_MESH_BRANCHES``: each branch streams its ops to
about log2(n) peers from the start, not to every one (design §4). Twelve secure branches
in this process's event loop show what that must still give: writes at every branch reach
every branch without a stream per pair, a write at ``ALL`` is confirmed by every branch
(the streams it needs open on demand), and a session read at a branch that no stream from
the writer reaches sees the write at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.secure import PKI, BankClient

from dbank.client import Session, WriteConcern
from dbank.hosting import bank_configs, wait_connected
from dbank.ledger import VersionVector, genesis_op
from dbank.replication import FULL_MESH_BRANCHES, stream_targets
from dbank.server import BranchServer

BRANCHES = list(range(1, 13))
ACCOUNT, OWNER = "pool", "pool-owner"
CONVERGED_WITHIN = 30.0
"""A bound, not a measure: relayed ops usually arrive in a few seconds."""


@pytest.fixture
async def bank(tmp_path: Path) -> AsyncIterator[dict[int, BranchServer]]:
    assert len(BRANCHES) > FULL_MESH_BRANCHES
    genesis = genesis_op(
        account_id=ACCOUNT, currency="JPY", owner=OWNER, balance=12_000, branch_ids=BRANCHES
    )
    configs = bank_configs(BRANCHES, tmp_path, genesis, tls_dir=PKI.tls_dir)
    servers = await asyncio.gather(*(BranchServer.start(config) for config in configs))
    running = {server.branch.branch_id: server for server in servers}
    try:
        # Every branch's health says its streams are up (those it runs from the start).
        await wait_connected({i: s.address for i, s in running.items()}, ca=PKI.ca)
        yield running  # a test that stops a branch takes it out
    finally:
        await asyncio.gather(*(server.stop(1.0) for server in running.values()))


def _client(server: BranchServer, **options: object) -> BankClient:
    return BankClient(server.address, **options)  # type: ignore[arg-type]


async def test_local_writes_at_every_branch_reach_every_branch(
    bank: dict[int, BranchServer],
) -> None:
    for i, server in bank.items():
        assert set(server.replicator.links) == set(stream_targets(i, BRANCHES))
    written = VersionVector()
    for i, server in bank.items():
        async with _client(server, write_concern=WriteConcern.LOCAL) as client:
            change = await client.deposit(account_id=ACCOUNT, amount=i)
            written = written.merge(client.session.token)
        assert change.unconfirmed_branches == ()  # LOCAL: nothing was waited for
    caught_up = await asyncio.gather(
        *(
            server.branch.committed.wait_for(lambda v: v.covers(written), CONVERGED_WITHIN)
            for server in bank.values()
        )
    )
    assert all(caught_up), "some branch did not get every write"
    total = 12_000 + sum(BRANCHES)
    assert {server.branch.account(ACCOUNT).balance for server in bank.values()} == {total}
    # Without a stream per pair: no write waited for confirmations, so none was opened.
    for i, server in bank.items():
        assert set(server.replicator.links) == set(stream_targets(i, BRANCHES))


async def test_a_write_at_all_is_confirmed_by_every_branch(
    bank: dict[int, BranchServer],
) -> None:
    async with _client(bank[1]) as client:  # WriteConcern.ALL, the default
        change = await client.deposit(account_id=ACCOUNT, amount=5)
    assert change.unconfirmed_branches == ()
    op = change.op_id
    for server in bank.values():
        assert server.branch.committed.vector[op.origin] >= op.seq
    assert set(bank[1].replicator.links) == set(BRANCHES) - {1}


async def test_a_session_read_where_no_stream_of_the_writer_arrives(
    bank: dict[int, BranchServer],
) -> None:
    writer = 1
    reader = next(i for i in BRANCHES if i != writer and i not in stream_targets(writer, BRANCHES))
    session = Session()
    async with _client(bank[writer], session=session, write_concern=WriteConcern.LOCAL) as one:
        await one.deposit(account_id=ACCOUNT, amount=70)
    assert session.source == writer
    async with _client(bank[reader], session=session) as other:
        seen = await other.get_balance(account_id=ACCOUNT)
    assert seen.balance == 12_070
    assert session.source == reader


async def test_a_branch_whose_streams_are_all_down_still_gets_the_others_writes(
    bank: dict[int, BranchServer],
) -> None:
    cut_off = 1
    targets = stream_targets(cut_off, BRANCHES)
    await asyncio.gather(*(bank.pop(i).stop(0) for i in targets))
    # Writers whose own streams do not reach the cut-off branch either.
    writers = [i for i in bank if i != cut_off and cut_off not in stream_targets(i, BRANCHES)]
    assert len(writers) >= 2
    written = VersionVector()
    for i in writers[:2]:
        async with _client(bank[i], write_concern=WriteConcern.LOCAL) as client:
            await client.deposit(account_id=ACCOUNT, amount=i)
            written = written.merge(client.session.token)
    covered = await bank[cut_off].branch.committed.wait_for(
        lambda v: v.covers(written), CONVERGED_WITHIN
    )
    assert covered, "the writes did not reach a branch whose own streams were all down"

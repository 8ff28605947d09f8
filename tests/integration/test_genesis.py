"""The genesis op at real branch servers: every branch applies it first; a peer of
another bank (another genesis) is refused; a store of another bank does not open."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from dbank._proto import replication_pb2 as pb
from dbank._proto.replication_pb2_grpc import ReplicationStub
from dbank._status import error_from_rpc
from dbank.branch import Branch, BranchConfig
from dbank.hosting import free_ports, wait_connected
from dbank.ledger import Op, Unavailable, genesis_op
from dbank.ledger.genesis import GENESIS_ID
from dbank.server import BranchServer


def genesis(balance: int) -> Op:
    return genesis_op(
        account_id="acct", currency="JPY", owner="c", balance=balance, branch_ids=[1, 2]
    )


def two_branches(tmp_path: Path, balances: tuple[int, int]) -> list[BranchConfig]:
    ports = free_ports(2)
    addresses = {1: f"127.0.0.1:{ports[0]}", 2: f"127.0.0.1:{ports[1]}"}
    return [
        BranchConfig(
            branch_id=i,
            listen=addresses[i],
            data_dir=tmp_path / str(i),
            peers={j: a for j, a in addresses.items() if j != i},
            genesis=genesis(balance),
        )
        for i, balance in zip((1, 2), balances, strict=True)
    ]


async def test_every_branch_starts_from_the_genesis_and_connects(tmp_path: Path) -> None:
    servers = [await BranchServer.start(c) for c in two_branches(tmp_path, (9, 9))]
    try:
        async with asyncio.timeout(10):
            await wait_connected({s.branch.branch_id: s.address for s in servers})
        for server in servers:
            assert server.branch.version_vector[GENESIS_ID.origin] == 1
            assert server.branch.account("acct").balance == 9
        assert servers[0].branch.state.rights_of("acct", 1) == 5
        assert servers[1].branch.state.rights_of("acct", 2) == 4
    finally:
        for server in servers:
            await server.stop(0)


async def test_a_peer_with_another_genesis_is_refused(tmp_path: Path) -> None:
    servers = [await BranchServer.start(c) for c in two_branches(tmp_path, (9, 10))]
    try:
        one, two = servers
        hello = pb.Hello(branch_id=1, genesis_digest=one.branch.config.genesis_digest)
        async with grpc.aio.insecure_channel(two.address) as channel:
            stream = ReplicationStub(channel).Replicate(iter([pb.ReplicateRequest(hello=hello)]))
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await anext(stream.__aiter__())
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        error = error_from_rpc(refused.value)
        assert error.reason == "GENESIS_MISMATCH"
        for server in servers:
            link = server.replicator.links[3 - server.branch.branch_id]
            async with asyncio.timeout(10):
                await link.attempted.wait()
            assert not link.connected
    finally:
        for server in servers:
            await server.stop(0)


async def test_a_store_of_another_bank_does_not_open(tmp_path: Path) -> None:
    first, _ = two_branches(tmp_path, (9, 9))
    branch = await Branch.open(first)
    await branch.close()
    other = BranchConfig(first.branch_id, data_dir=first.data_dir, genesis=genesis(10))
    with pytest.raises(Unavailable) as raised:
        await Branch.open(other)
    assert raised.value.reason == "GENESIS_MISMATCH"
    reopened = await Branch.open(first)  # the right bank still opens it, unchanged
    assert reopened.account("acct").balance == 9
    await reopened.close()

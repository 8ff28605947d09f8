"""The genesis op at real branch servers: every branch applies it first; a peer of
another bank (another genesis) is refused; a store of another bank does not open. The
servers run on TLS (the test PKI), their peers on mutual TLS."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from support.secure import PKI, wait_serving

from dbank._proto import replication_pb2 as pb
from dbank._proto.replication_pb2_grpc import ReplicationStub
from dbank._status import error_from_rpc
from dbank.branch import Branch, BranchConfig
from dbank.hosting import free_ports
from dbank.ledger import Op, Unavailable, genesis_op
from dbank.ledger.genesis import GENESIS_ID
from dbank.server import REPLICATION_SERVICE, BranchServer


def genesis(balance: int) -> Op:
    return genesis_op(
        account_id="acct", currency="JPY", owner="c", balance=balance, branch_ids=[1, 2]
    )


def two_branches(tmp_path: Path, balances: tuple[int, int]) -> list[BranchConfig]:
    ports = free_ports(2)
    peer_addresses = {1: f"127.0.0.1:{ports[0]}", 2: f"127.0.0.1:{ports[1]}"}
    return [
        BranchConfig(
            branch_id=i,
            data_dir=tmp_path / str(i),
            peers={j: a for j, a in peer_addresses.items() if j != i},
            genesis=genesis(balance),
            tls_dir=PKI.tls_dir,
            peer_listen=peer_addresses[i],
        )
        for i, balance in zip((1, 2), balances, strict=True)
    ]


async def connected(servers: list[BranchServer]) -> None:
    """Until every server's streams to its peers are up (its health says so)."""
    await asyncio.gather(
        *(asyncio.to_thread(wait_serving, s.address, 10, REPLICATION_SERVICE) for s in servers)
    )


async def test_every_branch_starts_from_the_genesis_and_connects(tmp_path: Path) -> None:
    servers = [await BranchServer.start(c) for c in two_branches(tmp_path, (9, 9))]
    try:
        await connected(servers)
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
        assert two.peer_address is not None
        async with grpc.aio.secure_channel(two.peer_address, PKI.peer_credentials(1)) as channel:
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

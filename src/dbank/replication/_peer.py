"""One other branch as this branch reaches it: a gRPC channel and the stubs on it."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from dbank._proto import bank_pb2_grpc, replication_pb2_grpc

# Reconnect quickly after a cut: links between branches matter more than politeness.
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", 5000),
    ("grpc.keepalive_timeout_ms", 5000),
    ("grpc.keepalive_permit_without_calls", 1),
]


@dataclass(slots=True)
class Peer:
    branch_id: int
    address: str
    channel: grpc.aio.Channel
    replication: replication_pb2_grpc.ReplicationStub
    bank: bank_pb2_grpc.BankStub

    @classmethod
    def connect(
        cls, branch_id: int, address: str, credentials: grpc.ChannelCredentials | None = None
    ) -> Peer:
        """Make the channel (mutual TLS with ``credentials``, else plaintext); it connects
        lazily and reconnects on its own."""
        channel = (
            grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
            if credentials is None
            else grpc.aio.secure_channel(address, credentials, options=CHANNEL_OPTIONS)
        )
        return cls(
            branch_id,
            address,
            channel,
            replication_pb2_grpc.ReplicationStub(channel),
            bank_pb2_grpc.BankStub(channel),
        )

    async def close(self) -> None:
        await self.channel.close()

"""One other branch as this branch reaches it: a gRPC channel and the stubs on it."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from dbank._proto import bank_pb2_grpc, replication_pb2_grpc

KEEPALIVE_MS = 5000
"""How often a branch pings an idle connection to a peer, to notice one that is gone."""

CONNECT_TIMEOUT_MS = 10_000
"""How long one connection attempt (TCP, TLS handshake, HTTP/2 settings) may take before
gRPC gives it up and tries again. gRPC takes it from ``grpc.min_reconnect_backoff_ms``
(its name notwithstanding, the minimum connect *timeout*, not a backoff). It must be far
longer than a handshake on a loaded machine: at 100 ms, 50 branches starting at once on
2 cores gave up most of their handshakes half done, and each retry was another handshake
(a run saw about 8 times as many connections as links)."""

FLOW_CONTROL_OPTIONS = [
    # No bandwidth-delay probing: gRPC answers data it reads with a BDP ping, and on links
    # that carry one small batch and one ack per write, the pings and their acks were
    # most of the frames (each a wakeup of two processes, and a TLS record each way):
    # 200 writes at ALL in a bank of 50 made 84,000 sendmsg calls with probing, 51,000
    # without, and took 15-20 % less time. A fixed window as large as the probing would
    # reach keeps bulk transfers (catch-up) as fast on slow links: 4 MB through a proxy
    # adding 20 ms took 59 ms with probing, 222 ms without, 58 ms with this window.
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", 4 * 2**20),
]
"""Flow control of the connections between branches, the same at both ends."""

# Reconnect quickly after a cut (a refused connection fails at once, so only the backoff
# between attempts decides how soon a link comes back): links between branches matter
# more than politeness.
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", CONNECT_TIMEOUT_MS),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", KEEPALIVE_MS),
    ("grpc.keepalive_timeout_ms", 5000),
    ("grpc.keepalive_permit_without_calls", 1),
    *FLOW_CONTROL_OPTIONS,
]

SERVER_OPTIONS = [
    # Accept the peers' keepalive pings (above), with room for timers that fire a little
    # early. gRPC's server default takes a ping more often than every 5 minutes as abuse
    # and, at the third strike, closes the connection with GOAWAY "too_many_pings": in
    # any run longer than about 15 s, links dropped and reconnected (each time another
    # TLS handshake), hundreds of times with 50 branches.
    ("grpc.http2.min_ping_interval_without_data_ms", KEEPALIVE_MS // 2),
    ("grpc.keepalive_permit_without_calls", 1),
    *FLOW_CONTROL_OPTIONS,
]
"""The options of a branch's gRPC server (both its ports) that its peers' channels need."""


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

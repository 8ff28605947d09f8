"""One other branch as this branch reaches it: a gRPC channel, the stubs on it, and how a
call to it waits for its connection and fails.

Every call to a peer waits for the channel to be ready (``wait_for_ready``) within its
deadline instead of failing at once while the channel is between two connection attempts:
a peer that has just started is reached as soon as the next attempt connects, which the
bounded reconnect backoff makes at most a few hundred milliseconds away. A call that still
cannot reach the peer fails with ``UNAVAILABLE BRANCH_UNREACHABLE`` naming the branch,
never with the gRPC core's own text.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import grpc
from grpc_status import rpc_status

from dbank._proto import bank_pb2_grpc, replication_pb2_grpc
from dbank._status import error_from_rpc
from dbank.errors import DbankError, DeadlineExceeded, Unavailable

KEEPALIVE_MS = 5000
"""How often a branch pings an idle connection to a peer, to notice one that is gone."""

CONNECT_TIMEOUT_MS = 10_000
"""How long one connection attempt (TCP, TLS handshake, HTTP/2 settings) may take before
gRPC gives it up and tries again. gRPC takes it from ``grpc.min_reconnect_backoff_ms``
(its name notwithstanding, the minimum connect *timeout*, not a backoff). It must be far
longer than a handshake on a loaded machine: at 100 ms, 50 branches starting at once on
2 cores gave up most of their handshakes half done, and each retry was another handshake
(a run saw about 8 times as many connections as links)."""

MAX_MESSAGE_BYTES = 16 * 2**20
"""The largest message a branch takes from a peer (gRPC's default is 4 MiB): a link's
message of 8,192 ops, every id at its longest, is about 4 MiB. A customer's call is held
to less before it is parsed (``server/_guard.py``)."""

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

INITIAL_RECONNECT_BACKOFF_MS = 100
MAX_RECONNECT_BACKOFF_MS = 250
"""The longest pause between two connection attempts to a peer. A refused connection fails
at once, so this alone decides how soon a peer that has just started (or come back) is
reached: with the gRPC default (2 minutes), or the 1 s this was, a branch whose peer
started a moment after it kept failing calls to that peer until its channel tried again.
Links between branches matter more than politeness, and a bank has few of them."""

READY_WAIT = 1.0
"""How long a call that can do without one peer (borrowing asks every branch, sealing a
day asks each quiet one) waits for that peer's channel to be ready before counting it
unreachable: longer than a reconnect backoff and a handshake, so a peer that has just
started is asked, and short enough that a partition does not hold every such request for
its whole deadline. A call that needs that very peer waits for it until its deadline."""

CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", INITIAL_RECONNECT_BACKOFF_MS),
    ("grpc.min_reconnect_backoff_ms", CONNECT_TIMEOUT_MS),
    ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
    ("grpc.keepalive_time_ms", KEEPALIVE_MS),
    ("grpc.keepalive_timeout_ms", 5000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
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
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    *FLOW_CONTROL_OPTIONS,
]
"""The options of a branch's gRPC server (both its ports) that its peers' channels need."""

BRANCH_UNREACHABLE = "BRANCH_UNREACHABLE"
"""The reason of the ``Unavailable`` a call to a peer fails with when it cannot reach it
(metadata ``branch``)."""

_Request_contra = TypeVar("_Request_contra", contravariant=True)
_Response_co = TypeVar("_Response_co", covariant=True)
_Request = TypeVar("_Request")
_Response = TypeVar("_Response")
Metadata = Sequence[tuple[str, str]]


class UnaryCall(Protocol[_Request_contra, _Response_co]):
    """A unary method of a generated async stub."""

    def __call__(
        self,
        request: _Request_contra,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        wait_for_ready: bool | None = None,
    ) -> Awaitable[_Response_co]: ...


@dataclass(slots=True)
class Peer:
    branch_id: int
    address: str
    channel: grpc.aio.Channel
    replication: replication_pb2_grpc.ReplicationStub
    bank: bank_pb2_grpc.BankStub
    gave_up: float = -math.inf
    """When a bounded wait for this peer's channel last ran out (``time.monotonic``)."""

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

    async def call(
        self,
        method: UnaryCall[_Request, _Response],
        request: _Request,
        within: float,
        *,
        ready_within: float | None = None,
        metadata: Metadata = (),
    ) -> _Response:
        """Call ``method`` of this peer with ``request`` and return its answer within
        ``within`` seconds, waiting for the channel to be ready meanwhile (no more than
        ``ready_within`` seconds, if given).

        Raises:
            Unavailable: ``BRANCH_UNREACHABLE`` (metadata ``branch``): no connection to the
                peer within the time allowed, or the connection broke during the call.
            DeadlineExceeded: the peer was connected but did not answer in time.
            DbankError: the peer's own answer (its ErrorInfo read back by reason).
        """
        deadline = time.monotonic() + within
        if ready_within is not None and not await self._ready_soon(min(ready_within, within)):
            raise self.unreachable("no connection")
        try:
            return await method(
                request,
                timeout=max(0.0, deadline - time.monotonic()),
                metadata=metadata or None,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as exc:
            raise self.error(exc) from None

    def connect_now(self) -> None:
        """Start connecting, if the channel is idle, without waiting for it."""
        self.channel.get_state(try_to_connect=True)

    def up(self) -> bool:
        """Whether the channel is connected now (without starting a connection)."""
        return self.channel.get_state() is grpc.ChannelConnectivity.READY

    async def ready(self, within: float) -> bool:
        """Wait until the channel is connected (starting a connection if it is idle);
        False if it is not within ``within`` seconds."""
        state = self.channel.get_state(try_to_connect=True)
        if state is grpc.ChannelConnectivity.READY:
            return True
        try:
            async with asyncio.timeout(within):
                while state is not grpc.ChannelConnectivity.READY:
                    await self.channel.wait_for_state_change(state)
                    state = self.channel.get_state(try_to_connect=True)
        except TimeoutError:
            return False
        return True

    async def _ready_soon(self, within: float) -> bool:
        """``ready``, except that a peer whose last bounded wait ran out less than
        ``READY_WAIT`` ago, and which is still not connected, is not waited for again: while
        a peer is out of reach, the requests that can do without it (and their retries)
        pay the wait once in a while, not every time."""
        if self.channel.get_state(try_to_connect=True) is grpc.ChannelConnectivity.READY:
            return True
        if time.monotonic() - self.gave_up < READY_WAIT:
            return False
        if await self.ready(within):
            return True
        self.gave_up = time.monotonic()
        return False

    def error(self, exc: grpc.aio.AioRpcError) -> DbankError:
        """The ``DbankError`` a failed call to this peer stands for. A status with an
        ErrorInfo is the peer's own answer; one without comes from the transport: the peer
        could not be reached (or went away), unless the channel is up and the peer was
        only too slow (``DeadlineExceeded``)."""
        if has_error_info(exc):
            return error_from_rpc(exc)
        code = exc.code()
        if code is grpc.StatusCode.DEADLINE_EXCEEDED:
            if self.channel.get_state() is grpc.ChannelConnectivity.READY:
                return DeadlineExceeded(f"branch {self.branch_id} did not answer in time")
            return self.unreachable("no connection within the deadline")
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
            said = error_from_rpc(exc)  # a transport problem said in one line, if known
            known = said.reason not in (code.name, "UNAVAILABLE")
            return self.unreachable(said.reason if known else "no connection")
        return error_from_rpc(exc)

    def unreachable(self, cause: str) -> Unavailable:
        """``UNAVAILABLE BRANCH_UNREACHABLE`` naming this peer; ``cause`` in a few words."""
        return Unavailable(
            f"branch {self.branch_id} cannot be reached ({cause}); retry later",
            reason=BRANCH_UNREACHABLE,
            branch=str(self.branch_id),
        )


def has_error_info(exc: grpc.aio.AioRpcError) -> bool:
    """Whether a failed call's status carries details (dbank's ErrorInfo): then it is a
    branch's answer, not the transport's."""
    try:
        return rpc_status.from_call(exc) is not None
    except ValueError:  # details that contradict the status: not a branch's answer
        return False

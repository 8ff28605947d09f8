"""The fault tests' TCP proxy, with real sockets: forwarding, a late target, cut and restore,
delay, and a real gRPC channel through it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from dbank.hosting import TcpProxy

DEADLINE = 5.0
CHUNK = 64 * 1024
DELAY = 0.1
SERVING = health_pb2.HealthCheckResponse.SERVING
# Reconnect soon after a failed connection, so the channel is usable again right after restore.
FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 200),
]

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


# -- servers behind the proxy --------------------------------------------------------------


@pytest.fixture
async def echo_address() -> AsyncIterator[str]:
    """An asyncio echo server on the test's loop, on a free loopback port."""
    handlers: set[asyncio.Task[object]] = set()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if (task := asyncio.current_task()) is not None:
            handlers.add(task)
        try:
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    yield f"{host}:{port}"
    server.close()
    for task in handlers:
        task.cancel()
    await asyncio.gather(*handlers, return_exceptions=True)
    await server.wait_closed()


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        with contextlib.suppress(OSError):
            while data := self.request.recv(CHUNK):
                self.request.sendall(data)


@pytest.fixture
def threaded_echo_address() -> Iterator[str]:
    """A threaded echo server, for a test with no event loop of its own."""
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _EchoHandler) as server:
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        host, port = server.server_address[:2]
        yield f"{host!s}:{port}"
        server.shutdown()
        thread.join(DEADLINE)


@pytest.fixture
async def health_address() -> AsyncIterator[str]:
    """A grpc.aio server with only the standard health service (SERVING)."""
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(grace=None)


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy() as started:
        yield started


# -- clients -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def connected(address: str) -> AsyncIterator[Stream]:
    host, port = address.rsplit(":", 1)
    async with asyncio.timeout(DEADLINE):
        reader, writer = await asyncio.open_connection(host, int(port))
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def echoed(stream: Stream, data: bytes) -> bytes:
    reader, writer = stream
    writer.write(data)
    async with asyncio.timeout(DEADLINE):
        await writer.drain()
        return await reader.readexactly(len(data))


async def assert_dropped(stream: Stream) -> None:
    """The connection ends, by EOF or reset, within the deadline and with no byte."""
    reader, _ = stream
    try:
        async with asyncio.timeout(DEADLINE):
            data = await reader.read(1)
    except ConnectionResetError:
        return
    assert data == b""


async def assert_refused(address: str) -> None:
    """A new connection is dropped: reset during connect, or accepted then ended."""
    try:
        async with connected(address) as stream:
            await assert_dropped(stream)
    except ConnectionResetError:
        pass  # the reset came before the connect call had returned


def socket_to(address: str) -> socket.socket:
    host, port = address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=DEADLINE)


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"connection ended after {len(data)} of {size} bytes"
        data += chunk
    return data


def assert_socket_dropped(sock: socket.socket) -> None:
    try:
        data = sock.recv(1)  # the socket's timeout is the deadline
    except ConnectionResetError:
        return
    assert data == b""


# -- forwarding ----------------------------------------------------------------------------


async def test_bytes_flow_both_ways(proxy: TcpProxy, echo_address: str) -> None:
    proxy.set_target(echo_address)
    big = bytes(range(256)) * 4096  # 1 MiB: more than any socket buffer, so back pressure
    async with connected(proxy.address) as stream:
        assert await echoed(stream, b"hello") == b"hello"
        assert await echoed(stream, big) == big
        reader, writer = stream
        writer.write_eof()  # a half-close travels through, and the echo server's back
        async with asyncio.timeout(DEADLINE):
            assert await reader.read() == b""
    assert proxy.connections_accepted == 1
    assert proxy.bytes_forwarded == 2 * (5 + len(big))


async def test_a_target_set_after_start_is_used(proxy: TcpProxy, echo_address: str) -> None:
    await assert_refused(proxy.address)
    proxy.set_target(echo_address)
    async with connected(proxy.address) as stream:
        assert await echoed(stream, b"late") == b"late"
    assert proxy.connections_accepted == 2


def test_the_proxy_serves_synchronous_tests(threaded_echo_address: str) -> None:
    with TcpProxy(threaded_echo_address) as proxy:
        assert proxy.start() == proxy.address
        with socket_to(proxy.address) as sock:
            sock.sendall(b"sync")
            assert recv_exactly(sock, 4) == b"sync"
            proxy.cut()
            assert_socket_dropped(sock)
        proxy.restore()
        with socket_to(proxy.address) as sock:
            sock.sendall(b"again")
            assert recv_exactly(sock, 5) == b"again"
    proxy.close()  # idempotent
    with pytest.raises(RuntimeError):
        proxy.cut()


# -- cut and restore -----------------------------------------------------------------------


async def test_cut_breaks_connections_until_restore(proxy: TcpProxy, echo_address: str) -> None:
    proxy.set_target(echo_address)
    async with connected(proxy.address) as first, connected(proxy.address) as second:
        assert await echoed(first, b"one") == b"one"
        assert await echoed(second, b"two") == b"two"
        assert proxy.active_connections == 2
        proxy.cut()
        assert proxy.is_cut
        assert proxy.active_connections == 0
        await assert_dropped(first)
        await assert_dropped(second)
    await assert_refused(proxy.address)
    proxy.restore()
    async with connected(proxy.address) as stream:
        assert await echoed(stream, b"back") == b"back"
    assert proxy.connections_accepted == 4


# -- delay ---------------------------------------------------------------------------------


async def test_delay_adds_latency_each_way_and_keeps_order(
    proxy: TcpProxy, echo_address: str
) -> None:
    proxy.set_target(echo_address)
    async with connected(proxy.address) as stream:
        proxy.delay(DELAY)
        started = time.monotonic()
        assert await echoed(stream, b"slow") == b"slow"
        # Once on the way to the echo server and once back; a lower bound only.
        assert time.monotonic() - started >= 2 * DELAY

        reader, writer = stream
        messages = [f"message {n};".encode() for n in range(50)]
        for message in messages:
            writer.write(message)
        expected = b"".join(messages)
        async with asyncio.timeout(DEADLINE):
            assert await reader.readexactly(len(expected)) == expected

        proxy.delay(0)
        assert await echoed(stream, b"fast") == b"fast"
    with pytest.raises(ValueError, match="delay"):
        proxy.delay(-1)


# -- gRPC over the proxy -------------------------------------------------------------------


async def test_a_grpc_channel_fails_unavailable_while_cut_and_recovers(
    proxy: TcpProxy, health_address: str
) -> None:
    proxy.set_target(health_address)
    request = health_pb2.HealthCheckRequest()
    async with grpc.aio.insecure_channel(proxy.address, options=FAST_RECONNECT) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        assert (await stub.Check(request, timeout=DEADLINE)).status == SERVING
        watch = stub.Watch(request, timeout=DEADLINE)
        assert (await watch.read()).status == SERVING

        proxy.cut()
        with pytest.raises(grpc.aio.AioRpcError) as broken:
            await watch.read()
        assert broken.value.code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Check(request, timeout=DEADLINE)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

        proxy.restore()
        # wait_for_ready: the channel may still be in its reconnect backoff.
        reply = await stub.Check(request, timeout=DEADLINE, wait_for_ready=True)
        assert reply.status == SERVING


# -- arguments -----------------------------------------------------------------------------


def test_a_target_must_be_host_and_port() -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        TcpProxy("localhost")
    proxy = TcpProxy()
    with pytest.raises(RuntimeError, match="not started"):
        _ = proxy.address
    proxy.close()

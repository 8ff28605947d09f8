"""A TCP proxy in front of a branch: cut, restore or slow down the real connections that go
through it. Fault tests and the benchmarks put one on every link of a ``ProxiedBank``.

The proxy runs its own asyncio event loop in a daemon thread, so the same object serves plain
synchronous callers and async ones: a call from the caller's thread hands its work to the
proxy's loop and waits for it with a deadline, and never needs the caller's own loop to make
progress.

Typical use, with branches that learn their peers' addresses when they start::

    with TcpProxy() as to_branch_2:            # listens on 127.0.0.1, a free port
        branch_1 = start_branch(1, ..., peers={2: to_branch_2.address})
        branch_2 = start_branch(2, ...)
        to_branch_2.set_target(branch_2.address)
        to_branch_2.cut()                      # every connection reset, new ones refused
        to_branch_2.restore()                  # new connections flow again

A connection the proxy refuses (no target yet, or while cut) is accepted and reset at once,
which a client sees as it would see a refused connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

#: How long a call from the test thread waits for the proxy's loop to do what it asked.
CALL_DEADLINE = 10.0
#: How long the proxy waits for its target to accept a connection before resetting the client.
CONNECT_DEADLINE = 5.0
_CHUNK = 64 * 1024
#: Chunks read ahead of a (possibly delayed) writer before the reader stops reading: keeps
#: TCP's back pressure through the proxy.
_QUEUED_CHUNKS = 64
#: SO_LINGER on with a zero timeout: close() sends a RST instead of a FIN.
_LINGER_ZERO = struct.pack("ii", 1, 0)

_T = TypeVar("_T")
# A chunk and the loop time before which it must not be written; None marks the end of input.
_Queued = tuple[float, bytes] | None


def _parse_target(target: str) -> tuple[str, int]:
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"target must be HOST:PORT, got {target!r}")
    return host.strip("[]"), int(port)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close a connection abortively: the peer gets a RST, so it notices at once."""
    transport = writer.transport
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Fails harmlessly (EBADF) when the socket is already closed.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    transport.abort()


async def _connect_first(
    targets: tuple[tuple[str, int], ...],
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the first of ``targets`` that accepts one.

    Raises:
        OSError: every target refused (or timed out); the last one's error.
    """
    for target in targets[:-1]:
        with contextlib.suppress(OSError):
            async with asyncio.timeout(CONNECT_DEADLINE):
                return await asyncio.open_connection(*target)
    async with asyncio.timeout(CONNECT_DEADLINE):
        return await asyncio.open_connection(*targets[-1])


@dataclass(eq=False)
class _Link:
    """One client connection and, once connected, its connection to the target."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    task: asyncio.Task[None] | None = None
    reset: bool = False

    def reset_sockets(self) -> None:
        """Reset both connections; a no-op on a connection already closed."""
        self.reset = True
        for writer in (self.client, self.upstream):
            if writer is not None:
                _reset(writer)

    def abort(self) -> None:
        """Reset both connections and stop forwarding (idempotent)."""
        self.reset_sockets()
        if self.task is not None:
            self.task.cancel()

    async def wait_gone(self) -> None:
        """Wait until the forwarding task ended and both sockets are closed."""
        waits: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(w.wait_closed()) for w in (self.client, self.upstream) if w
        ]
        if self.task is not None:
            waits.append(self.task)
        await asyncio.gather(*waits, return_exceptions=True)


class TcpProxy:
    """A TCP proxy on 127.0.0.1 that tests can cut, restore and slow down.

    Every method may be called from any thread but the proxy's own. ``cut``, ``restore``,
    ``start`` and ``close`` return only once the proxy's loop has done what they ask.
    """

    def __init__(self, target: str | None = None) -> None:
        """Make a proxy, not yet listening.

        Args:
            target: where to forward connections, as ``HOST:PORT``; may be set later with
                ``set_target``. Until it is set, every connection is reset on arrival.
        """
        self._targets: tuple[tuple[str, int], ...] = (
            () if target is None else (_parse_target(target),)
        )
        self._delay = 0.0
        self._is_cut = False
        self._connections_accepted = 0
        self._bytes_forwarded = 0
        self._links: set[_Link] = set()
        self._address: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._closed = False
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> str:
        """Listen on a free port of 127.0.0.1 and return the address, ``"127.0.0.1:PORT"``.

        Calling it again returns the same address.

        Raises:
            RuntimeError: the proxy was closed.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the proxy is closed")
            if self._address is not None:
                return self._address
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._run_loop, args=(self._loop,), name="tcp-proxy", daemon=True
            )
            self._thread.start()
            try:
                self._address = self._call(self._listen())
            except BaseException:
                self._stop_loop()
                raise
            return self._address

    def close(self) -> None:
        """Stop listening, reset every connection and stop the proxy's thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._loop is None:
                return
            try:
                self._call(self._shutdown())
            finally:
                self._stop_loop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- what tests control ----------------------------------------------------------------

    @property
    def address(self) -> str:
        """Where clients connect, ``"127.0.0.1:PORT"``.

        Raises:
            RuntimeError: the proxy is not started.
        """
        if self._address is None:
            raise RuntimeError("the proxy is not started")
        return self._address

    def set_target(self, target: str, *fallbacks: str) -> None:
        """Forward connections accepted from now on to ``target`` (``HOST:PORT``), or, if
        it refuses them, to the first of ``fallbacks`` that accepts: a load balancer in
        front of several processes serving one branch.

        Connections already open keep their target.

        Raises:
            ValueError: a target is not ``HOST:PORT``.
        """
        self._targets = tuple(_parse_target(t) for t in (target, *fallbacks))

    def cut(self) -> None:
        """Reset every open connection, both ways at once, and reset new ones on arrival.

        Returns once every connection through the proxy is closed. Idempotent.
        """
        self._call(self._cut())

    def restore(self) -> None:
        """Forward new connections again after ``cut`` (idempotent).

        Returns once the next connection accepted will be forwarded.
        """
        self._call(self._restore())

    def delay(self, seconds: float) -> None:
        """Hold every chunk read from now on for ``seconds`` before forwarding it.

        Applies in both directions and keeps the order of bytes within a connection, so a
        request and its reply each arrive at least ``seconds`` late. ``0`` turns it off.

        Raises:
            ValueError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError(f"delay must be >= 0, got {seconds}")
        self._delay = float(seconds)

    @property
    def is_cut(self) -> bool:
        """Whether the proxy is cut (between ``cut`` and ``restore``)."""
        return self._is_cut

    @property
    def connections_accepted(self) -> int:
        """Connections accepted so far, including those reset on arrival."""
        return self._connections_accepted

    @property
    def active_connections(self) -> int:
        """Connections open through the proxy now (connected or connecting to the target)."""
        return len(self._links)

    @property
    def bytes_forwarded(self) -> int:
        """Bytes handed to either side so far, both directions together."""
        return self._bytes_forwarded

    # -- the test thread's side ------------------------------------------------------------

    def _call(self, work: Coroutine[Any, Any, _T]) -> _T:
        loop = self._loop
        if loop is None or loop.is_closed():
            work.close()
            raise RuntimeError("the proxy is not running")
        if self._thread is threading.current_thread():
            work.close()
            raise RuntimeError("TcpProxy must not be called from its own thread")
        future = asyncio.run_coroutine_threadsafe(work, loop)
        try:
            return future.result(timeout=CALL_DEADLINE)
        except TimeoutError:
            future.cancel()
            raise

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            loop.close()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=CALL_DEADLINE)

    # -- the proxy's loop ------------------------------------------------------------------

    async def _listen(self) -> str:
        self._server = await asyncio.start_server(self._on_client, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"{host}:{port}"

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._reset_all()
        if self._server is not None:
            await self._server.wait_closed()

    async def _cut(self) -> None:
        self._is_cut = True
        await self._reset_all()

    async def _restore(self) -> None:
        self._is_cut = False

    async def _reset_all(self) -> None:
        links = list(self._links)
        self._links.clear()
        for link in links:
            link.abort()
        async with asyncio.timeout(CALL_DEADLINE):
            await asyncio.gather(*(link.wait_gone() for link in links))

    def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections_accepted += 1
        targets = self._targets
        if self._is_cut or self._closed or not targets:
            _reset(writer)
            return
        link = _Link(client=writer)
        self._links.add(link)
        link.task = asyncio.get_running_loop().create_task(self._forward(link, reader, targets))

    async def _forward(
        self,
        link: _Link,
        client_reader: asyncio.StreamReader,
        targets: tuple[tuple[str, int], ...],
    ) -> None:
        try:
            upstream_reader, link.upstream = await _connect_first(targets)
            if link.reset:  # cut while connecting
                return
            async with asyncio.TaskGroup() as group:
                group.create_task(self._pipe(client_reader, link.upstream))
                group.create_task(self._pipe(upstream_reader, link.client))
        except* OSError:  # TimeoutError included
            pass  # the target refused, or one side reset: the finally resets the other
        else:
            await self._close_gracefully(link)
        finally:
            # Also on cancellation or a bug: no socket outlives its forwarding task.
            link.reset_sockets()
            self._links.discard(link)

    @staticmethod
    async def _close_gracefully(link: _Link) -> None:
        for writer in (link.client, link.upstream):
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction until end of input, then half-close the writer's side.

        A reader task and a writer task share a bounded queue, so a delay holds each chunk
        for its own due time (latency) rather than adding up over a stream of chunks.
        """
        queue: asyncio.Queue[_Queued] = asyncio.Queue(maxsize=_QUEUED_CHUNKS)
        async with asyncio.TaskGroup() as group:
            group.create_task(self._read_into(reader, queue))
            group.create_task(self._write_from(queue, writer))

    async def _read_into(self, reader: asyncio.StreamReader, queue: asyncio.Queue[_Queued]) -> None:
        loop = asyncio.get_running_loop()
        due = 0.0
        while data := await reader.read(_CHUNK):
            # max(): a delay shortened meanwhile must not let a chunk overtake an earlier one.
            due = max(due, loop.time() + self._delay)
            await queue.put((due, data))
        await queue.put(None)

    async def _write_from(
        self, queue: asyncio.Queue[_Queued], writer: asyncio.StreamWriter
    ) -> None:
        loop = asyncio.get_running_loop()
        while (item := await queue.get()) is not None:
            due, data = item
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)  # the delay asked for by the test, not a wait
            # Counted first, so a test that has received the bytes also sees them counted.
            self._bytes_forwarded += len(data)
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

"""Starting the branches of a scenario run, knowing when they are up, stopping them again.

Every branch is a real ``BranchServer`` on its own free loopback port with its own store
(a SQLite file, or its keys in one Redis); every other branch is its peer. Ports are
chosen before anything starts, so each branch knows its peers' addresses from the outset.
There are two ways to host them:

* ``ForkedBranches`` (the default): one OS process per branch, made with ``os.fork()``
  from the runner once it has imported everything and before it has created any gRPC
  object or event loop (gRPC is not fork-safe once used). A forked child costs no
  interpreter start and no imports (about 0.2 s of CPU each otherwise); the children wait
  at a gate until the last one is forked, so that they do not slow the forking down. A
  child dies with the runner (``PR_SET_PDEATHSIG`` on Linux), serves until SIGTERM, stops
  cleanly and leaves with ``os._exit``, never returning into the runner's code. Each child
  holds the write end of a status pipe: it writes ``ready`` once it serves, or
  ``error: ...`` if it cannot start, and the pipe's end of file is how the runner learns
  that it exited.
* ``InProcessBranches``: every ``BranchServer`` in the runner's own event loop.

Either way "up" means every branch's health service ``dbank.v1.Replication`` is SERVING,
i.e. its replication streams to all of its peers are up (``wait_connected``).

Branches that keep their state in Redis keep it under their branch's keys
(``dbank:{bN}:``), which are the same in every run, so a run needs a database of its own:
state left by an earlier run of the same file would carry on under the same genesis op and
change the answers, and two runs at once would share their branches. Before any branch
starts, ``claim_database`` checks that the Redis keeps acknowledged writes (as each branch
does again) and claims the database: it sets ``RUN_KEY`` unless it exists (``SET NX``: of
two runs started at once, one wins), then checks that this key is the only one. The state
and the key stay after the run, like a ``--data`` directory, for anyone to look at; the
next run needs another database, or this one emptied.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import datetime as dt
import gc
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis.exceptions import RedisError

from dbank import _event_loop as event_loop
from dbank.branch import BranchConfig
from dbank.ledger import Op
from dbank.server import BranchServer, collect_less_often
from dbank.server._branch_server import REPLICATION_SERVICE
from dbank.store import (
    RedisAddress,
    StoreUnusable,
    UnsafeSettings,
    connect_redis,
    durability_problems,
    parse_redis_url,
)

__all__ = [
    "ForkedBranches",
    "InProcessBranches",
    "RunError",
    "bank_configs",
    "claim_database",
    "wait_connected",
]

HOST = "127.0.0.1"
STOP_GRACE = 1.0
"""Seconds a stopping branch lets requests in flight finish; by then the run is over."""
STOP_DEADLINE = 10.0
"""Seconds the branch processes get to stop after SIGTERM before they are killed."""
RUN_KEY = "dbank:run"
"""Says which run a Redis database belongs to; outside every branch's keys."""

_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


class RunError(Exception):
    """A run could not complete: a branch failed to start, exited, or did not connect in
    time, or the runner was told to stop. The message is one line for people.

    Attributes:
        exit_status: what ``dbank run`` exits with (1, or 128 + the signal's number).
    """

    def __init__(self, message: str, *, exit_status: int = 1) -> None:
        super().__init__(message)
        self.exit_status = exit_status


def bank_configs(
    branch_ids: Iterable[int],
    data_dir: Path | None,
    genesis: Op | None = None,
    trace_dir: Path | None = None,
    *,
    redis: RedisAddress | None = None,
    unsafe_redis: bool = False,
) -> list[BranchConfig]:
    """One configuration per branch: a free loopback port each, the store in ``data_dir``
    (``branch-ID.sqlite3``) or in ``redis`` (each branch under its own keys; then
    ``unsafe_redis`` says whether its settings may lose writes), every other branch as a
    peer, the bank's genesis op, and where to record the branch's Lamport trace, if
    anywhere."""
    ids = sorted(branch_ids)
    addresses = {i: f"{HOST}:{port}" for i, port in zip(ids, free_ports(len(ids)), strict=True)}
    return [
        BranchConfig(
            branch_id=i,
            listen=addresses[i],
            data_dir=data_dir,
            peers={j: address for j, address in addresses.items() if j != i},
            store=redis,
            unsafe_redis=unsafe_redis,
            genesis=genesis,
            trace_dir=trace_dir,
        )
        for i in ids
    ]


def _store_problem(exc: BaseException) -> str | None:
    """What is wrong with a branch's store, if ``exc`` says its store cannot be used as
    configured: a mistake in the setup (``dbank run`` exits with status 2), not a failure.
    """
    if isinstance(exc, UnsafeSettings):
        return f"{exc.message}; --unsafe-redis runs it anyway"
    if isinstance(exc, StoreUnusable):
        return exc.message
    return None


def claim_database(url: str, *, unsafe: bool = False) -> RedisAddress:
    """Make the empty Redis database at ``url`` (``redis://HOST:PORT/DB``) this run's, and
    return its address. Runs an event loop of its own and leaves no thread behind, so the
    runner may fork its branches afterwards.

    Raises:
        RunError: (``exit_status`` 2) ``url`` is malformed, Redis cannot be reached, its
            settings can lose acknowledged writes (unless ``unsafe``), or the database
            holds another run's state or any other key.
    """
    try:
        address = parse_redis_url(url)
    except ValueError as exc:
        raise RunError(str(exc), exit_status=2) from None
    event_loop.run(_claim(address, unsafe))
    return address


async def _claim(address: RedisAddress, unsafe: bool) -> None:
    client = connect_redis(address)
    flush = f"redis-cli -h {address.host} -p {address.port} -n {address.db} FLUSHDB"
    emptied = f"give an empty database, or empty this one ({flush})"
    try:
        problems = await durability_problems(client)
        if problems and not unsafe:
            raise RunError(
                f"the Redis at {address} can lose acknowledged writes: {'; '.join(problems)}."
                " A branch that loses ops it has acknowledged endangers the whole bank;"
                " --unsafe-redis runs it anyway",
                exit_status=2,
            )
        if not await client.set(RUN_KEY, _this_run(), nx=True):
            earlier = await client.get(RUN_KEY)
            holder = earlier.decode() if isinstance(earlier, bytes) else "another dbank run"
            raise RunError(f"{address} holds the state of {holder}; {emptied}", exit_status=2)
        others = int(await client.dbsize()) - 1
        if others:
            await client.delete(RUN_KEY)
            keys = "1 key" if others == 1 else f"{others} keys"
            raise RunError(
                f"{address} is not empty ({keys}): a run keeps its branches' state in a"
                f" database of its own; {emptied}",
                exit_status=2,
            )
    except (RedisError, OSError) as exc:
        raise RunError(f"cannot use {address}: {exc}", exit_status=2) from None
    finally:
        await client.aclose()


def _this_run() -> str:
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return f"a dbank run started {started} by pid {os.getpid()} on {socket.gethostname()}"


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that were free a moment ago (bound together, then closed).

    Another program could take one before its branch binds it; that branch then fails to
    start with a clear message, which is rare enough on loopback not to retry."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


async def wait_connected(addresses: Mapping[int, str]) -> None:
    """Return once every branch reports ``dbank.v1.Replication`` SERVING: its streams to
    all of its peers are up. Watches each branch's health (no polling); the caller bounds
    the wait.

    Raises:
        RunError: a branch ended its health watch before that.
    """
    await asyncio.gather(*(_serving(i, address) for i, address in addresses.items()))


async def _serving(branch_id: int, address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=REPLICATION_SERVICE)
        watch = stub.Watch(request, wait_for_ready=True)
        try:
            async for update in watch:
                if update.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        except grpc.aio.AioRpcError as exc:
            problem = f"{exc.code().name}: {exc.details()}"
            message = f"branch {branch_id} at {address}: health watch failed: {problem}"
            raise RunError(message) from None
        finally:
            watch.cancel()
    raise RunError(f"branch {branch_id} at {address} ended its health watch before SERVING")


# In-process ------------------------------------------------------------------------------


class InProcessBranches:
    """Every branch as a ``BranchServer`` in the caller's event loop."""

    def __init__(self, configs: Sequence[BranchConfig]) -> None:
        self.configs = list(configs)
        self.addresses = {config.branch_id: config.listen for config in configs}
        self._servers: list[BranchServer] = []

    async def start(self, on_exit: Callable[[RunError], None]) -> None:
        """Start every branch (``on_exit`` is never called: a branch here cannot exit on
        its own)."""
        started = await asyncio.gather(
            *(BranchServer.start(config) for config in self.configs), return_exceptions=True
        )
        for result in started:
            if isinstance(result, BranchServer):
                self._servers.append(result)
        for config, result in zip(self.configs, started, strict=True):
            if isinstance(result, BaseException):
                problem = _store_problem(result)
                if problem is not None:
                    raise RunError(_unusable(config.branch_id, problem), exit_status=2)
                raise RunError(f"branch {config.branch_id} failed to start: {result}")

    async def stop(self, *, graceful: bool = True) -> None:
        """Stop every branch cleanly (``graceful`` or not: in one process a clean stop
        costs little, and cutting streams short makes gRPC complain on standard error)."""
        servers, self._servers = self._servers, []
        await asyncio.gather(*(server.stop(STOP_GRACE) for server in servers))


# Forked processes --------------------------------------------------------------------------


@dataclass
class _Child:
    """One forked branch process, as its parent sees it."""

    branch_id: int
    pid: int
    status_fd: int
    """Read end of the status pipe; closed once the child has exited."""
    lines: list[str] = field(default_factory=list)
    buffer: bytes = b""
    exit_status: int | None = None
    """``os.waitstatus_to_exitcode`` once reaped (negative: killed by that signal)."""
    ready: asyncio.Event | None = None
    exited: asyncio.Event | None = None

    def said(self, prefix: str) -> str | None:
        """The rest of the first line the child said that starts with ``prefix``: what
        went wrong (``error: ``), or what is wrong with its store (``unusable: ``)."""
        said = (line.removeprefix(prefix) for line in self.lines if line.startswith(prefix))
        return next(said, None)

    def how_it_ended(self) -> str:
        if self.exit_status is None:
            return "exited"
        if self.exit_status < 0:
            return f"exited (killed by {signal.Signals(-self.exit_status).name})"
        return f"exited (status {self.exit_status})"


class ForkedBranches:
    """One forked OS process per branch. ``fork()`` them before any gRPC object or event
    loop exists; then, in the event loop, ``await start(on_exit)`` and at the end ``await
    stop()``; and in all cases call ``kill()`` after the loop, which kills and reaps
    whatever is left."""

    def __init__(self, configs: Sequence[BranchConfig], children: Sequence[_Child]) -> None:
        self.configs = list(configs)
        self.addresses = {config.branch_id: config.listen for config in configs}
        self.children = {child.branch_id: child for child in children}
        self._expecting_exits = False

    @property
    def pids(self) -> dict[int, int]:
        return {child.branch_id: child.pid for child in self.children.values()}

    @classmethod
    def fork(cls, configs: Sequence[BranchConfig]) -> ForkedBranches:
        """Fork one child per branch; the children start serving once all are forked.

        Must be called before this process creates any gRPC object, event loop or thread.
        """
        sys.stdout.flush()
        sys.stderr.flush()
        # The children wait at a gate (the end of file of a pipe) until every one is forked:
        # children that started at once would take the CPU from the forking still to do
        # (on 2 cores, forking 50 branches then took seconds instead of a tenth of one).
        gate, opener = os.pipe()
        # What exists now is shared with every child: frozen, their collections skip it
        # and leave its pages shared instead of copying them (50 children: seconds).
        gc.freeze()
        children: list[_Child] = []
        try:
            for config in configs:
                not_theirs = [opener, *(child.status_fd for child in children)]
                children.append(_fork_one(config, gate, not_theirs))
        except BaseException:
            ForkedBranches(configs, children).kill()
            raise
        finally:
            os.close(gate)
            os.close(opener)
        return cls(configs, children)

    async def start(self, on_exit: Callable[[RunError], None]) -> None:
        """Return once every branch serves (it said ``ready``). From now until ``stop()``,
        a branch that exits, before it serves or after, calls ``on_exit`` with the error to
        report (the caller then stops waiting here)."""
        loop = asyncio.get_running_loop()
        ready = []
        for child in self.children.values():
            child.ready, child.exited = asyncio.Event(), asyncio.Event()
            loop.add_reader(child.status_fd, self._on_status, child, on_exit)
            ready.append(child.ready.wait())
        await asyncio.gather(*ready)

    async def stop(self, *, graceful: bool = True) -> None:
        """SIGTERM every branch and wait for it to stop; SIGKILL it after
        ``STOP_DEADLINE``. Reaps them all. Not ``graceful``: SIGKILL at once."""
        if not graceful:
            self.kill()
            return
        self._expecting_exits = True
        running = [child for child in self.children.values() if child.exit_status is None]
        _signal(running, signal.SIGTERM)
        waits = [child.exited.wait() for child in running if child.exited is not None]
        try:
            async with asyncio.timeout(STOP_DEADLINE):
                await asyncio.gather(*waits)
        except TimeoutError:
            pass
        self.kill()

    def kill(self) -> None:
        """SIGKILL every branch process still running, and reap every one (blocking: a
        killed process ends at once). Safe to call more than once, and without a loop."""
        self._expecting_exits = True
        left = [child for child in self.children.values() if child.exit_status is None]
        _signal(left, signal.SIGKILL)
        for child in left:
            self._reap(child)

    def _on_status(self, child: _Child, on_exit: Callable[[RunError], None]) -> None:
        data = os.read(child.status_fd, 4096)
        if data:
            *lines, child.buffer = (child.buffer + data).split(b"\n")
            child.lines.extend(line.decode(errors="replace") for line in lines)
            if "ready" in child.lines and child.ready is not None:
                child.ready.set()
            return
        self._reap(child)
        if not self._expecting_exits:
            on_exit(self._exit_error(child))

    def _reap(self, child: _Child) -> None:
        """Close the child's status pipe and collect its exit status (the pipe's end of
        file, or SIGKILL, means it is exiting: the wait is short)."""
        if child.exit_status is not None:
            return
        if child.exited is not None:  # watched by a loop, which may be gone by now
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().remove_reader(child.status_fd)
            child.exited.set()
        os.close(child.status_fd)
        _, status = os.waitpid(child.pid, 0)
        child.exit_status = os.waitstatus_to_exitcode(status)

    def _exit_error(self, child: _Child) -> RunError:
        problem = child.said("unusable: ")
        if problem is not None:
            return RunError(_unusable(child.branch_id, problem), exit_status=2)
        error = child.said("error: ")
        if error is not None:
            return RunError(f"branch {child.branch_id} failed to start: {error}")
        return RunError(f"branch {child.branch_id} {child.how_it_ended()}")


def _unusable(branch_id: int, problem: str) -> str:
    return f"branch {branch_id} cannot use its store: {problem}"


def _signal(children: Iterable[_Child], signum: int) -> None:
    for child in children:
        # Not reaped yet, so the pid is still this child's (at worst a zombie).
        os.kill(child.pid, signum)


def _fork_one(config: BranchConfig, gate: int, not_theirs: Sequence[int]) -> _Child:
    """Fork the process of one branch. Signals stay blocked across the fork, so that a
    Ctrl-C cannot run the parent's handlers in the child."""
    parent = os.getpid()
    status, status_for_child = os.pipe()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        pid = os.fork()
        if pid == 0:
            for fd in (status, *not_theirs):
                os.close(fd)
            _child(config, status_for_child, gate, parent, mask)
    except BaseException:
        os.close(status)
        raise
    finally:
        if os.getpid() == parent:
            os.close(status_for_child)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    return _Child(config.branch_id, pid, status)


def _child(
    config: BranchConfig, status_fd: int, gate: int, parent: int, mask: Iterable[int]
) -> NoReturn:
    """The whole life of a branch process; never returns into the parent's code."""
    code = 1
    try:
        # The runner decides when branches stop: Ctrl-C at a terminal reaches the whole
        # process group, and the runner then sends SIGTERM.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _die_with_parent(parent)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.read(gate, 1)  # end of file once the parent has forked every branch
        os.close(gate)
        event_loop.run(_serve(config, status_fd))
        code = 0
    except BaseException as exc:  # reported to the parent, then this process exits
        problem = _store_problem(exc)
        if problem is not None:
            _tell(status_fd, f"unusable: {problem}")
        else:
            _tell(status_fd, f"error: {exc or type(exc).__name__}")
    finally:
        sys.stderr.flush()
        os._exit(code)


def _die_with_parent(parent: int) -> None:
    """Have the kernel send SIGTERM to this process when its parent dies (Linux)."""
    if _LIBC is not None and _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the prctl took effect
        os._exit(1)


async def _serve(config: BranchConfig, status_fd: int) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    server = await BranchServer.start(config)
    collect_less_often()
    try:
        _tell(status_fd, "ready")
        await stop.wait()
    finally:
        await server.stop(STOP_GRACE)


def _tell(status_fd: int, line: str) -> None:
    # If the parent is gone, the write fails and PR_SET_PDEATHSIG ends this process.
    with contextlib.suppress(OSError):
        os.write(status_fd, line.replace("\n", " ").encode() + b"\n")

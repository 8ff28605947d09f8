"""One OS process per branch, forked from the caller.

The processes are made with ``os.fork()`` once the caller has imported everything and
before it has created any gRPC object or event loop (gRPC is not fork-safe once used). A
forked child costs no interpreter start and no imports (about 0.2 s of CPU each otherwise);
the children wait at a gate until the last one is forked, so that they do not slow the
forking down. A child dies with its parent (``PR_SET_PDEATHSIG`` on Linux), serves until
SIGTERM, stops cleanly and leaves with ``os._exit``, never returning into the caller's
code. Each child holds the write end of a status pipe: it writes ``ready`` once it serves,
or ``error: ...`` if it cannot start, and the pipe's end of file is how the parent learns
that it exited.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import os
import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from dbank import _event_loop as event_loop
from dbank.branch import BranchConfig
from dbank.hosting._configs import store_problem, unusable
from dbank.hosting._errors import RunError
from dbank.hosting._in_process import STOP_GRACE
from dbank.server import BranchCredentials, BranchServer, collect_less_often

STOP_DEADLINE = 10.0
"""Seconds the branch processes get to stop after SIGTERM before they are killed."""

_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


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
    loop exists; then, in the event loop, ``await start(on_exit, on_ready)`` and at the
    end ``await stop()``; and in all cases call ``kill()`` after the loop, which kills and
    reaps whatever is left."""

    def __init__(self, configs: Sequence[BranchConfig], children: Sequence[_Child]) -> None:
        self.configs = list(configs)
        self.addresses = {config.branch_id: config.listen for config in configs}
        self.children = {child.branch_id: child for child in children}
        self._expecting_exits = False

    @property
    def pids(self) -> dict[int, int]:
        return {child.branch_id: child.pid for child in self.children.values()}

    @classmethod
    def fork(cls, configs: Sequence[BranchConfig], tokens: Sequence[str] = ()) -> ForkedBranches:
        """Fork one child per branch; the children start serving once all are forked.
        ``tokens``: tokens the branches' callers will bring, verified here once so that
        every branch knows them proven (a first verification costs about 1 ms in a new
        child, on its first request's path).

        Must be called before this process creates any gRPC object, event loop or thread.
        """
        sys.stdout.flush()
        sys.stderr.flush()
        # Each secure branch's TLS material, read and checked here, warm, for all: 50
        # branches' took 13 ms here, against about 2.7 ms each in a new child.
        credentials = BranchCredentials.load_all(configs, tokens)
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
                loaded = credentials.get(config.branch_id)
                children.append(_fork_one(config, loaded, gate, not_theirs))
        except BaseException:
            ForkedBranches(configs, children).kill()
            raise
        finally:
            os.close(gate)
            os.close(opener)
        return cls(configs, children)

    async def start(
        self, on_exit: Callable[[RunError], None], on_ready: Callable[[int], None]
    ) -> None:
        """Return once every branch serves (it said ``ready``), calling ``on_ready`` with
        each one's id as it does. From now until ``stop()``, a branch that exits, before it
        serves or after, calls ``on_exit`` with the error to report (the caller then stops
        waiting here)."""
        loop = asyncio.get_running_loop()
        ready = []
        for child in self.children.values():
            child.ready, child.exited = asyncio.Event(), asyncio.Event()
            loop.add_reader(child.status_fd, self._on_status, child, on_exit, on_ready)
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

    def _on_status(
        self,
        child: _Child,
        on_exit: Callable[[RunError], None],
        on_ready: Callable[[int], None],
    ) -> None:
        data = os.read(child.status_fd, 4096)
        if data:
            *lines, child.buffer = (child.buffer + data).split(b"\n")
            child.lines.extend(line.decode(errors="replace") for line in lines)
            ready = child.ready
            if "ready" in child.lines and ready is not None and not ready.is_set():
                ready.set()
                on_ready(child.branch_id)
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
            return RunError(unusable(child.branch_id, problem), exit_status=2)
        error = child.said("error: ")
        if error is not None:
            return RunError(f"branch {child.branch_id} failed to start: {error}")
        return RunError(f"branch {child.branch_id} {child.how_it_ended()}")


def _signal(children: Iterable[_Child], signum: int) -> None:
    for child in children:
        # Not reaped yet, so the pid is still this child's (at worst a zombie).
        os.kill(child.pid, signum)


def _fork_one(
    config: BranchConfig,
    credentials: BranchCredentials | None,
    gate: int,
    not_theirs: Sequence[int],
) -> _Child:
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
            _child(config, credentials, status_for_child, gate, parent, mask)
    except BaseException:
        os.close(status)
        raise
    finally:
        if os.getpid() == parent:
            os.close(status_for_child)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    return _Child(config.branch_id, pid, status)


def _child(
    config: BranchConfig,
    credentials: BranchCredentials | None,
    status_fd: int,
    gate: int,
    parent: int,
    mask: Iterable[int],
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
        event_loop.run(_serve(config, credentials, status_fd))
        code = 0
    except BaseException as exc:  # reported to the parent, then this process exits
        problem = store_problem(exc)
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


async def _serve(
    config: BranchConfig, credentials: BranchCredentials | None, status_fd: int
) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    server = await BranchServer.start(config, credentials)
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

"""A bank of local ``dbank branch`` processes for development (``dbank cluster``).

Each branch is a ``dbank branch`` child process; the cluster stops them all (SIGTERM, then
SIGKILL after a grace period) on Ctrl-C, on SIGTERM, or as soon as one of them exits.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from dbank.store import RedisAddress

STOP_GRACE = 10.0


@dataclass(frozen=True, slots=True)
class StoreChoice:
    """Where the branches keep their state: each a SQLite file under ``data_dir``, or all
    in one Redis (each branch under its own keys)."""

    data_dir: Path
    redis: RedisAddress | None = None
    unsafe_redis: bool = False

    def flags(self, branch_id: int) -> list[str]:
        if self.redis is None:
            return ["--data", str(self.data_dir / f"branch-{branch_id}")]
        return ["--store", str(self.redis), *(["--unsafe-redis"] if self.unsafe_redis else [])]

    def __str__(self) -> str:
        return f"data in {self.data_dir}" if self.redis is None else f"state in {self.redis}"


@dataclass(frozen=True, slots=True)
class ClusterLayout:
    """Where each branch serves: ``addresses`` for customers; for a secure bank
    (``tls_dir``) ``peer_addresses`` for the other branches (mutual TLS)."""

    addresses: dict[int, str]
    tls_dir: Path | None = None
    peer_addresses: dict[int, str] = field(default_factory=dict)

    def flags(self, branch_id: int) -> list[str]:
        if self.tls_dir is None:
            peers = self.addresses
            security = ["--insecure"]
        else:
            peers = self.peer_addresses
            security = ["--tls-dir", str(self.tls_dir)]
            security += ["--peer-listen", self.peer_addresses[branch_id]]
        named = ",".join(f"{i}={a}" for i, a in sorted(peers.items()) if i != branch_id)
        return [*security, *(["--peers", named] if named else [])]


def branch_command(branch_id: int, layout: ClusterLayout, stores: StoreChoice) -> list[str]:
    """The command line of one branch of the bank ``layout`` describes."""
    command = [sys.executable, "-m", "dbank", "branch", "--id", str(branch_id)]
    command += ["--listen", layout.addresses[branch_id], *stores.flags(branch_id)]
    return [*command, *layout.flags(branch_id)]


def run_cluster(layout: ClusterLayout, stores: StoreChoice, *, echo: Callable[[str], None]) -> int:
    """Run the branches until a signal or until one exits; return the exit status."""
    addresses = layout.addresses
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    children: dict[int, subprocess.Popen[bytes]] = {}
    try:
        for branch_id in sorted(addresses):
            children[branch_id] = subprocess.Popen(
                branch_command(branch_id, layout, stores), stdout=subprocess.DEVNULL
            )
            echo(f"branch {branch_id} at {addresses[branch_id]} (pid {children[branch_id].pid})")
        echo(f"{len(children)} branches running; {stores}; Ctrl-C stops them all")
        if layout.tls_dir is not None:
            echo(
                f"TLS and tokens: clients take --tls-dir {layout.tls_dir} and a token from"
                f" `dbank token issue --tls-dir {layout.tls_dir} --subject NAME --role teller`"
            )
        failed = _wait(children, stop)
        if failed is not None:
            echo(f"branch {failed} exited with status {children[failed].returncode}; stopping")
    finally:
        _stop_all(children)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0 if failed is None else 1


def _wait(children: dict[int, subprocess.Popen[bytes]], stop: threading.Event) -> int | None:
    """Block until ``stop`` is set (None) or a child exits (its branch id)."""
    exited: list[int] = []

    def watch(branch_id: int, child: subprocess.Popen[bytes]) -> None:
        child.wait()
        if not stop.is_set():
            exited.append(branch_id)
            stop.set()

    for branch_id, child in children.items():
        threading.Thread(target=watch, args=(branch_id, child), daemon=True).start()
    stop.wait()
    return exited[0] if exited else None


def _stop_all(children: dict[int, subprocess.Popen[bytes]]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children.values():
        try:
            child.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

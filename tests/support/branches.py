"""Real branch processes for tests: started with the ``dbank branch`` command on a free
loopback port, waited for by their "listening on" line and their health check."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

START_DEADLINE = 30.0
DBANK_BRANCH = (sys.executable, "-m", "dbank", "branch")


@dataclass
class BranchProcess:
    """One ``dbank branch`` process. ``address`` is where it serves."""

    branch_id: int
    data_dir: Path
    address: str
    process: subprocess.Popen[str]
    log_path: Path
    exit_codes: list[int] = field(default_factory=list)

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush or clean up."""
        self.process.send_signal(signal.SIGKILL)
        self.exit_codes.append(self.process.wait(timeout=10))
        self._close_pipe()

    def stop(self) -> int:
        """SIGTERM and wait for a clean exit; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=20)
        self.exit_codes.append(code)
        self._close_pipe()
        return code

    def _close_pipe(self) -> None:
        if self.process.stdout is not None:
            self.process.stdout.close()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


def start_branch(
    branch_id: int,
    data_dir: Path,
    listen: str = "127.0.0.1:0",
    peers: dict[int, str] | None = None,
    store: str | None = None,
) -> BranchProcess:
    """Start a branch process and return once its health check answers SERVING.

    ``store`` (``redis://HOST:PORT/DB``) keeps its state in Redis; ``data_dir`` then holds
    only its log."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"branch-{branch_id}-{time.monotonic_ns()}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                *DBANK_BRANCH,
                *("--id", str(branch_id), "--listen", listen, "--data", str(data_dir)),
                *(("--peers", ",".join(f"{i}={a}" for i, a in peers.items())) if peers else ()),
                *(("--store", store) if store else ()),
                "--verbose",
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
    try:
        address = _read_address(process, log_path)
        wait_serving(address)
    except BaseException:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
        raise
    return BranchProcess(branch_id, data_dir, address, process, log_path)


def _read_address(process: subprocess.Popen[str], log_path: Path) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=START_DEADLINE):
            raise TimeoutError(f"branch did not announce itself in {START_DEADLINE} s")
    line = process.stdout.readline()
    if " listening on " not in line:
        process.wait(timeout=10)
        raise RuntimeError(f"branch failed to start: {line!r}\n{log_path.read_text()}")
    return line.rsplit(" ", 1)[1].strip()


def wait_serving(address: str, deadline: float = START_DEADLINE, service: str = "") -> None:
    """Block until ``address`` reports ``service`` SERVING (watching its health, no polling).

    The service "dbank.v1.Replication" is SERVING once the branch's streams to all of its
    peers are up."""
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=deadline)
        stub = health_pb2_grpc.HealthStub(channel)
        updates = stub.Watch(health_pb2.HealthCheckRequest(service=service), timeout=deadline)
        try:
            for update in updates:
                if update.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        finally:
            updates.cancel()
        raise RuntimeError(f"branch at {address}: {service or 'server'} never SERVING")

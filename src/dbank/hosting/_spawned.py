"""Branch processes started with the ``dbank branch`` command: on a free loopback port,
known to be up by their "listening on" line and their health check. Tests and fault runs
use them to kill (SIGKILL) and restart real branches."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from dbank.hosting._readiness import START_DEADLINE, wait_serving
from dbank.security import load_ca

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
    peer_address: str | None = None
    """Where a secure branch serves its peers (mutual TLS); None: at ``address``."""

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
    *,
    tls_dir: Path | None = None,
    peer_listen: str = "127.0.0.1:0",
) -> BranchProcess:
    """Start a branch process and return once its health check answers SERVING.

    ``store`` (``redis://HOST:PORT/DB``) keeps its state in Redis; ``data_dir`` then holds
    only its log. ``tls_dir``: the bank's TLS material (``dbank.security.init_pki``); the
    branch then serves its peers on ``peer_listen``, and ``peers`` name the other
    branches' peer addresses. Without it the branch runs ``--insecure``."""
    security = (
        ("--insecure",)
        if tls_dir is None
        else ("--tls-dir", str(tls_dir), "--peer-listen", peer_listen)
    )
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
                *security,
                "--verbose",
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
    try:
        address = _read_address(process, log_path, " listening on ")
        peer_address = (
            None if tls_dir is None else _read_address(process, log_path, " serving peers on ")
        )
        wait_serving(address, ca=None if tls_dir is None else load_ca(tls_dir / "ca.crt"))
    except BaseException:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
        raise
    return BranchProcess(branch_id, data_dir, address, process, log_path, peer_address=peer_address)


def _read_address(process: subprocess.Popen[str], log_path: Path, announcement: str) -> str:
    """The address in the branch's next line, which must contain ``announcement``. Reads
    the pipe's bytes itself (one at a time, a line is short): a buffered ``readline``
    could take two lines at once and leave ``select`` waiting for the second forever."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + START_DEADLINE
    line = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(timeout=left):
                raise TimeoutError(f"branch did not announce itself in {START_DEADLINE} s")
            byte = os.read(fd, 1)
            if not byte:
                break
            line += byte
    text = line.decode(errors="replace")
    if announcement not in text:
        process.wait(timeout=10)
        raise RuntimeError(f"branch failed to start: {text!r}\n{log_path.read_text()}")
    return text.rsplit(" ", 1)[1].strip()

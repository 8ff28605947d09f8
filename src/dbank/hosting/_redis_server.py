"""A real ``redis-server`` for tests and benchmarks: the machine's binary on a free loopback
port, its data in a directory of the caller's, with the durable settings of design §7.

Never the machine's own Redis on 6379: its callers own every byte of theirs. Each caller
of ``new_database`` gets a database number no other caller got, so callers that share one
server do not see each other's keys. This module only runs the process; talking to Redis
is ``dbank.store``'s.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from dbank.hosting._ports import HOST, free_ports
from dbank.store.redis import REQUIRED_SETTINGS

READY_DEADLINE = 20.0
READY_LINE = b"Ready to accept connections"
DATABASES = 1024
STOP_TIMEOUT = 10.0
INSTALL_HINT = (
    "the redis-server binary is not on PATH: install it (Debian/Ubuntu: apt-get install"
    " redis-server; Fedora: dnf install redis; macOS: brew install redis)"
)
DURABLE_SETTINGS = tuple(
    part for name, value in REQUIRED_SETTINGS.items() for part in (f"--{name}", value)
)
"""The settings a branch insists on (design §7), as redis-server flags."""


def redis_server_binary() -> str:
    """The path of the machine's ``redis-server``.

    Raises:
        FileNotFoundError: it is not on PATH; the message says how to install it.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError(INSTALL_HINT)
    return binary


@dataclass
class RedisServer:
    """One ``redis-server`` process; ``start`` again after ``kill`` reuses its directory."""

    directory: Path
    settings: tuple[str, ...] = DURABLE_SETTINGS
    port: int = field(default_factory=lambda: free_ports(1)[0])
    process: subprocess.Popen[bytes] | None = None
    _databases_used: int = 0

    @property
    def host(self) -> str:
        return HOST

    def url(self, db: int = 0) -> str:
        """``redis://HOST:PORT/DB`` of database ``db`` of this server."""
        return f"redis://{self.host}:{self.port}/{db}"

    def start(self) -> Self:
        """Start the server and return once it says it accepts connections.

        Raises:
            FileNotFoundError: ``redis-server`` is not on PATH (``redis_server_binary``).
            TimeoutError: it did not say it was ready within ``READY_DEADLINE``.
            RuntimeError: it exited before it was ready.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            redis_server_binary(),
            *("--bind", self.host, "--port", str(self.port), "--dir", str(self.directory)),
            *("--save", "", "--databases", str(DATABASES), "--daemonize", "no"),
            *self.settings,
        ]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        ready = threading.Event()
        threading.Thread(target=self._copy_log, args=(self.process, ready), daemon=True).start()
        if not ready.wait(READY_DEADLINE):
            self.kill()
            raise TimeoutError(f"redis-server not ready in {READY_DEADLINE} s:\n{self.log()}")
        if self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited ({self.process.returncode}):\n{self.log()}")
        return self

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def _copy_log(self, process: subprocess.Popen[bytes], ready: threading.Event) -> None:
        """Copy the server's output to its log file until it exits (so its pipe never
        fills); set ``ready`` once it accepts connections, or once it has exited."""
        assert process.stdout is not None
        with self.log_path.open("ab") as log:
            for line in process.stdout:
                log.write(line)
                log.flush()
                if READY_LINE in line:
                    ready.set()
        process.stdout.close()
        ready.set()

    def new_database(self) -> str:
        """The URL of a database number no other caller got (never 0, which ``url()``
        names by default).

        Raises:
            RuntimeError: every one of the server's ``DATABASES`` has been handed out.
        """
        self._databases_used += 1
        if self._databases_used >= DATABASES:
            raise RuntimeError(f"more than {DATABASES - 1} databases asked of one server")
        return self.url(self._databases_used)

    def kill(self) -> None:
        """SIGKILL: Redis gets no chance to flush anything it has not already fsynced."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``STOP_TIMEOUT`` (idempotent)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)

    def log(self) -> str:
        """What the server has printed so far."""
        return self.log_path.read_text() if self.log_path.exists() else ""

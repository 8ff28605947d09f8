"""A real ``redis-server`` for tests: the machine's binary on a free loopback port, its
data in a temporary directory, with the durable settings of DESIGN section 7.

Never the machine's own Redis on 6379: tests own every byte of theirs. Each caller of
``new_database`` gets an empty database of its own, so tests that share one server do not
see each other's keys.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from dbank.scenario._launch import free_ports
from dbank.store._redis_safety import REQUIRED_SETTINGS

READY_DEADLINE = 20.0
READY_LINE = b"Ready to accept connections"
DATABASES = 1024
INSTALL_HINT = (
    "the Redis store tests need the redis-server binary on PATH:"
    " install it (Debian/Ubuntu: apt-get install redis-server; Fedora: dnf install redis;"
    " macOS: brew install redis)"
)
DURABLE_SETTINGS = tuple(
    part for name, value in REQUIRED_SETTINGS.items() for part in (f"--{name}", value)
)
"""The settings a branch insists on (DESIGN section 7), as redis-server flags."""


def redis_server_binary() -> str:
    """The path of ``redis-server``; fails the test (never skips) when it is missing."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
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
        return "127.0.0.1"

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port, db=db)

    def start(self) -> RedisServer:
        """Start the server and return once it says it accepts connections."""
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
        """The URL of a database no other caller got, emptied first."""
        self._databases_used += 1
        if self._databases_used >= DATABASES:
            raise RuntimeError(f"more than {DATABASES - 1} test databases asked of one server")
        with self.client(self._databases_used) as client:
            client.flushdb()
        return self.url(self._databases_used)

    def kill(self) -> None:
        """SIGKILL: Redis gets no chance to flush anything it has not already fsynced."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

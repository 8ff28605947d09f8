"""A bank of real ``dbank branch`` processes on loopback with a ``TcpProxy`` on every link
between two branches, so that fault tests and benchmarks can cut, slow down and restore
links, and kill and restart branches.

Secure banks (``tls_dir``) keep mutual TLS between branches: a proxy fronts its target's
peer port and passes the TLS bytes through unchanged (the certificates name 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from dbank.hosting._proxy import TcpProxy
from dbank.hosting._readiness import wait_serving
from dbank.hosting._spawned import BranchProcess, start_branch
from dbank.security import load_ca
from dbank.server import REPLICATION_SERVICE


@dataclass
class ProxiedBank:
    """``branches[i]`` is branch i; ``proxies[i, j]`` carries what branch i sends to j;
    ``stores[i]``, if set, is the Redis that keeps branch i's state (else SQLite).
    ``tls_dir``: the bank's TLS material (``dbank.security.init_pki``) that every branch
    runs with; None: every branch runs ``--insecure``."""

    root: Path
    branches: dict[int, BranchProcess] = field(default_factory=dict)
    proxies: dict[tuple[int, int], TcpProxy] = field(default_factory=dict)
    stores: dict[int, str] = field(default_factory=dict)
    tls_dir: Path | None = None

    @property
    def ca(self) -> bytes | None:
        """The bank's CA certificate (PEM) to reach its branches with; None if insecure."""
        return None if self.tls_dir is None else load_ca(self.tls_dir / "ca.crt")

    @property
    def ids(self) -> list[int]:
        return sorted(self.branches)

    def address(self, branch_id: int) -> str:
        return self.branches[branch_id].address

    def start(self, branch_id: int) -> BranchProcess:
        """(Re)start branch ``branch_id`` on new ports and point its peers' proxies at it
        (at its peer port, if secure)."""
        peers = {j: self.proxies[branch_id, j].address for (i, j) in self.proxies if i == branch_id}
        process = start_branch(
            branch_id,
            self.root / f"branch-{branch_id}",
            peers=peers,
            store=self.stores.get(branch_id),
            tls_dir=self.tls_dir,
        )
        self.branches[branch_id] = process
        for (_, j), proxy in self.proxies.items():
            if j == branch_id:
                proxy.set_target(process.peer_address or process.address)
        return process

    def wait_connected(self, ids: Iterable[int] | None = None) -> None:
        """Until each branch's streams to all its peers are up."""
        ca = self.ca
        for branch_id in ids if ids is not None else self.ids:
            wait_serving(self.address(branch_id), service=REPLICATION_SERVICE, ca=ca)

    def cut(self, a: int, b: int) -> None:
        """Cut both directions between branches ``a`` and ``b``."""
        self.proxies[a, b].cut()
        self.proxies[b, a].cut()

    def cut_one_way(self, a: int, b: int) -> None:
        """Cut what branch ``a`` opens to ``b`` (its streams and calls to ``b``); ``b`` still
        reaches ``a``."""
        self.proxies[a, b].cut()

    def slow(self, a: int, b: int, seconds: float) -> None:
        """Hold everything sent between ``a`` and ``b``, both ways, for ``seconds``."""
        self.proxies[a, b].delay(seconds)
        self.proxies[b, a].delay(seconds)

    def isolate(self, branch_id: int) -> None:
        """Cut every link between branch ``branch_id`` and the others."""
        for other in self.ids:
            if other != branch_id:
                self.cut(branch_id, other)

    def heal(self) -> None:
        """Every link up and without delay again."""
        for proxy in self.proxies.values():
            proxy.restore()
            proxy.delay(0)

    def delay(self, seconds: float) -> None:
        """Hold everything sent on every link for ``seconds`` (``TcpProxy.delay``)."""
        for proxy in self.proxies.values():
            proxy.delay(seconds)

    def logs(self) -> str:
        """Every branch's log, each under a heading."""
        return "\n".join(f"--- branch {i}\n{b.log()}" for i, b in self.branches.items())


@contextmanager
def proxied_bank(
    root: Path,
    size: int = 3,
    stores: Mapping[int, str] | None = None,
    *,
    tls_dir: Path | None = None,
) -> Iterator[ProxiedBank]:
    """Start ``size`` branches (ids 1..size) with a proxy per ordered pair, return once all
    are connected, and stop them all afterwards. ``stores`` names a Redis
    (``redis://HOST:PORT/DB``) for the branches that use one. ``tls_dir``: the bank's TLS
    material, with a certificate for each branch; None: the branches run ``--insecure``."""
    with ExitStack() as stack:
        bank = ProxiedBank(root, stores=dict(stores or {}), tls_dir=tls_dir)
        for i in range(1, size + 1):
            for j in range(1, size + 1):
                if i != j:
                    proxy = stack.enter_context(TcpProxy())
                    bank.proxies[i, j] = proxy
        try:
            for i in range(1, size + 1):
                bank.start(i)
            bank.wait_connected()
            yield bank
        finally:
            for process in bank.branches.values():
                if process.process.poll() is None:
                    process.stop()

"""A branch behind its gRPC server: the Bank service, health checking and reflection."""

from __future__ import annotations

import asyncio
import logging
import math
import signal
from collections.abc import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from dbank._proto import bank_pb2_grpc, replication_pb2, replication_pb2_grpc
from dbank.branch import Branch, BranchConfig, ConfigError
from dbank.ledger import Unavailable
from dbank.replication import SERVER_OPTIONS, Replicator
from dbank.security import PkiError, TokenVerifier
from dbank.server._authentication import AuthInterceptor
from dbank.server._bank_servicer import BankServicer
from dbank.server._credentials import BranchCredentials
from dbank.server._guard import BANK_SERVICE, GuardInterceptor
from dbank.server._heap import settle_heap
from dbank.server._interceptors import ErrorInterceptor
from dbank.server._lamport import LamportInterceptor
from dbank.server._replication_servicer import ReplicationServicer
from dbank.store import Lease, SharedStore, open_store
from dbank.tracing import BranchTrace, open_branch_trace

log = logging.getLogger(__name__)

REPLICATION_SERVICE = replication_pb2.DESCRIPTOR.services_by_name["Replication"].full_name
"""Its health is SERVING while the streams to every peer are up."""
SHUTDOWN_GRACE_SECONDS = 5.0


class BranchServer:
    """Create with ``await BranchServer.start(config)``; ``await stop()`` when done."""

    def __init__(
        self,
        branch: Branch,
        replicator: Replicator,
        replication: ReplicationServicer,
        server: grpc.aio.Server,
        health: health.aio.HealthServicer,
        address: str,
        trace: BranchTrace | None = None,
    ) -> None:
        self.branch = branch
        self.trace = trace
        self.replicator = replicator
        self.address = address
        self._replication = replication
        self._server = server
        self._health = health
        self.lease_lost = asyncio.Event()
        self.peer_address: str | None = None
        """Where the branch serves its peers (mutual TLS), if apart from ``address``."""
        self._lease_keeper: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls, config: BranchConfig, credentials: BranchCredentials | None = None
    ) -> BranchServer:
        """Open the branch's store, serve it on ``config.listen`` and connect to its peers;
        record its trace into ``config.trace_dir``, if given, until it stops. A secure
        branch's ``credentials`` (``BranchCredentials.load``) are read from
        ``config.tls_dir`` unless given.

        Raises:
            Unavailable: the store cannot be opened or the address cannot be bound.
            OSError: the trace file cannot be created.
        """
        trace = open_branch_trace(config.trace_dir, config.branch_id)
        try:
            return await cls._start(config, trace, credentials)
        except BaseException:
            if trace is not None:
                trace.close()
            raise

    @classmethod
    async def _start(
        cls,
        config: BranchConfig,
        trace: BranchTrace | None,
        credentials: BranchCredentials | None,
    ) -> BranchServer:
        tls = _load_tls(config, credentials)
        opened = await open_store(config.store_spec)
        branch = await Branch.open(config, opened)
        # A store that other processes serving this branch share: the lease decides which
        # of them runs the links, and each takes in the others' commits when told.
        store = opened if isinstance(opened, SharedStore) else None
        health_servicer = health.aio.HealthServicer()
        replicator = Replicator(
            branch,
            on_links_changed=lambda: _report_links(health_servicer, replicator),
            trace=trace,
            commit_notices=None if store is None else store.commit_notices,
            channel_credentials=None if tls is None else tls.channel_credentials(),
        )
        standby = store is not None and bool(config.peers) and store.lease.token is None
        try:
            verifier = None if tls is None else tls.verifier
            server = grpc.aio.server(
                interceptors=_interceptors(branch, verifier, trace), options=SERVER_OPTIONS
            )
            bank_pb2_grpc.add_BankServicer_to_server(BankServicer(branch), server)
            replication = ReplicationServicer(
                branch, replicator.inbound, trace, secure=tls is not None
            )
            replication_pb2_grpc.add_ReplicationServicer_to_server(replication, server)
            health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
            reflection.enable_server_reflection(
                [BANK_SERVICE, REPLICATION_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME],
                server,
            )
            port = _bind(server, config.listen, None if tls is None else tls.public_credentials())
            if tls is not None and config.peer_listen is not None:
                peer_port = _bind(server, config.peer_listen, tls.peer_credentials())
                peer_host = config.peer_listen.rsplit(":", 1)[0]
                peer_address: str | None = f"{peer_host}:{peer_port}"
            else:
                peer_address = None
            await server.start()
            if standby:
                replicator.attach()
            else:
                await replicator.start()
        except BaseException:
            await replicator.close()
            await branch.close()
            raise
        for service in ("", BANK_SERVICE):
            await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
        _report_links(health_servicer, replicator)
        host = config.listen.rsplit(":", 1)[0]
        address = f"{host}:{port}"
        made = cls(branch, replicator, replication, server, health_servicer, address, trace)
        made.peer_address = peer_address
        if store is not None and config.peers:
            if standby:
                log.warning(
                    "branch %d: another process holds the replication lease; serving without"
                    " links to the other branches until this process takes it over",
                    config.branch_id,
                )
            made._hold_lease(store.lease)
        return made

    def _hold_lease(self, lease: Lease) -> None:
        """Hold the replication lease: take it once it is free (until then the process
        serves without links, ``replicator.attach``), start the links, and renew it. If it
        is lost, say so and have the process stop: its commits are fenced from then on
        (design §7.1)."""
        me = self.branch.branch_id

        async def hold() -> None:
            try:
                if lease.token is None:
                    await _take_when_free(lease)
                    # The links start from this replica's vector: first take in everything
                    # the last holder and the other processes committed.
                    await self.branch.refresh()
                    await self.replicator.start()
                    log.warning("branch %d: this process took over the replication lease", me)
                await lease.keep()
                log.critical("branch %d lost its replication lease; stopping", me)
            except Exception:
                log.exception("branch %d: holding the replication lease failed; stopping", me)
            self.lease_lost.set()

        self._lease_keeper = asyncio.create_task(hold(), name="replication-lease")

    async def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Stop taking requests, let those in flight finish, close the links and the
        store."""
        if self._lease_keeper is not None:
            self._lease_keeper.cancel()
        await self._health.enter_graceful_shutdown()
        self._replication.close()
        await self._server.stop(grace)
        await self.replicator.close()
        await self.branch.close()
        if self.trace is not None:
            self.trace.close()


def _interceptors(
    branch: Branch, verifier: TokenVerifier | None, trace: BranchTrace | None
) -> list[grpc.aio.ServerInterceptor]:
    # Errors outermost: refusals of authentication become statuses too. The guard next:
    # nothing else sees a request it has not parsed and checked. Lamport innermost: it
    # sees a handler's errors before they become statuses.
    chain: list[grpc.aio.ServerInterceptor] = [
        ErrorInterceptor(),
        GuardInterceptor(),
        AuthInterceptor(branch, verifier),
    ]
    if trace is not None:
        chain.append(LamportInterceptor(trace))
    return chain


def _load_tls(config: BranchConfig, loaded: BranchCredentials | None) -> BranchCredentials | None:
    """The branch's TLS material and token keys (``loaded``, if given), or None for an
    ``--insecure`` branch.

    Raises:
        ConfigError: the TLS directory lacks a file, or holds one that does not fit.
    """
    if config.tls_dir is None:
        return None
    if config.peers and config.peer_listen is None:
        raise ConfigError(
            f"branch {config.branch_id}: a secure branch with peers needs a peer address"
            " (--peer-listen, or peer_listen in the bank file)"
        )
    if loaded is not None:
        return loaded
    try:
        return BranchCredentials.load(config.tls_dir, config.branch_id)
    except PkiError as exc:
        raise ConfigError(str(exc)) from None


async def _take_when_free(lease: Lease) -> None:
    """Wait until this process holds the lease: a holder that dies stops renewing it and
    it runs out. While Redis cannot be reached, try again a lease's lifetime later."""
    while True:
        try:
            await lease.take(within=math.inf)
            return
        except Unavailable as exc:
            log.warning("cannot take the replication lease: %s", exc)
            await asyncio.sleep(lease.ttl_ms / 1000)


def _report_links(health_servicer: health.aio.HealthServicer, replicator: Replicator) -> None:
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if replicator.all_connected()
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    # Health updates are coroutines; a link's state change is a plain callback.
    task = asyncio.get_running_loop().create_task(health_servicer.set(REPLICATION_SERVICE, status))
    _PENDING_REPORTS.add(task)
    task.add_done_callback(_PENDING_REPORTS.discard)


_PENDING_REPORTS: set[asyncio.Task[None]] = set()


def _bind(server: grpc.aio.Server, listen: str, credentials: grpc.ServerCredentials | None) -> int:
    try:
        port: int = (
            server.add_insecure_port(listen)
            if credentials is None
            else server.add_secure_port(listen, credentials)
        )
    except RuntimeError as exc:
        raise Unavailable(f"cannot listen on {listen}: {exc}") from exc
    if port == 0:
        raise Unavailable(f"cannot listen on {listen}")
    return port


async def serve_until_signalled(
    config: BranchConfig, *, on_ready: Callable[[BranchServer], None]
) -> None:
    """Run a branch until SIGINT or SIGTERM, then shut it down cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server = await BranchServer.start(config)
    settle_heap()
    on_ready(server)
    waits = [asyncio.create_task(stop.wait()), asyncio.create_task(server.lease_lost.wait())]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for wait in waits:
        wait.cancel()
    log.info("branch %d shutting down", config.branch_id)
    await server.stop()
    if server.lease_lost.is_set():
        raise Unavailable(f"branch {config.branch_id} lost its replication lease; it stopped")

"""The configuration of every branch of a local bank, and what a store problem means."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from dbank.branch import BranchConfig, Streams
from dbank.hosting._ports import HOST, free_ports
from dbank.ledger import Op
from dbank.store import RedisAddress, StoreUnusable, UnsafeSettings


def bank_configs(
    branch_ids: Iterable[int],
    data_dir: Path | None,
    genesis: Op | None = None,
    trace_dir: Path | None = None,
    *,
    redis: RedisAddress | None = None,
    unsafe_redis: bool = False,
    tls_dir: Path | None = None,
    streams: Streams = Streams.ALWAYS,
    connect_early: Mapping[int, frozenset[int]] | None = None,
) -> list[BranchConfig]:
    """One configuration per branch: a free loopback port each, the store in ``data_dir``
    (``branch-ID.sqlite3``) or in ``redis`` (each branch under its own keys; then
    ``unsafe_redis`` says whether its settings may lose writes), every other branch as a
    peer, the bank's genesis op, and where to record the branch's Lamport trace, if
    anywhere. With ``tls_dir`` (a PKI for every branch) each branch is secure and has a
    second free port, for its peers; without, every branch runs ``--insecure``.
    ``streams``: when the branches stream their ops to each other; ``connect_early``: for
    a branch id, the peers it connects to while it starts (``BranchConfig``)."""
    ids = sorted(branch_ids)
    ports = iter(free_ports(len(ids) * (1 if tls_dir is None else 2)))
    addresses = {i: f"{HOST}:{next(ports)}" for i in ids}
    peer_addresses = addresses if tls_dir is None else {i: f"{HOST}:{next(ports)}" for i in ids}
    return [
        BranchConfig(
            branch_id=i,
            listen=addresses[i],
            data_dir=data_dir,
            peers={j: address for j, address in peer_addresses.items() if j != i},
            store=redis,
            unsafe_redis=unsafe_redis,
            genesis=genesis,
            trace_dir=trace_dir,
            tls_dir=tls_dir,
            peer_listen=None if tls_dir is None else peer_addresses[i],
            streams=streams,
            connect_early=(connect_early or {}).get(i, frozenset()),
        )
        for i in ids
    ]


def store_problem(exc: BaseException) -> str | None:
    """What is wrong with a branch's store, if ``exc`` says its store cannot be used as
    configured: a mistake in the setup (``dbank run`` exits with status 2), not a failure.
    """
    if isinstance(exc, UnsafeSettings):
        return f"{exc.message}; --unsafe-redis runs it anyway"
    if isinstance(exc, StoreUnusable):
        return exc.message
    return None


def unusable(branch_id: int, problem: str) -> str:
    return f"branch {branch_id} cannot use its store: {problem}"

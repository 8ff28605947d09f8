"""``dbank branch`` and ``dbank cluster``: serving branches."""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

import click

from dbank.branch import BranchConfig, ConfigError, load_bank_file, parse_peers
from dbank.cli._common import BRANCH_ID, Address, OneLineCommand, run_request, store_options
from dbank.store import RedisAddress, StoreUnusable, UnsafeSettings

log = logging.getLogger("dbank.branch")


class _SetupRefused(click.ClickException):
    """The branch's store or its security cannot be used as configured: a mistake in the
    setup, said in one line."""

    exit_code = 2


@click.command(cls=OneLineCommand)
@click.option("--id", "branch_id", type=BRANCH_ID, required=True, help="This branch's id.")
@click.option(
    "--listen", type=Address(listening=True), help="HOST:PORT to serve on (port 0: any free port)."
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of the branch's SQLite file (created if missing).",
)
@click.option("--peers", help="The other branches: ID=HOST:PORT,ID=HOST:PORT.")
@store_options(
    "Keep the state in this Redis instead of a SQLite file under --data. Several processes"
    " may serve one branch from one Redis; the one holding its replication lease runs the"
    " links to the other branches."
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The bank's TOML file naming every branch; flags given override it.",
)
@click.option(
    "--tls-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The bank's TLS material (dbank certs init): serve only TLS, check callers' tokens,"
    " and serve the peers with mutual TLS on --peer-listen.",
)
@click.option(
    "--peer-listen",
    type=Address(listening=True),
    help="HOST:PORT to serve the other branches on (with --tls-dir).",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Serve plaintext without authentication: every caller may do everything."
    " Development only.",
)
@click.option(
    "--max-clock-offset",
    "max_clock_offset_ms",
    type=click.IntRange(min=1),
    help="Refuse timestamps from elsewhere more than MS milliseconds ahead (default 500).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def branch(branch_id: int, verbose: bool, **flags: Any) -> None:
    """Run one branch until SIGINT or SIGTERM.

    Prints "branch ID listening on HOST:PORT" once it serves requests (and, when secure,
    "branch ID serving peers on HOST:PORT"). A store that cannot be used (Redis
    unreachable, or with settings that can lose writes) exits with status 2; so does a
    branch given neither --tls-dir nor --insecure.
    """
    from dbank.server import BranchServer, serve_until_signalled

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = _branch_config(branch_id, flags)

    def ready(server: BranchServer) -> None:
        if config.tls_dir is None:
            log.warning(
                "branch %d runs --insecure: plaintext, every caller may do everything",
                branch_id,
            )
        click.echo(f"branch {branch_id} listening on {server.address}")
        if server.peer_address is not None:
            click.echo(f"branch {branch_id} serving peers on {server.peer_address}")
        sys.stdout.flush()

    async def serve() -> None:
        try:
            await serve_until_signalled(config, on_ready=ready)
        except UnsafeSettings as exc:
            raise _SetupRefused(f"{exc.message}; --unsafe-redis runs it anyway") from None
        except StoreUnusable as exc:
            raise _SetupRefused(exc.message) from None
        except ConfigError as exc:
            raise _SetupRefused(str(exc)) from None

    run_request(serve)


def _branch_config(branch_id: int, flags: dict[str, Any]) -> BranchConfig:
    """Flags over the bank file; every problem is a usage error (exit status 2)."""
    try:
        config = (
            load_bank_file(flags["config_path"], branch_id)
            if flags["config_path"] is not None
            else BranchConfig(branch_id, listen="127.0.0.1:0")
        )
        names = ("listen", "peer_listen", "data_dir", "store", "tls_dir", "max_clock_offset_ms")
        changes: dict[str, Any] = {name: flags[name] for name in names if flags[name] is not None}
        if flags["peers"] is not None:
            changes["peers"] = parse_peers(flags["peers"])
        if flags["unsafe_redis"]:
            changes["unsafe_redis"] = True
        config = dataclasses.replace(config, **changes)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    _check_branch_config(config, insecure=flags["insecure"])
    return config


def _check_branch_config(config: BranchConfig, *, insecure: bool) -> None:
    if config.data_dir is None and config.store is None:
        raise click.UsageError("give --data DIR or --store URL (or either in --config)")
    if config.branch_id in config.peers:
        raise click.UsageError(f"branch {config.branch_id} cannot be its own peer")
    if config.tls_dir is None and not insecure:
        raise _SetupRefused(
            "a branch serves only TLS: give --tls-dir DIR (make one with `dbank certs init"
            " DIR --branches 1,2,3`), or --insecure for plaintext without authentication"
        )
    if config.tls_dir is not None and insecure:
        raise click.UsageError("--insecure and --tls-dir exclude each other")


@click.command(cls=OneLineCommand)
@click.option(
    "--branches",
    "count",
    type=click.IntRange(1, 64),
    default=3,
    show_default=True,
    help="How many branches.",
)
@click.option(
    "--base-port",
    type=click.IntRange(1, 65000),
    default=7000,
    show_default=True,
    help="Branch N listens on 127.0.0.1:BASE_PORT+N.",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("dbank-data"),
    show_default=True,
    help="Each branch keeps its SQLite file in DATA/branch-N.",
)
@store_options("Keep every branch's state in this Redis (each under its own keys) instead.")
@click.option(
    "--insecure",
    is_flag=True,
    help="Run every branch plaintext and without authentication instead of on the bank's"
    " own PKI (made in DATA/tls on first use).",
)
def cluster(
    count: int,
    base_port: int,
    data_dir: Path,
    store: RedisAddress | None,
    unsafe_redis: bool,
    insecure: bool,
) -> None:
    """Run a bank of local branch processes for development, until Ctrl-C.

    Secure unless --insecure: the first run makes the bank's PKI in DATA/tls (kept for the
    next runs), every branch serves TLS on BASE_PORT+N and its peers mutual TLS on
    BASE_PORT+100+N. With --store, every branch keeps its state in that one Redis, each
    under its own keys.
    """
    from dbank.hosting import ClusterLayout, StoreChoice, run_cluster

    ids = range(1, count + 1)
    addresses = {i: f"127.0.0.1:{base_port + i}" for i in ids}
    layout = ClusterLayout(addresses)
    if not insecure:
        tls_dir = _cluster_pki(data_dir / "tls", ids)
        peers = {i: f"127.0.0.1:{base_port + PEER_PORT_OFFSET + i}" for i in ids}
        layout = ClusterLayout(addresses, tls_dir, peers)
    choice = StoreChoice(data_dir, store, unsafe_redis)
    sys.exit(run_cluster(layout, choice, echo=click.echo))


PEER_PORT_OFFSET = 100


def _cluster_pki(tls_dir: Path, ids: range) -> Path:
    """The cluster's PKI: made on first use, kept, with a certificate for each branch."""
    from dbank.security import PkiError, add_branch, init_pki

    try:
        if not (tls_dir / "ca.crt").exists():
            init_pki(tls_dir, list(ids))
        for i in ids:
            if not (tls_dir / f"branch-{i}.crt").exists():
                add_branch(tls_dir, i)
    except PkiError as exc:
        raise click.UsageError(str(exc)) from None
    return tls_dir

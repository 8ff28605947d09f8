"""Deposit throughput and latency of a durable dbank branch, against a bare gRPC baseline.

What is measured: unary ``dbank.v1.Bank/Deposit`` calls of 1 minor unit, each with a fresh
request id, driven by a separate load-generator process (grpc.aio, N concurrent tasks over
one channel) for a fixed duration per concurrency level, after a short warm-up. Per level
we report deposits/second, p50 and p99 latency and the error count.

Four servers are measured, each in its own process, one after the other in the same run:

* BASELINE: a bare ``grpc.aio`` server whose ``Deposit`` does nothing, on the event loop
  a branch runs on (``dbank._event_loop``: uvloop). It is the ceiling that Python gRPC on
  this machine allows with this very load generator.
* FLOOR: the same server, but its ``Deposit`` does the least that any durable server must:
  it appends one row per request to a SQLite table (WAL, ``synchronous=FULL``) on a writer
  thread, group-committed, and answers once the row is fsynced. No validation, no ledger,
  no idempotency: the ceiling for durable deposits here, which says how much of the gap
  between dbank and the baseline is durability itself and how much is dbank.
* DBANK: a real branch (SQLite WAL, ``synchronous=FULL``, group commit: every acknowledged
  deposit is fsynced before its reply), ``--insecure``: plaintext, no token.
* DBANK TLS: the same branch secure (``--tls-dir``, a PKI made for the run): TLS on its
  port, and every call carries a teller's token (a JWT, EdDSA) that the branch verifies
  and authorizes; the load generator speaks TLS and sends the token as ``BankClient`` does
  (call credentials; ``--token-as metadata``: as metadata on each call instead, to tell
  the client's share from the branch's). TLS+token / insecure dbank is what security
  costs. The two branches are up at once and measured in turn at each level.

Why the baseline: shared machines drift (CPU steal, turbo, noisy neighbours, disk), so an
absolute rate from one day cannot be compared with another day's. The ratio dbank/bare
measured within one run, seconds apart, on the same cores, is the number to track.

Afterwards each branch's balances are read back with ``GetBalances`` and compared with the
number of acknowledged deposits: a benchmark that loses updates would be measuring a lie.

Usage: ``python benchmarks/deposits.py [--levels 1,16,64] [--duration 3] [--json FILE]
[--token-as credentials|metadata]``.
The script re-invokes itself for the baseline servers (``--serve-bare``, ``--serve-floor``);
the load generator is ``benchmarks/_harness.py`` run as a script.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import select
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from _harness import (
    READY_TIMEOUT,
    REPORT_WIDTH,
    TOKEN_AS,
    Secure,
    check_branch,
    conditions,
    fmt,
    load_parser,
    open_accounts,
    print_check,
    results_table,
    run_levels,
    run_load,
    serving_branch,
)
from rich.console import Console
from rich.table import Table

from dbank import _event_loop as event_loop
from dbank._proto import bank_pb2 as pb
from dbank._proto import bank_pb2_grpc

SCRIPT = Path(__file__).resolve()
BASELINE_READY = re.compile(r"baseline listening on (\S+)")
FLOOR_TABLE = "floor"
STOP_TIMEOUT = 10.0
SECURITY = (
    "bare, floor, dbank: plaintext (dbank --insecure); dbank TLS: --tls-dir,"
    " a teller's EdDSA JWT on every call ({token_as})"
)
TOKEN_HOW = {
    "credentials": "call credentials, as BankClient",
    "metadata": "per-call metadata, --token-as metadata",
}


# Baseline servers (child processes) ---------------------------------------------------


class _NoopBank(bank_pb2_grpc.BankServicer):
    """The real Bank service whose Deposit does no work at all."""

    async def Deposit(  # noqa: N802 - the RPC's name in bank.proto
        self, request: pb.DepositRequest, context: grpc.aio.ServicerContext
    ) -> pb.DepositResponse:
        return pb.DepositResponse(account_id=request.account_id)


class _GroupCommitBank(bank_pb2_grpc.BankServicer):
    """The Bank service whose Deposit only makes one row per request durable: the rows
    that arrive while a commit runs go together in the next one (one fsync)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            f"CREATE TABLE {FLOOR_TABLE} (request_id TEXT PRIMARY KEY, account_id TEXT, amount INT)"
        )
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="floor-sqlite")
        self._waiting: list[tuple[tuple[str, str, int], asyncio.Future[None]]] = []
        self._committer: asyncio.Task[None] | None = None

    async def Deposit(  # noqa: N802 - the RPC's name in bank.proto
        self, request: pb.DepositRequest, context: grpc.aio.ServicerContext
    ) -> pb.DepositResponse:
        loop = asyncio.get_running_loop()
        durable = loop.create_future()
        self._waiting.append(((request.request_id, request.account_id, request.amount), durable))
        if self._committer is None or self._committer.done():
            self._committer = loop.create_task(self._commit_while_waiting())
        await durable
        return pb.DepositResponse(account_id=request.account_id)

    async def _commit_while_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            batch, self._waiting = self._waiting, []
            rows = [row for row, _ in batch]
            await loop.run_in_executor(self._thread, self._commit, rows)
            for _, durable in batch:
                durable.set_result(None)

    def _commit(self, rows: list[tuple[str, str, int]]) -> None:
        self._db.execute("BEGIN")
        self._db.executemany(f"INSERT INTO {FLOOR_TABLE} VALUES (?, ?, ?)", rows)
        self._db.execute("COMMIT")


async def _serve_baseline(floor_dir: Path | None) -> None:
    """Serve the no-op Bank (or, given ``floor_dir``, the group-commit one with its file
    there) on a free loopback port until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server = grpc.aio.server()
    # Only Deposit is overridden; the generated base answers the others UNIMPLEMENTED.
    servicer = _NoopBank() if floor_dir is None else _GroupCommitBank(floor_dir / "floor.sqlite3")
    bank_pb2_grpc.add_BankServicer_to_server(servicer, server)  # type: ignore[abstract]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"baseline listening on 127.0.0.1:{port}", flush=True)
    await stop.wait()
    await server.stop(grace=1.0)


# Their processes ------------------------------------------------------------------------


class Children:
    """Child processes that are all terminated on exit: SIGTERM, then SIGKILL after a deadline."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for proc in reversed(self._procs):
            stop(proc)

    def spawn(self, args: Sequence[str], *, stdout_pipe: bool = True) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, *args],
            stdout=subprocess.PIPE if stdout_pipe else None,
            stdin=subprocess.DEVNULL,
        )
        self._procs.append(proc)
        return proc


def stop(proc: subprocess.Popen[bytes]) -> int:
    """Ask ``proc`` to exit, kill it if it has not within ``STOP_TIMEOUT``; its exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)
    if proc.stdout is not None:
        proc.stdout.close()
    return proc.returncode


def await_ready(proc: subprocess.Popen[bytes], pattern: re.Pattern[str], name: str) -> str:
    """Read the first stdout line of ``proc`` within ``READY_TIMEOUT``; the group it matched."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + READY_TIMEOUT
    buffer = b""
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(f"{name} did not report ready within {READY_TIMEOUT:.0f} s")
        readable, _, _ = select.select([fd], [], [], remaining)
        if readable:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"{name} exited (status {proc.poll()}) before it was ready")
            buffer += chunk
    line = buffer.split(b"\n", 1)[0].decode().strip()
    match = pattern.fullmatch(line)
    if match is None:
        raise RuntimeError(f"{name} printed {line!r}, expected {pattern.pattern!r}")
    return match.group(1)


def bench_baseline(
    children: Children,
    args: argparse.Namespace,
    progress: Console,
    floor_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """The bare server, or given ``floor_dir`` the group-commit floor with its file there."""
    serve = ["--serve-bare"] if floor_dir is None else ["--serve-floor", str(floor_dir)]
    name = "bare server" if floor_dir is None else "group-commit floor"
    proc = children.spawn([str(SCRIPT), *serve])
    target = await_ready(proc, BASELINE_READY, name)
    progress.print(f"[dim]{name} at {target}: levels {args.levels} ...[/dim]")
    results = run_levels([proc], target, args)
    stop(proc)
    return results


Measured = tuple[list[dict[str, Any]], dict[str, Any]]
"""A server's results per level, and its lost-update check."""


def bench_dbank(
    root: Path, secure: Secure, args: argparse.Namespace, progress: Console
) -> tuple[Measured, Measured]:
    """The insecure branch and the secure one (each its own process and SQLite file under
    ``root``), both up at once and measured in turn at each level, seconds apart, so that
    their ratio sees the same machine; then each one's lost-update check."""
    with (
        serving_branch(root / "branch-1") as (plain,),
        serving_branch(root / "branch-1-tls", secure=secure) as (tls,),
    ):
        asyncio.run(open_accounts(plain.address))
        asyncio.run(open_accounts(tls.address, secure))
        progress.print(
            f"[dim]branch --insecure at {plain.address}, branch with TLS + token at"
            f" {tls.address}: levels {args.levels}, in turn ...[/dim]"
        )
        runs: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
        arms = ((plain, None, runs[0]), (tls, secure, runs[1]))
        for level in args.levels:
            for branch, how, results in arms:
                results.append(run_load(branch.address, level, args, [branch.process.pid], how))
                if (status := branch.process.poll()) is not None:
                    raise RuntimeError(f"the branch at {branch.address} exited ({status})")
        checks = (check_branch(plain, runs[0]), check_branch(tls, runs[1], secure))
    return (runs[0], checks[0]), (runs[1], checks[1])


# Conditions and report -------------------------------------------------------------------


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def print_conditions(console: Console, cond: dict[str, Any]) -> None:
    console.print(
        "[bold]Deposit benchmark: bare grpc.aio server vs durable dbank branch,"
        " insecure and with TLS + token[/bold]"
    )
    console.print(f"machine:    {cond['cpus']} CPUs, {cond['cpu_model']}, {cond['platform']}")
    console.print(
        f"software:   Python {cond['python']}, grpcio {cond['grpcio']},"
        f" {cond['event_loop']} in both servers (the load generator: asyncio)"
    )
    console.print(f"durability: {cond['durability']} (data dir on {cond['data_dir_fs']})")
    console.print(f"security:   {cond['security']}")
    console.print(f"machine load before the run: {cond['loadavg_before']} (1, 5, 15 min)")
    console.print(
        f"load:       {cond['duration_s']} s per level after {cond['warmup_s']} s warm-up,"
        f" levels {cond['levels']}, {cond['accounts']} accounts, 1 channel, separate process"
    )


def cpu_table(runs: dict[str, Sequence[dict[str, Any]]]) -> Table:
    """Per level and server: the CPU time per deposit of the server and of the load
    generator, and how busy the machine was. For every server after the first (the bare
    baseline), the bound on its rate ratio to the first: the ratio the two would have if
    both kept every CPU busy, the first's CPU per deposit (server and load generator)
    divided by this one's. On a saturated machine no server that spends as much as this
    one does can reach a higher ratio."""
    table = Table(
        title="Where the CPU goes (us per deposit in the measured window; busy: share of"
        " all CPUs; bound: the rate ratio to the first if both kept every CPU busy)"
    )
    for column in ("conc", "server", "rate/s", "server us", "load us", "total us", "busy"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("bound", justify="right", no_wrap=True)
    for level in zip(*runs.values(), strict=True):
        base_cost = level[0]["server_cpu_us"] + level[0]["load_cpu_us"]
        for index, (name, result) in enumerate(zip(runs, level, strict=True)):
            cost = result["server_cpu_us"] + result["load_cpu_us"]
            table.add_row(
                str(result["concurrency"]) if index == 0 else "",
                name,
                fmt(result["rate"], 0),
                fmt(result["server_cpu_us"], 0),
                fmt(result["load_cpu_us"], 0),
                fmt(cost, 0),
                fmt(result["machine_busy"] * 100, 0) + "%",
                "" if index == 0 else fmt(base_cost / cost, 2),
                end_section=index == len(level) - 1,
            )
    return table


def print_security_cost(
    console: Console, insecure: Sequence[dict[str, Any]], tls: Sequence[dict[str, Any]]
) -> None:
    """Per level, the CPU per deposit that TLS and the token add, in the server and in the
    load generator, and the bound on TLS/insecure if both kept every CPU busy."""
    for i, t in zip(insecure, tls, strict=True):
        server = t["server_cpu_us"] - i["server_cpu_us"]
        load = t["load_cpu_us"] - i["load_cpu_us"]
        cost = t["server_cpu_us"] + t["load_cpu_us"]
        bound = (i["server_cpu_us"] + i["load_cpu_us"]) / cost if cost else float("nan")
        console.print(
            f"TLS+token at {t['concurrency']} clients: {fmt(server, 0)} us more server CPU"
            f" and {fmt(load, 0)} us more load-generator CPU per deposit;"
            f" bound on tls/insecure with every CPU busy: {fmt(bound, 2)}"
        )


# Entry points ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = load_parser(__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument(
        "--token-as",
        choices=TOKEN_AS,
        default=TOKEN_AS[0],
        help="how the load sends the token to the TLS branch: grpc call credentials on the"
        " channel, as BankClient does (default), or metadata on each call",
    )
    child = parser.add_mutually_exclusive_group()
    child.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    child.add_argument("--serve-floor", type=Path, metavar="DIR", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _raise_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def orchestrate(args: argparse.Namespace) -> int:
    """Measure the baseline, then the branch, each with its own processes; report."""
    console = Console(width=max(Console().width, REPORT_WIDTH))
    progress = Console(stderr=True)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    with (
        tempfile.TemporaryDirectory(prefix="dbank-bench-") as tmp,
        Children() as children,
    ):
        cond = conditions(args, Path(tmp))
        cond["security"] = SECURITY.format(token_as=TOKEN_HOW[args.token_as])
        cond["loadavg_before"] = _loadavg()
        print_conditions(console, cond)
        secure = Secure.make(Path(tmp) / "tls", token_as=args.token_as)
        bare = bench_baseline(children, args, progress)
        floor = bench_baseline(children, args, progress, floor_dir=Path(tmp))
        (dbank, check), (tls, tls_check) = bench_dbank(Path(tmp), secure, args, progress)
        cond["loadavg_after"] = _loadavg()
    console.print(results_table(bare, dbank))
    console.print(
        results_table(
            bare,
            floor,
            names=("bare", "floor"),
            title="The durable floor: one row per deposit, group-committed and fsynced",
        )
    )
    console.print(
        results_table(
            dbank,
            tls,
            names=("dbank", "tls"),
            title="TLS+token / insecure dbank: the secure branch (TLS, a token verified on"
            " every call) against the --insecure one",
        )
    )
    print_security_cost(console, dbank, tls)
    console.print(cpu_table({"bare": bare, "floor": floor, "dbank": dbank, "dbank TLS": tls}))
    console.print(f"machine load after the run: {cond['loadavg_after']} (1, 5, 15 min)")
    console.print("[bold]dbank --insecure[/bold]")
    print_check(console, check)
    console.print("[bold]dbank TLS + token[/bold]")
    print_check(console, tls_check)
    if args.json is not None:
        report = {
            "conditions": cond,
            "bare": bare,
            "floor": floor,
            "dbank": dbank,
            "dbank_tls": tls,
            "check": check,
            "check_tls": tls_check,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if check["ok"] and tls_check["ok"] else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    """Run as the orchestrator, or as one of its children."""
    if args.serve_bare or args.serve_floor is not None:
        # On a branch's own event loop: only the handler differs from a branch.
        event_loop.run(_serve_baseline(args.serve_floor))
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())

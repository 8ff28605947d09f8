"""Deposit throughput of a branch on the Redis store, served by one and by two processes,
next to one on SQLite, in one run.

What is measured: the load of ``deposits.py`` (unary ``Deposit`` calls of 1 minor unit,
a fresh request id each, N concurrent calls from a separate process) at each concurrency
level, against real ``dbank branch`` processes, one setup after the other:

* SQLITE: one process on the default store (WAL, ``synchronous=FULL``, group commit);
* REDIS: one process with ``--store redis://...`` on a ``redis-server`` started here with
  the durable settings of design §7 (``appendonly yes``, ``appendfsync always``):
  every acknowledged deposit is in the fsynced append-only file first;
* REDIS2: two processes serving the same branch from one (fresh) database of that
  Redis, the load generator's calls taking turns between them (one channel to each). Their
  writers commit through the same Lua script, which refuses a batch decided on a state the
  other process has changed since; the loser takes in the other's commits and decides
  again (design §7.1).

Both data directories are on the same filesystem, so both stores pay the same fsync. The
ratios to SQLite measured seconds apart are the figures to track. Afterwards the balances
are read back (from the store itself for two processes) and compared with the
acknowledged deposits (none may be lost).

Usage: ``python benchmarks/redis_store.py [--levels 1,16,64] [--duration 3] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _harness import (
    ACCOUNTS,
    REPORT_WIDTH,
    bench_dbank,
    conditions,
    load_parser,
    open_accounts,
    print_check,
    results_table,
    run_levels,
    serving_branch,
    verify,
)
from rich.console import Console

from dbank.hosting import RedisServer, redis_server_binary
from dbank.store import RedisStore

PROCESSES = 2


def redis_version() -> str:
    """The version of the machine's ``redis-server`` (which must be on PATH)."""
    command = [redis_server_binary(), "--version"]
    line = subprocess.run(command, capture_output=True, text=True).stdout
    return line.split()[2].removeprefix("v=") if line else "unknown"


def bench_processes(
    data_dir: Path, url: str, args: argparse.Namespace, progress: Console
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``PROCESSES`` processes serving branch 1 (a bank of one branch: no lease) from the
    Redis database ``url``, the load spread over them: every level, then the lost-update
    check on the balances in the store (a process's reads may not show the other's last
    commits yet)."""
    with serving_branch(data_dir, url, processes=PROCESSES) as branches:
        targets = [branch.address for branch in branches]
        asyncio.run(open_accounts(targets[0]))
        progress.print(f"[dim]{PROCESSES} branch processes on {url} at {targets}[/dim]")
        results = run_levels([branch.process for branch in branches], ",".join(targets), args)
        check = verify(asyncio.run(_stored_balances(url)), results)
        statuses = [branch.stop() for branch in branches]
    check["branch_exit_status"] = next((status for status in statuses if status), 0)
    return results, check


async def _stored_balances(url: str) -> dict[str, int]:
    store = await RedisStore.open(url, branch_id=1)
    try:
        state = (await store.load()).state
    finally:
        await store.close()
    return {account_id: state.balance(account_id) for account_id in ACCOUNTS}


def orchestrate(args: argparse.Namespace) -> int:
    console = Console(width=max(Console().width, REPORT_WIDTH))
    progress = Console(stderr=True)
    with tempfile.TemporaryDirectory(prefix="dbank-bench-redis-") as tmp:
        root = Path(tmp)
        cond = conditions(args, root)
        cond["durability"] = (
            "SQLite WAL synchronous=FULL / Redis appendonly yes, appendfsync always;"
            " group commit; every acknowledged deposit fsynced"
        )
        cond["redis"] = redis_version()
        cond["load_average"] = os.getloadavg()
        console.print(
            f"[bold]Deposit benchmark: a branch on SQLite, on Redis, and on Redis with {PROCESSES}"
            " processes[/bold]"
        )
        console.print(f"machine:    {cond['cpus']} CPUs, {cond['cpu_model']}, {cond['platform']}")
        console.print(
            f"software:   Python {cond['python']}, grpcio {cond['grpcio']}, Redis {cond['redis']}"
        )
        console.print(f"durability: {cond['durability']} (both on {cond['data_dir_fs']})")
        console.print(
            f"load:       {args.duration} s per level after {args.warmup} s warm-up, levels"
            f" {args.levels}, {cond['accounts']} accounts, one channel per branch process,"
            " separate process; redis-server, branches and load generator share the machine"
        )
        console.print(
            f"redis{PROCESSES}:     {PROCESSES} processes serve branch 1 from one database,"
            " the calls taking turns between them; errors are requests answered UNAVAILABLE"
            " (a batch that met another process's commit 8 times in a row)"
        )
        console.print(f"machine load before the run (1/5/15 min): {cond['load_average']}")
        sqlite, sqlite_check = bench_dbank(root / "sqlite", args, progress)
        server = RedisServer(root / "redis").start()
        try:
            redis, redis_check = bench_dbank(root / "redis-1", args, progress, server.url(0))
            shared, shared_check = bench_processes(root / "redis-2", server.url(1), args, progress)
        finally:
            server.stop()
    several = f"redis{PROCESSES}"
    title = "Deposits on one branch (rate in deposits/s, latency in ms)"
    console.print(results_table(sqlite, redis, names=("sqlite", "redis"), title=title))
    title = f"The same branch served by {PROCESSES} processes ({several}) from one Redis"
    console.print(results_table(redis, shared, names=("redis", several), title=title))
    checks = {"sqlite": sqlite_check, "redis": redis_check, several: shared_check}
    for name, check in checks.items():
        console.print(f"{name}: ", end="")
        print_check(console, check)
    if args.json is not None:
        report = {"conditions": cond, "sqlite": sqlite, "redis": redis, several: shared}
        report["checks"] = checks
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if all(check["ok"] for check in checks.values()) else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = load_parser(__doc__.split("\n", 1)[0] if __doc__ else None).parse_args(argv)
    try:
        return orchestrate(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

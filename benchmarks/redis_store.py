"""Deposit throughput of a branch on the Redis store next to one on SQLite, in one run.

What is measured: the load of ``deposits.py`` (unary ``Deposit`` calls of 1 minor unit,
a fresh request id each, N concurrent calls over one channel from a separate process) at
each concurrency level, against two real ``dbank branch`` processes one after the other:

* SQLITE: the default store (WAL, ``synchronous=FULL``, group commit);
* REDIS: the same branch with ``--store redis://...`` on a ``redis-server`` started here
  with the durable settings of DESIGN section 7 (``appendonly yes``, ``appendfsync
  always``): every acknowledged deposit is in the fsynced append-only file first.

Both data directories are on the same filesystem, so both stores pay the same fsync. The
ratio redis/sqlite measured seconds apart is the figure to track. Afterwards each branch's
balances are read back and compared with the acknowledged deposits (none may be lost).

Usage: ``python benchmarks/redis_store.py [--levels 1,16,64] [--duration 3] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from deposits import (
    Children,
    bench_dbank,
    conditions,
    parse_args,
    print_check,
    results_table,
)
from rich.console import Console
from support.redis_server import RedisServer

REPORT_WIDTH = 110


def redis_version() -> str:
    line = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    return line.split()[2].removeprefix("v=") if line else "unknown"


def orchestrate(args: argparse.Namespace) -> int:
    console = Console(width=max(Console().width, REPORT_WIDTH))
    progress = Console(stderr=True)
    with tempfile.TemporaryDirectory(prefix="dbank-bench-redis-") as tmp, Children() as children:
        root = Path(tmp)
        cond = conditions(args, root)
        cond["durability"] = (
            "SQLite WAL synchronous=FULL / Redis appendonly yes, appendfsync always;"
            " group commit; every acknowledged deposit fsynced"
        )
        cond["redis"] = redis_version()
        cond["load_average"] = os.getloadavg()
        console.print("[bold]Deposit benchmark: a branch on SQLite vs on Redis[/bold]")
        console.print(f"machine:    {cond['cpus']} CPUs, {cond['cpu_model']}, {cond['platform']}")
        console.print(
            f"software:   Python {cond['python']}, grpcio {cond['grpcio']}, Redis {cond['redis']}"
        )
        console.print(f"durability: {cond['durability']} (both on {cond['data_dir_fs']})")
        console.print(
            f"load:       {args.duration} s per level after {args.warmup} s warm-up, levels"
            f" {args.levels}, {cond['accounts']} accounts, 1 channel, separate process;"
            " redis-server, branch and load generator share the machine"
        )
        console.print(f"machine load before the run (1/5/15 min): {cond['load_average']}")
        sqlite, sqlite_check = bench_dbank(
            children, ["--data", str(root / "sqlite")], args, progress
        )
        server = RedisServer(root / "redis").start()
        try:
            redis, redis_check = bench_dbank(children, ["--store", server.url()], args, progress)
        finally:
            server.stop()
    title = "Deposits on one branch (rate in deposits/s, latency in ms)"
    console.print(results_table(sqlite, redis, names=("sqlite", "redis"), title=title))
    for name, check in (("sqlite", sqlite_check), ("redis", redis_check)):
        console.print(f"{name}: ", end="")
        print_check(console, check)
    if args.json is not None:
        report = {"conditions": cond, "sqlite": sqlite, "redis": redis}
        report["checks"] = {"sqlite": sqlite_check, "redis": redis_check}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if sqlite_check["ok"] and redis_check["ok"] else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.load is not None or args.serve_bare:
        raise SystemExit("the load generator runs from deposits.py")
    try:
        return orchestrate(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Durable entries per second through ``Bank.Batch``, against a batched floor and against
single deposits, all in the same run.

Three measurements on this machine, one after the other:

* **the batched floor**: a bare ``grpc.aio`` server (its own process) whose ``Batch``
  writes one SQLite row per entry and commits once per batch (WAL, ``synchronous=FULL``:
  one fsync per batch), with no logic at all;
* **dbank batches**: one ``dbank branch --insecure`` process on SQLite (the floor is
  plaintext too), the same batches of deposits spread over ``--accounts`` accounts;
* **dbank single deposits**: the same branch under ``benchmarks/deposits.py``'s load at
  ``--concurrency`` clients (one deposit per call).

The batches are made and serialized before the clock starts, so the load generator
costs the servers little CPU (the machine has two cores). After the run the branch's
balances are read back: every acknowledged entry must be there, none twice.

Usage: ``python benchmarks/batches.py [--size 8000] [--clients 2] [--duration 4]
[--warmup 1] [--accounts 256] [--concurrency 64]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from _harness import (
    DURABILITY,
    filesystem_of,
    machine_line,
    open_accounts,
    run_load,
    serving_branch,
)
from deposits import Children, await_ready, stop
from rich.console import Console
from rich.table import Table

from dbank._proto import bank_pb2 as pb
from dbank._proto import bank_pb2_grpc
from dbank.client import BankClient

SCRIPT = Path(__file__).resolve()
FLOOR_READY = re.compile(r"floor listening on (\S+)")
BATCH_METHOD = "/dbank.v1.Bank/Batch"
RPC_TIMEOUT = 60.0


# The batched floor ----------------------------------------------------------------------


class _BatchFloor(bank_pb2_grpc.BankServicer):
    """``Batch`` that only makes one row per entry durable, one commit per batch."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE entries (request_id TEXT PRIMARY KEY, account_id TEXT, amount INT)"
        )
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="floor-sqlite")

    async def Batch(  # noqa: N802 - the RPC's name in bank.proto
        self, request: pb.BatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchResponse:
        rows = [
            (e.deposit.request_id, e.deposit.account_id, e.deposit.amount) for e in request.entries
        ]
        await asyncio.get_running_loop().run_in_executor(self._thread, self._commit, rows)
        reply = pb.BatchResponse()
        for account_id in (row[1] for row in rows):
            reply.results.add().deposit.account_id = account_id
        return reply

    def _commit(self, rows: list[tuple[str, str, int]]) -> None:
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO entries VALUES (?, ?, ?)", rows)
        self._db.execute("COMMIT")


async def _serve_floor(directory: Path) -> None:
    stop_event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop_event.set)
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 * 2**20)])
    bank_pb2_grpc.add_BankServicer_to_server(_BatchFloor(directory / "floor.sqlite3"), server)  # type: ignore[abstract]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"floor listening on 127.0.0.1:{port}", flush=True)
    await stop_event.wait()
    await server.stop(grace=1.0)


# The load -------------------------------------------------------------------------------


def _accounts(count: int) -> list[str]:
    return [f"batch-{i}" for i in range(count)]


def _batches(count: int, size: int, accounts: Sequence[str], tag: str) -> list[bytes]:
    """``count`` serialized batches of ``size`` deposits of 1 minor unit each, spread over
    ``accounts``, every request id new."""
    made = []
    for b in range(count):
        request = pb.BatchRequest(write_concern=pb.WRITE_CONCERN_LOCAL)
        for i in range(size):
            deposit = request.entries.add().deposit
            deposit.account_id = accounts[(b * size + i) % len(accounts)]
            deposit.amount = 1
            deposit.request_id = f"{tag}-{b}-{i}"
        made.append(request.SerializeToString())
    return made


async def _drive(
    target: str, batches: list[bytes], clients: int, warmup: float, duration: float
) -> dict[str, Any]:
    """``clients`` loops sending the batches in turn until ``duration`` after ``warmup``
    (or the batches run out); the entries of the batches answered within the measured
    window, per second."""
    options = [("grpc.max_receive_message_length", 64 * 2**20)]
    async with grpc.aio.insecure_channel(target, options=options) as channel:
        await asyncio.wait_for(channel.channel_ready(), 10)
        call = channel.unary_unary(
            BATCH_METHOD,
            request_serializer=lambda b: b,
            response_deserializer=pb.BatchResponse.FromString,
        )
        start = time.perf_counter()
        measure_from, end = start + warmup, start + warmup + duration
        counted = {"entries": 0, "batches": 0, "refused": 0, "acked": 0}
        latencies: list[float] = []
        pending = list(reversed(batches))

        async def loop() -> None:
            while pending and time.perf_counter() < end:
                data = pending.pop()
                began = time.perf_counter()
                reply = await call(data, timeout=RPC_TIMEOUT)
                done = time.perf_counter()
                ok = sum(1 for r in reply.results if r.WhichOneof("result") != "error")
                counted["acked"] += ok
                counted["refused"] += len(reply.results) - ok
                if measure_from <= done <= end:  # completed in the window
                    counted["entries"] += ok
                    counted["batches"] += 1
                    latencies.append(done - began)

        await asyncio.gather(*(loop() for _ in range(clients)))
        window = min(time.perf_counter(), end) - measure_from
    latencies.sort()
    return {
        **counted,
        "rate": counted["entries"] / window if window > 0 else 0.0,
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else float("nan"),
        "ran_out": not pending,
    }


async def _open(target: str, accounts: Sequence[str]) -> None:
    async with BankClient(target) as bank:
        for account_id in accounts:
            await bank.create_account(account_id=account_id, owner="bench")


async def _total(target: str, accounts: Sequence[str]) -> int:
    async with BankClient(target) as bank:
        total = 0
        for start in range(0, len(accounts), 1000):
            found = await bank.get_balances(account_ids=list(accounts[start : start + 1000]))
            total += sum(a.balance for a in found)
    return total


# The run --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=8000, help="entries per batch (1-8000)")
    parser.add_argument("--clients", type=int, default=2, help="batches in flight at once")
    parser.add_argument("--duration", type=float, default=4.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds")
    parser.add_argument("--accounts", type=int, default=256, help="accounts the entries go to")
    parser.add_argument("--concurrency", type=int, default=64, help="clients of single deposits")
    parser.add_argument("--serve-floor", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_floor is not None:
        asyncio.run(_serve_floor(args.serve_floor))
        return 0
    console = Console(width=120)
    accounts = _accounts(args.accounts)
    # Enough batches for the measured window at well above the rates seen.
    count = max(4, int(400_000 * (args.warmup + args.duration) / args.size) + 2 * args.clients)
    console.print("Batch benchmark: Bank.Batch of deposits, a batched floor and single deposits")
    console.print(f"machine:    {machine_line()}, load average {os.getloadavg()[0]:.2f}")
    console.print(
        f"load:       {args.clients} clients, batches of {args.size} deposits over"
        f" {args.accounts} accounts ({count} batches made beforehand), {args.duration:g} s"
        f" measured after {args.warmup:g} s; single deposits: {args.concurrency} clients"
    )
    batches = _batches(count, args.size, accounts, "e")
    with tempfile.TemporaryDirectory(prefix="dbank-bench-batches-") as tmp, Children() as children:
        root = Path(tmp)
        console.print(f"durability: {DURABILITY} (data on {filesystem_of(root)})")
        (root / "floor").mkdir()
        floor = children.spawn([str(SCRIPT), "--serve-floor", str(root / "floor")])
        target = await_ready(floor, FLOOR_READY, "batched floor")
        floor_run = asyncio.run(_drive(target, batches, args.clients, args.warmup, args.duration))
        stop(floor)
        with serving_branch(root / "branch-1") as (branch,):
            asyncio.run(_open(branch.address, accounts))
            dbank_run = asyncio.run(
                _drive(branch.address, batches, args.clients, args.warmup, args.duration)
            )
            total = asyncio.run(_total(branch.address, accounts))
            asyncio.run(open_accounts(branch.address))
            single_args = argparse.Namespace(duration=args.duration, warmup=args.warmup)
            single = run_load(branch.address, args.concurrency, single_args, [branch.process.pid])
            status = branch.stop()
    table = Table(title="Durable entries per second", title_justify="left")
    for column in ("server", "entries/s", "batches", "p50 ms / batch", "refused", "ran out"):
        table.add_column(column, justify="right" if column != "server" else "left")
    for name, run in (("batched floor", floor_run), ("dbank Batch", dbank_run)):
        table.add_row(
            name,
            f"{run['rate']:,.0f}",
            str(run["batches"]),
            f"{run['p50_ms']:.1f}",
            str(run["refused"]),
            "yes" if run["ran_out"] else "no",
        )
    table.add_row(
        f"dbank Deposit x{args.concurrency}",
        f"{single['rate']:,.0f}",
        "-",
        f"{single['p50_ms']:.2f}",
        str(single["errors"]),
        "-",
    )
    console.print(table)
    console.print(
        f"dbank Batch / batched floor: {dbank_run['rate'] / floor_run['rate']:.2f};"
        f" dbank Batch / single deposits at {args.concurrency} clients:"
        f" {dbank_run['rate'] / single['rate']:.1f}x"
    )
    ok = total == dbank_run["acked"] and dbank_run["refused"] == 0
    console.print(
        f"correctness {'OK' if ok else 'FAILED'}: balances total {total}, acknowledged"
        f" entries {dbank_run['acked']}; branch exit status on SIGTERM: {status}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""CPU per deposit of dbank's own request path, without the network: the real
``BankServicer.Deposit`` (request proto in, reply proto out) called by concurrent tasks in
one process, against a branch on the in-memory store and on a SQLite file.

What it isolates: everything a branch does per deposit besides gRPC and the kernel's network
work, that is validation, idempotency, the escrow decision, the op and its log, the group
commit and the reply. ``benchmarks/deposits.py`` measures the whole server; this says how
much of it is dbank's own Python. The baseline, measured in the same run, is a servicer
whose ``Deposit`` only builds a reply, called the same way (making the request included).

Usage: ``python benchmarks/request_path.py [--callers 1,16,64] [--duration 2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from _harness import ACCOUNTS, cpu_model, parse_levels
from rich.console import Console
from rich.table import Table

from dbank import _event_loop as event_loop
from dbank._proto import bank_pb2 as pb
from dbank.branch import Branch, BranchConfig, RequestContext
from dbank.ledger import AccountType, OpenAccountCommand
from dbank.server import BankServicer

DEADLINE = 10.0
REPORT_WIDTH = 110

Deposit = Callable[[pb.DepositRequest, "_Context"], Awaitable[pb.DepositResponse]]


class _Context:
    """What the servicer asks of gRPC's context for a deposit: the caller's deadline."""

    def time_remaining(self) -> float:
        return DEADLINE


async def _noop_deposit(request: pb.DepositRequest, context: _Context) -> pb.DepositResponse:
    return pb.DepositResponse(account_id=request.account_id, balance=1)


async def _measure(deposit: Deposit, callers: int, duration: float) -> tuple[float, float]:
    """Deposits per second and CPU microseconds per deposit (the whole process, every
    thread: the store's too) of ``callers`` tasks calling ``deposit`` for ``duration``."""
    context = _Context()
    done = 0
    end = time.perf_counter() + duration

    async def caller(index: int) -> None:
        nonlocal done
        n = index
        while time.perf_counter() < end:
            account_id = ACCOUNTS[n % len(ACCOUNTS)]
            n += 1
            request = pb.DepositRequest(
                account_id=account_id, amount=1, request_id=str(uuid.uuid4())
            )
            await deposit(request, context)
            done += 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(caller(i) for i in range(callers)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return done / wall, cpu / max(done, 1) * 1e6


async def _branch_deposit(data_dir: Path | None) -> tuple[Branch, Deposit]:
    branch = await Branch.open(BranchConfig(1, data_dir=data_dir))
    local = RequestContext(wait_all=False)
    for account_id in ACCOUNTS:
        command = OpenAccountCommand(account_id, AccountType.CHECKING, "USD", "bench", account_id)
        await branch.open_account(command, local)
    servicer = BankServicer(branch)

    async def deposit(request: pb.DepositRequest, context: _Context) -> pb.DepositResponse:
        return await servicer.Deposit(request, context)  # type: ignore[arg-type]

    return branch, deposit


async def run(levels: Sequence[int], duration: float) -> list[dict[str, float]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="dbank-bench-path-") as tmp:
        for callers in levels:
            row: dict[str, float] = {"callers": callers}
            row["noop_rate"], row["noop_us"] = await _measure(_noop_deposit, callers, duration)
            for name, data_dir in (("memory", None), ("sqlite", Path(tmp) / f"b{callers}")):
                branch, deposit = await _branch_deposit(data_dir)
                try:
                    row[f"{name}_rate"], row[f"{name}_us"] = await _measure(
                        deposit, callers, duration
                    )
                finally:
                    await branch.close()
            rows.append(row)
    return rows


def report(console: Console, rows: Sequence[dict[str, float]]) -> None:
    table = Table(
        title="dbank's request path without the network (CPU in us per deposit, all threads)"
    )
    columns = ("callers", "baseline/s", "baseline us", "memory/s", "memory us", "sqlite/s")
    for column in (*columns, "sqlite us", "memory - baseline us"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            str(int(row["callers"])),
            f"{row['noop_rate']:,.0f}",
            f"{row['noop_us']:.1f}",
            f"{row['memory_rate']:,.0f}",
            f"{row['memory_us']:.1f}",
            f"{row['sqlite_rate']:,.0f}",
            f"{row['sqlite_us']:.1f}",
            f"{row['memory_us'] - row['noop_us']:.1f}",
        )
    console.print(table)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--callers", type=parse_levels, default=[1, 16, 64], help="e.g. 1,16,64")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per measurement")
    args = parser.parse_args(argv)
    console = Console(width=max(Console().width, REPORT_WIDTH))
    console.print(
        f"machine:  {os.cpu_count()} CPUs, {cpu_model()}, Python {platform.python_version()},"
        f" {event_loop.describe()}"
    )
    console.print(
        f"load:     {args.duration} s per measurement; the callers are tasks in this process,"
        " a fresh request id per deposit; SQLite WAL, synchronous=FULL, group commit"
    )
    report(console, event_loop.run(run(args.callers, args.duration)))


if __name__ == "__main__":
    main()

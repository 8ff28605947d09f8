"""Deposit throughput and latency of a durable dbank branch, against a bare gRPC baseline.

What is measured: unary ``dbank.v1.Bank/Deposit`` calls of 1 minor unit, each with a fresh
request id, driven by a separate load-generator process (grpc.aio, N concurrent tasks over
one channel) for a fixed duration per concurrency level, after a short warm-up. Per level
we report deposits/second, p50 and p99 latency and the error count.

Three servers are measured, each in its own process, one after the other in the same run:

* BASELINE: a bare ``grpc.aio`` server whose ``Deposit`` does nothing, on the event loop
  a branch runs on (``dbank._event_loop``: uvloop). It is the ceiling that Python gRPC on
  this machine allows with this very load generator.
* FLOOR: the same server, but its ``Deposit`` does the least that any durable server must:
  it appends one row per request to a SQLite table (WAL, ``synchronous=FULL``) on a writer
  thread, group-committed, and answers once the row is fsynced. No validation, no ledger,
  no idempotency: the ceiling for durable deposits here, which says how much of the gap
  between dbank and the baseline is durability itself and how much is dbank.
* DBANK: a real branch (SQLite WAL, ``synchronous=FULL``, group commit: every acknowledged
  deposit is fsynced before its reply).

Why the baseline: shared machines drift (CPU steal, turbo, noisy neighbours, disk), so an
absolute rate from one day cannot be compared with another day's. The ratio dbank/bare
measured within one run, seconds apart, on the same cores, is the number to track.

Afterwards the branch's balances are read back with ``GetBalances`` and compared with the
number of acknowledged deposits: a benchmark that loses updates would be measuring a lie.

Usage: ``python benchmarks/deposits.py [--levels 1,16,64] [--duration 3] [--json FILE]``.
The script re-invokes itself for its children: ``--serve-bare`` (the baseline server) and
``--load TARGET`` (the load generator, which prints one JSON line).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import re
import select
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from rich.console import Console
from rich.table import Table

from dbank import _event_loop as event_loop
from dbank._proto import bank_pb2 as pb
from dbank._proto import bank_pb2_grpc
from dbank.client import BankClient

SCRIPT = Path(__file__).resolve()
DURABILITY = "SQLite WAL, synchronous=FULL, group commit; every acknowledged deposit fsynced"
ACCOUNTS = tuple(f"bench-{i}" for i in range(4))
REPORT_WIDTH = 130
READY_TIMEOUT = 30.0
RPC_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
BASELINE_READY = re.compile(r"baseline listening on (\S+)")
FLOOR_TABLE = "floor"
BRANCH_READY = re.compile(r"branch 1 listening on (\S+)")


# Baseline server (child process) ------------------------------------------------------


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


# Load generator (child process) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Usage:
    """CPU time used so far: by the whole machine (busy, and busy plus idle, over all its
    CPUs), by this load generator, and by the servers under load (all their threads)."""

    machine_busy: float
    machine_total: float
    load: float
    servers: float

    @classmethod
    def now(cls, server_pids: Sequence[int]) -> _Usage:
        # The first line of /proc/stat: user nice system idle iowait irq softirq steal, in ticks.
        ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        idle = ticks[3] + ticks[4]
        hz = os.sysconf("SC_CLK_TCK")
        return cls(
            machine_busy=(sum(ticks) - idle) / hz,
            machine_total=sum(ticks) / hz,
            load=time.process_time(),
            servers=sum(_cpu_seconds(pid) for pid in server_pids),
        )


@dataclass(slots=True)
class _Tally:
    """What the workers of one load run observed."""

    measure_from: float
    end: float
    server_pids: Sequence[int] = ()
    latencies: list[float] = field(default_factory=list)
    acked: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    errors_measured: int = 0
    last_done: float = 0.0
    measured_from: _Usage | None = None
    """CPU use when the first measured call started (the warm-up over)."""


async def _worker(
    stub: bank_pb2_grpc.BankStub, index: int, accounts: Sequence[str], tally: _Tally
) -> None:
    """Deposit 1 minor unit at a time, round-robin over ``accounts``, until ``tally.end``."""
    n = index
    while (start := time.perf_counter()) < tally.end:
        measured = start >= tally.measure_from
        if measured and tally.measured_from is None:
            tally.measured_from = _Usage.now(tally.server_pids)
        account_id = accounts[n % len(accounts)]
        n += 1
        request = pb.DepositRequest(account_id=account_id, amount=1, request_id=str(uuid.uuid4()))
        try:
            await stub.Deposit(request, timeout=RPC_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            tally.errors[exc.code().name] += 1
            tally.errors_measured += measured
            continue
        done = time.perf_counter()
        tally.acked[account_id] += 1
        if measured:
            tally.latencies.append(done - start)
            tally.last_done = max(tally.last_done, done)


def _percentile_ms(sorted_seconds: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted latencies, in milliseconds."""
    if not sorted_seconds:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_seconds)))
    return sorted_seconds[rank - 1] * 1000.0


def _cpu_per_request(tally: _Tally, until: _Usage) -> dict[str, float]:
    """CPU time per request answered in the measured window: the servers' and the load
    generator's (microseconds), and how busy the machine was (0 to 1)."""
    since = tally.measured_from
    answered = len(tally.latencies) + tally.errors_measured
    if since is None or answered == 0:
        return {"server_us": math.nan, "load_us": math.nan, "machine_busy": math.nan}
    total = until.machine_total - since.machine_total
    return {
        "server_us": (until.servers - since.servers) / answered * 1e6,
        "load_us": (until.load - since.load) / answered * 1e6,
        "machine_busy": (until.machine_busy - since.machine_busy) / total if total else math.nan,
    }


def _summary(tally: _Tally, concurrency: int, until: _Usage) -> dict[str, Any]:
    latencies = sorted(tally.latencies)
    window = max(tally.last_done, tally.end) - tally.measure_from
    cpu = _cpu_per_request(tally, until)
    return {
        "concurrency": concurrency,
        "deposits": len(latencies),
        "seconds": window,
        "rate": len(latencies) / window,
        "p50_ms": _percentile_ms(latencies, 0.50),
        "p99_ms": _percentile_ms(latencies, 0.99),
        "errors": sum(tally.errors.values()),
        "error_codes": dict(tally.errors),
        "acked": dict(tally.acked),
        "server_cpu_us": cpu["server_us"],
        "load_cpu_us": cpu["load_us"],
        "machine_busy": cpu["machine_busy"],
    }


async def _load(
    target: str,
    concurrency: int,
    duration: float,
    warmup: float,
    accounts: Sequence[str],
    server_pids: Sequence[int] = (),
) -> dict[str, Any]:
    """Drive ``concurrency`` deposit loops over one channel per target (``target`` may name
    several, comma-separated: the loops take turns among them); warm-up is not measured.
    The CPU time of the processes ``server_pids``, of this one and of the whole machine is
    read at both ends of the measured window."""
    async with contextlib.AsyncExitStack() as channels:
        stubs = []
        for address in target.split(","):
            channel = await channels.enter_async_context(grpc.aio.insecure_channel(address))
            await asyncio.wait_for(channel.channel_ready(), READY_TIMEOUT)
            stubs.append(bank_pb2_grpc.BankStub(channel))
        now = time.perf_counter()
        tally = _Tally(now + warmup, now + warmup + duration, server_pids)
        workers = [_worker(stubs[i % len(stubs)], i, accounts, tally) for i in range(concurrency)]
        await asyncio.gather(*workers)
        until = _Usage.now(server_pids)
    return _summary(tally, concurrency, until)


# Child processes -----------------------------------------------------------------------


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


def run_load(
    children: Children,
    target: str,
    concurrency: int,
    args: argparse.Namespace,
    server_pids: Sequence[int] = (),
) -> dict[str, Any]:
    """Run one load-generator process to completion; its JSON result. ``server_pids``: the
    processes serving ``target``, whose CPU time it reports."""
    proc = children.spawn(
        [
            str(SCRIPT),
            "--load",
            target,
            "--server-pids",
            ",".join(str(pid) for pid in server_pids),
            "--concurrency",
            str(concurrency),
            "--duration",
            str(args.duration),
            "--warmup",
            str(args.warmup),
        ]
    )
    try:
        out, _ = proc.communicate(timeout=args.warmup + args.duration + 2 * RPC_TIMEOUT + 30)
    except subprocess.TimeoutExpired:
        stop(proc)
        raise RuntimeError(f"load generator against {target} did not finish") from None
    if proc.returncode != 0:
        raise RuntimeError(f"load generator against {target} failed ({proc.returncode})")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


# The two servers ------------------------------------------------------------------------


def run_levels(
    children: Children,
    servers: Sequence[subprocess.Popen[bytes]],
    target: str,
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """One load run per concurrency level against ``target`` (served by the processes
    ``servers``); every server must survive every run.

    Each result also says where the CPU went in its measured window (``_cpu_per_request``):
    on a machine the load generator shares, that says more than the rate, because every
    microsecond the servers spend is one the load generator cannot (``cpu_table``)."""
    results = []
    pids = [server.pid for server in servers]
    for level in args.levels:
        results.append(run_load(children, target, level, args, pids))
        for server in servers:
            if server.poll() is not None:
                raise RuntimeError(f"a server of {target} exited ({server.returncode}) under load")
    return results


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    results = run_levels(children, [proc], target, args)
    stop(proc)
    return results


async def _open_accounts(target: str) -> None:
    async with BankClient(target) as bank:
        for account_id in ACCOUNTS:
            await bank.create_account(account_id=account_id, owner="bench")


async def _balances(target: str) -> dict[str, int]:
    async with BankClient(target) as bank:
        accounts = await bank.get_balances(account_ids=ACCOUNTS)
    return {a.account_id: a.balance for a in accounts}


def bench_dbank(
    children: Children,
    store_flags: Sequence[str],
    args: argparse.Namespace,
    progress: Console,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One branch process on the store ``store_flags`` name (``--data DIR`` or ``--store
    URL``): every level, then the lost-update check."""
    branch = ["-m", "dbank", "branch", "--id", "1", "--listen", "127.0.0.1:0", *store_flags]
    proc = children.spawn(branch)
    target = await_ready(proc, BRANCH_READY, "dbank branch")
    asyncio.run(_open_accounts(target))
    progress.print(f"[dim]branch ({' '.join(store_flags)}) at {target}: levels {args.levels}[/dim]")
    results = run_levels(children, [proc], target, args)
    check = verify(asyncio.run(_balances(target)), results)
    check["branch_exit_status"] = stop(proc)
    return results, check


def verify(balances: dict[str, int], results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Compare balances with acknowledged deposits: none may be lost. Errored requests may
    or may not have been applied (a timeout is not a refusal), so they bound the surplus."""
    acked: Counter[str] = Counter()
    for result in results:
        acked.update(result["acked"])
    errors = sum(r["errors"] for r in results)
    lost = sum(max(0, acked[a] - balances[a]) for a in ACCOUNTS)
    surplus = sum(max(0, balances[a] - acked[a]) for a in ACCOUNTS)
    return {
        "balances_total": sum(balances.values()),
        "acknowledged": sum(acked.values()),
        "lost_updates": lost,
        "surplus": surplus,
        "errored_requests": errors,
        "ok": lost == 0 and surplus <= errors,
    }


# Conditions and report -------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def filesystem_of(path: Path) -> str:
    """The type of the filesystem holding ``path`` (fsync cost depends on it)."""
    best, kind = "", "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            mount = parts[1]
            if str(path).startswith(mount) and len(mount) > len(best):
                best, kind = mount, f"{parts[2]} on {parts[0]}"
    return kind


def conditions(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "event_loop": event_loop.describe(),
        "durability": DURABILITY,
        "data_dir_fs": filesystem_of(data_dir),
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "levels": args.levels,
        "accounts": len(ACCOUNTS),
        "note": "load generator and server are separate processes on the same machine",
    }


def print_conditions(console: Console, cond: dict[str, Any]) -> None:
    console.print("[bold]Deposit benchmark: bare grpc.aio server vs durable dbank branch[/bold]")
    console.print(f"machine:    {cond['cpus']} CPUs, {cond['cpu_model']}, {cond['platform']}")
    console.print(
        f"software:   Python {cond['python']}, grpcio {cond['grpcio']},"
        f" {cond['event_loop']} in both servers (the load generator: asyncio)"
    )
    console.print(f"durability: {cond['durability']} (data dir on {cond['data_dir_fs']})")
    console.print(
        f"load:       {cond['duration_s']} s per level after {cond['warmup_s']} s warm-up,"
        f" levels {cond['levels']}, {cond['accounts']} accounts, 1 channel, separate process"
    )


def _fmt(value: float, digits: int) -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def results_table(
    baseline: Sequence[dict[str, Any]],
    runs: Sequence[dict[str, Any]],
    *,
    names: tuple[str, str] = ("bare", "dbank"),
    title: str = "Deposits (rate in deposits/s, latency in ms, server CPU in us per request)",
) -> Table:
    """One row per concurrency level: two runs side by side (``names``: the baseline's,
    then the measured one's), and the ratio of their rates."""
    base, measured = names
    table = Table(title=title)
    headers = ["conc"]
    for name in names:
        headers += [f"{name}/s", f"{name} p50", f"{name} p99", f"{name} cpu"]
    for name in (*headers, f"{measured}/{base}", f"errors {base[0]}/{measured[0]}"):
        table.add_column(name, justify="right", no_wrap=True)
    for b, d in zip(baseline, runs, strict=True):
        table.add_row(
            str(b["concurrency"]),
            _fmt(b["rate"], 0),
            _fmt(b["p50_ms"], 2),
            _fmt(b["p99_ms"], 2),
            _fmt(b["server_cpu_us"], 0),
            _fmt(d["rate"], 0),
            _fmt(d["p50_ms"], 2),
            _fmt(d["p99_ms"], 2),
            _fmt(d["server_cpu_us"], 0),
            f"{d['rate'] / b['rate']:.2f}" if b["rate"] else "-",
            f"{b['errors']}/{d['errors']}",
        )
    return table


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
                _fmt(result["rate"], 0),
                _fmt(result["server_cpu_us"], 0),
                _fmt(result["load_cpu_us"], 0),
                _fmt(cost, 0),
                _fmt(result["machine_busy"] * 100, 0) + "%",
                "" if index == 0 else _fmt(base_cost / cost, 2),
                end_section=index == len(level) - 1,
            )
    return table


def print_check(console: Console, check: dict[str, Any]) -> None:
    verdict = "[green]OK[/green]" if check["ok"] else "[red]FAILED[/red]"
    console.print(
        f"correctness {verdict}: lost updates: {check['lost_updates']}"
        f" (balances total {check['balances_total']},"
        f" acknowledged deposits {check['acknowledged']},"
        f" surplus {check['surplus']} <= errored requests {check['errored_requests']});"
        f" branch exit status on SIGTERM: {check['branch_exit_status']}"
    )


# Entry points ----------------------------------------------------------------------------


def parse_levels(text: str) -> list[int]:
    levels = [int(part) for part in text.split(",") if part.strip()]
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("expected positive integers such as 1,16,64")
    return levels


def _pids(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--levels", type=parse_levels, default=[1, 16, 64], help="e.g. 1,16,64")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds measured per level")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per level")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    child = parser.add_mutually_exclusive_group()
    child.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    child.add_argument("--serve-floor", type=Path, metavar="DIR", help=argparse.SUPPRESS)
    child.add_argument("--load", metavar="TARGET", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--server-pids", type=_pids, default=[], help=argparse.SUPPRESS)
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
        print_conditions(console, cond)
        bare = bench_baseline(children, args, progress)
        floor = bench_baseline(children, args, progress, floor_dir=Path(tmp))
        store = ["--data", str(Path(tmp) / "branch-1")]
        dbank, check = bench_dbank(children, store, args, progress)
    console.print(results_table(bare, dbank))
    console.print(
        results_table(
            bare,
            floor,
            names=("bare", "floor"),
            title="The durable floor: one row per deposit, group-committed and fsynced",
        )
    )
    console.print(cpu_table({"bare": bare, "floor": floor, "dbank": dbank}))
    print_check(console, check)
    if args.json is not None:
        report = {"conditions": cond, "bare": bare, "floor": floor, "dbank": dbank, "check": check}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if check["ok"] else 1


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
    if args.load is not None:
        result = asyncio.run(
            _load(
                args.load, args.concurrency, args.duration, args.warmup, ACCOUNTS, args.server_pids
            )
        )
        print(json.dumps(result), flush=True)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())

"""What the benchmarks share: the machine's description, the deposit load generator, a
branch under that load (``dbank.hosting`` starts it) with its lost-update check, and the
results table.

The load generator runs as a child process of its own, this file run as a script:
``_harness.py --load TARGET --concurrency N --duration S --warmup S --server-pids P,Q``
prints one JSON line (``run_load`` starts it and reads that line). It drives N concurrent
``Deposit`` calls of 1 minor unit, each with a fresh request id, over one channel per
target (``TARGET`` may name several, comma-separated), and measures after the warm-up.
With ``--ca FILE --token-file FILE`` it speaks TLS (trusting that CA) and sends the token
with every call as metadata, as ``BankClient(tls=..., token=...)`` does, or with
``--token-as credentials`` through gRPC's call credentials.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import grpc
from rich.console import Console
from rich.table import Table

from dbank import _event_loop as event_loop
from dbank._proto import bank_pb2 as pb
from dbank._proto import bank_pb2_grpc
from dbank.client import BankClient
from dbank.hosting import BranchProcess, start_branch
from dbank.security import Role, init_pki, issue_token, load_ca, load_token_signing_key

HARNESS = Path(__file__).resolve()
DURABILITY = "SQLite WAL, synchronous=FULL, group commit; every acknowledged deposit fsynced"
ACCOUNTS = tuple(f"bench-{i}" for i in range(4))
REPORT_WIDTH = 130
READY_TIMEOUT = 30.0
RPC_TIMEOUT = 10.0
TOKEN_TTL = timedelta(hours=1)
TOKEN_AS = ("metadata", "credentials")
"""How the load sends the token: ``authorization`` metadata given to each call (as
``BankClient`` does), or gRPC call credentials on the channel (which cost the client
160-240 us of CPU per call more)."""


# A secure bank's material ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Secure:
    """What a secure branch and its callers need: the bank's TLS directory (made by
    ``init_pki``), its CA certificate, and one teller token (every account, every deposit)."""

    tls_dir: Path
    ca: bytes
    token: str
    token_as: str = TOKEN_AS[0]

    @property
    def ca_path(self) -> Path:
        return self.tls_dir / "ca.crt"

    @property
    def token_path(self) -> Path:
        return self.tls_dir / "bench.token"

    @classmethod
    def make(
        cls, tls_dir: Path, branches: Sequence[int] = (1,), token_as: str = TOKEN_AS[0]
    ) -> Secure:
        """A fresh PKI for ``branches`` in ``tls_dir``, and a teller token "bench" valid
        for ``TOKEN_TTL``; the token is also written to ``token_path`` (mode 0600), for the
        load generator's process."""
        init_pki(tls_dir, list(branches))
        signing_key = load_token_signing_key(tls_dir)
        token = issue_token(
            signing_key, subject="bench", role=Role.TELLER, ttl=TOKEN_TTL, now=datetime.now(UTC)
        )
        secure = cls(tls_dir, load_ca(tls_dir / "ca.crt"), token, token_as)
        secure.token_path.touch(mode=0o600)
        secure.token_path.write_text(token)
        return secure

    def client(self, target: str) -> BankClient:
        return BankClient(target, tls=self.ca, token=self.token)


def channel(address: str, ca: bytes | None = None, token: str | None = None) -> grpc.aio.Channel:
    """A channel to ``address``: plaintext, or (given ``ca``) TLS trusting ``ca``, with
    ``token`` sent as ``authorization: Bearer`` through gRPC's call credentials
    (``--token-as credentials``; ``BankClient`` sends it as metadata on each call)."""
    if ca is None:
        return grpc.aio.insecure_channel(address)
    credentials = grpc.ssl_channel_credentials(root_certificates=ca)
    if token is not None:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(token)
        )
    return grpc.aio.secure_channel(address, credentials)


# The machine -----------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_line() -> str:
    """One line for a report: architecture, CPUs and Python."""
    return (
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}"
    )


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
    """The machine, the software and the load of a run of the deposit load."""
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


# The load generator (child process) --------------------------------------------------------


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


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(slots=True)
class _Tally:
    """What the workers of one load run observed."""

    measure_from: float
    end: float
    server_pids: Sequence[int] = ()
    metadata: tuple[tuple[str, str], ...] = ()
    """Sent with every call (the token, with ``--token-as metadata``)."""
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
            if tally.metadata:
                await stub.Deposit(request, timeout=RPC_TIMEOUT, metadata=tally.metadata)
            else:
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
    ca: bytes | None = None,
    token: str | None = None,
    token_as: str = TOKEN_AS[0],
) -> dict[str, Any]:
    """Drive ``concurrency`` deposit loops over one channel per target (``target`` may name
    several, comma-separated: the loops take turns among them); warm-up is not measured.
    The CPU time of the processes ``server_pids``, of this one and of the whole machine is
    read at both ends of the measured window. ``ca`` and ``token``: see ``channel``; the
    TLS handshake happens before the warm-up, so the measured window does not pay for it;
    ``token_as`` (``TOKEN_AS``) says how the token goes."""
    by_call = token is not None and token_as == "metadata"
    metadata = (("authorization", f"Bearer {token}"),) if by_call else ()
    async with contextlib.AsyncExitStack() as channels:
        stubs = []
        for address in target.split(","):
            opened = await channels.enter_async_context(
                channel(address, ca, None if by_call else token)
            )
            await asyncio.wait_for(opened.channel_ready(), READY_TIMEOUT)
            stubs.append(bank_pb2_grpc.BankStub(opened))
        now = time.perf_counter()
        tally = _Tally(now + warmup, now + warmup + duration, server_pids, metadata)
        workers = [_worker(stubs[i % len(stubs)], i, accounts, tally) for i in range(concurrency)]
        await asyncio.gather(*workers)
        until = _Usage.now(server_pids)
    return _summary(tally, concurrency, until)


# The load generator's process, and the servers under load --------------------------------


class Server(Protocol):
    """A process serving the load's target (a ``subprocess.Popen`` is one)."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...


def run_load(
    target: str,
    concurrency: int,
    args: argparse.Namespace,
    server_pids: Sequence[int] = (),
    secure: Secure | None = None,
) -> dict[str, Any]:
    """Run one load-generator process to completion; its JSON result. ``server_pids``: the
    processes serving ``target``, whose CPU time it reports; ``secure``: speak TLS and send
    its token (the token goes by file, not on the command line)."""
    command = [
        sys.executable,
        str(HARNESS),
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
    if secure is not None:
        command += ["--ca", str(secure.ca_path), "--token-file", str(secure.token_path)]
        command += ["--token-as", secure.token_as]
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            timeout=args.warmup + args.duration + 2 * RPC_TIMEOUT + 30,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"load generator against {target} did not finish") from None
    if done.returncode != 0:
        raise RuntimeError(f"load generator against {target} failed ({done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


def run_levels(
    servers: Sequence[Server],
    target: str,
    args: argparse.Namespace,
    secure: Secure | None = None,
) -> list[dict[str, Any]]:
    """One load run per concurrency level against ``target`` (served by the processes
    ``servers``); every server must survive every run.

    Each result also says where the CPU went in its measured window (``_cpu_per_request``):
    on a machine the load generator shares, that says more than the rate, because every
    microsecond the servers spend is one the load generator cannot."""
    results = []
    pids = [server.pid for server in servers]
    for level in args.levels:
        results.append(run_load(target, level, args, pids, secure))
        for server in servers:
            if (status := server.poll()) is not None:
                raise RuntimeError(f"a server of {target} exited ({status}) under load")
    return results


# A branch under the load -------------------------------------------------------------------


@contextlib.contextmanager
def serving_branch(
    data_dir: Path, store: str | None = None, processes: int = 1, secure: Secure | None = None
) -> Iterator[list[BranchProcess]]:
    """``processes`` ``dbank branch`` processes that serve branch 1 (a bank of one branch,
    so no lease) on free loopback ports, on the Redis database ``store`` names, else on a
    SQLite file in ``data_dir`` (which then holds only their logs); ``--insecure``, or
    given ``secure`` with TLS and tokens (``--tls-dir``). Each one still running at the end
    is killed."""
    branches: list[BranchProcess] = []
    try:
        for k in range(processes):
            directory = data_dir if processes == 1 else data_dir / f"process-{k + 1}"
            tls_dir = None if secure is None else secure.tls_dir
            branches.append(start_branch(1, directory, store=store, tls_dir=tls_dir))
        yield branches
    finally:
        for branch in branches:
            if branch.process.poll() is None:
                branch.kill()


def _client(target: str, secure: Secure | None) -> BankClient:
    return BankClient(target) if secure is None else secure.client(target)


async def open_accounts(target: str, secure: Secure | None = None) -> None:
    """Open the benchmark's ``ACCOUNTS`` at the branch at ``target``."""
    async with _client(target, secure) as bank:
        for account_id in ACCOUNTS:
            await bank.create_account(account_id=account_id, owner="bench")


async def _balances(target: str, secure: Secure | None = None) -> dict[str, int]:
    async with _client(target, secure) as bank:
        accounts = await bank.get_balances(account_ids=ACCOUNTS)
    return {a.account_id: a.balance for a in accounts}


def bench_dbank(
    data_dir: Path,
    args: argparse.Namespace,
    progress: Console,
    store: str | None = None,
    secure: Secure | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One branch process on SQLite in ``data_dir``, or on the Redis ``store`` names,
    ``--insecure`` or (given ``secure``) with TLS and a token on every call: every level,
    then the lost-update check."""
    with serving_branch(data_dir, store, secure=secure) as (branch,):
        asyncio.run(open_accounts(branch.address, secure))
        where = store or data_dir
        how = "--insecure" if secure is None else "TLS + token"
        progress.print(
            f"[dim]branch ({where}, {how}) at {branch.address}: levels {args.levels}[/dim]"
        )
        results = run_levels([branch.process], branch.address, args, secure)
        check = check_branch(branch, results, secure)
    return results, check


def check_branch(
    branch: BranchProcess, results: Sequence[dict[str, Any]], secure: Secure | None = None
) -> dict[str, Any]:
    """The lost-update check of ``branch`` after the load ``results``, then its clean stop
    (SIGTERM; the check says its exit status)."""
    check = verify(asyncio.run(_balances(branch.address, secure)), results)
    check["branch_exit_status"] = branch.stop()
    return check


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


def print_check(console: Console, check: dict[str, Any]) -> None:
    verdict = "[green]OK[/green]" if check["ok"] else "[red]FAILED[/red]"
    console.print(
        f"correctness {verdict}: lost updates: {check['lost_updates']}"
        f" (balances total {check['balances_total']},"
        f" acknowledged deposits {check['acknowledged']},"
        f" surplus {check['surplus']} <= errored requests {check['errored_requests']});"
        f" branch exit status on SIGTERM: {check['branch_exit_status']}"
    )


# The report -----------------------------------------------------------------------------


def fmt(value: float, digits: int) -> str:
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
            fmt(b["rate"], 0),
            fmt(b["p50_ms"], 2),
            fmt(b["p99_ms"], 2),
            fmt(b["server_cpu_us"], 0),
            fmt(d["rate"], 0),
            fmt(d["p50_ms"], 2),
            fmt(d["p99_ms"], 2),
            fmt(d["server_cpu_us"], 0),
            f"{d['rate'] / b['rate']:.2f}" if b["rate"] else "-",
            f"{b['errors']}/{d['errors']}",
        )
    return table


# Arguments and the load generator's entry point --------------------------------------------


def parse_levels(text: str) -> list[int]:
    levels = [int(part) for part in text.split(",") if part.strip()]
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("expected positive integers such as 1,16,64")
    return levels


def load_parser(description: str | None) -> argparse.ArgumentParser:
    """The options of a benchmark that runs the deposit load: levels, duration, warm-up
    and a JSON report."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--levels", type=parse_levels, default=[1, 16, 64], help="e.g. 1,16,64")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds measured per level")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per level")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return parser


def _pids(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main(argv: Sequence[str] | None = None) -> int:
    """The load generator's process (``run_load``): one load run, its result one JSON line."""
    parser = argparse.ArgumentParser(description="the deposit load generator (see run_load)")
    parser.add_argument("--load", metavar="TARGET", required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--server-pids", type=_pids, default=[])
    parser.add_argument("--ca", type=Path, help="speak TLS, trusting this CA certificate")
    parser.add_argument("--token-file", type=Path, help="send this file's token on every call")
    parser.add_argument("--token-as", choices=TOKEN_AS, default=TOKEN_AS[0])
    args = parser.parse_args(argv)
    ca = None if args.ca is None else load_ca(args.ca)
    token = None if args.token_file is None else args.token_file.read_text().strip()
    try:
        result = asyncio.run(
            _load(
                args.load,
                args.concurrency,
                args.duration,
                args.warmup,
                ACCOUNTS,
                args.server_pids,
                ca,
                token,
                args.token_as,
            )
        )
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

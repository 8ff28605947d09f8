"""A check on real processes: ``dbank branch`` processes on loopback, every link between
two of them through a TCP proxy this process controls, the workload's customers, and a
fault schedule drawn from the seed: cut links, one-way cuts, an isolated branch, a branch
killed with SIGKILL and restarted, slowed links. Then the faults heal, every unanswered
request is settled, and the checkers read the history and the replicas' final state."""

from __future__ import annotations

import asyncio
import functools
import random
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from dbank import _event_loop as event_loop
from dbank.check._checkers import Verdict, check
from dbank.check._history import Fault
from dbank.check._workload import Workload
from dbank.client import BankClient
from dbank.hosting import LocalPki, ProxiedBank, proxied_bank
from dbank.security import Role

FAULT_KINDS = ("cut", "one-way", "isolate", "kill", "slow")
SLOW_LINK = 0.2
"""Seconds a slowed link holds what it carries."""
WORKERS_PER_BRANCH = 2

Progress = Callable[[float, str], None]
"""Told the share of the run done (0 to 1) and what is happening."""


def _untold(done: float, what: str) -> None:
    pass


@dataclass
class CheckRun:
    """A finished run: its workload (history, counts) and the checkers' verdicts."""

    workload: Workload
    verdicts: list[Verdict]
    branches: int
    duration: float
    seed: int

    @property
    def ok(self) -> bool:
        return all(verdict.ok for verdict in self.verdicts)


def run_processes(
    *,
    branches: int,
    duration: float,
    seed: int,
    insecure: bool = False,
    progress: Progress = _untold,
) -> CheckRun:
    """Start the bank, run the workload and the faults for ``duration`` seconds, heal,
    settle, check; stop every process on the way out."""
    ids = list(range(1, branches + 1))
    with tempfile.TemporaryDirectory(prefix="dbank-check-") as tmp:
        root = Path(tmp)
        pki = None if insecure else LocalPki.make(root / "tls", ids)
        connect = (
            BankClient
            if pki is None
            else functools.partial(
                BankClient, tls=pki.ca, token=pki.token("check-teller", Role.TELLER)
            )
        )
        progress(0.0, f"starting {branches} branches")
        with proxied_bank(root, branches, tls_dir=None if pki is None else pki.tls_dir) as bank:
            workload = Workload(
                bank, seed=seed, workers=WORKERS_PER_BRANCH * branches, connect=connect
            )
            verdicts = event_loop.run(_check(bank, workload, duration, seed, progress))
    return CheckRun(workload, verdicts, branches, duration, seed)


async def _check(
    bank: ProxiedBank, workload: Workload, duration: float, seed: int, progress: Progress
) -> list[Verdict]:
    async def schedule() -> None:
        # Its own stream of the seed, apart from the workload's.
        await _faults(bank, workload, duration, random.Random(f"faults/{seed}"), progress)

    return await check_bank(bank, workload, schedule, progress)


async def check_bank(
    bank: ProxiedBank,
    workload: Workload,
    schedule: Callable[[], Awaitable[None]],
    progress: Progress = _untold,
) -> list[Verdict]:
    """Set the workload up on ``bank``, run it while ``schedule`` injects faults (it
    records them in ``workload.history.faults``), stop it when ``schedule`` returns, heal,
    settle every unanswered request, read every replica and run every checker."""
    await workload.setup()
    workload.history.start()  # the run's clock starts with its customers
    stop = asyncio.Event()
    work = asyncio.create_task(workload.run(stop))
    try:
        await schedule()
    finally:
        stop.set()
        await work
    progress(1.0, "healing, settling every unanswered request")
    bank.heal()
    await asyncio.get_running_loop().run_in_executor(None, bank.wait_connected)
    await workload.settle()
    progress(1.0, "reading every replica")
    replicas = await workload.final_state()
    return check(workload.history, replicas)


async def _faults(
    bank: ProxiedBank,
    workload: Workload,
    duration: float,
    rng: random.Random,
    progress: Progress,
) -> None:
    """Quiet, then fault windows with quiet between them, until ``duration`` is up."""
    history = workload.history
    loop = asyncio.get_running_loop()
    window = max(1.5, duration / 8)
    quiet = max(1.0, duration / 12)
    end = history.now() + int(duration * 1e9)

    def done() -> float:
        return min(1.0, 1 - (end - history.now()) / (duration * 1e9))

    await _pause(quiet, end, history.now)
    while end - history.now() > (window + quiet) * 1e9:
        kind = rng.choice(FAULT_KINDS)
        a, b = rng.sample(bank.ids, 2)
        targets = (a, b) if kind in ("cut", "one-way", "slow") else (a,)
        start = history.now()
        progress(done(), f"fault: {kind} {' '.join(map(str, targets))}")
        if kind == "cut":
            bank.cut(a, b)
        elif kind == "one-way":
            bank.cut_one_way(a, b)
        elif kind == "isolate":
            bank.isolate(a)
        elif kind == "slow":
            bank.slow(a, b, SLOW_LINK)
        else:
            await loop.run_in_executor(None, bank.branches[a].kill)
        await _pause(window, end, history.now)
        if kind == "kill":
            await loop.run_in_executor(None, bank.start, a)
        bank.heal()
        history.faults.append(Fault(kind, targets, start, history.now()))
        progress(done(), "healed")
        await _pause(quiet, end, history.now)
    await _pause(duration, end, history.now)


async def _pause(seconds: float, end: int, now: Callable[[], int]) -> None:
    """Let the workload run for ``seconds`` (the schedule's own time, not a wait for
    something), but not past ``end``."""
    left = min(seconds, max(0.0, (end - now()) / 1e9))
    if left > 0:
        await asyncio.sleep(left)

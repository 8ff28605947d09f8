"""Jepsen's "bank" workload, the long version: three real branches behind TCP proxies,
eight accounts with a fixed total, concurrent transfers at every branch, and rounds of
faults (a cut link, a SIGKILLed and restarted branch, a branch cut off from all others),
each injected after so many acknowledged transfers. It checks every read of all balances
(sum equal to the total, no balance negative) and, once the faults stop, that all replicas
converge, then prints the counts.

Usage: python benchmarks/bank_workload.py [--rounds N] [--seed S]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from pathlib import Path

from _harness import machine_line

from dbank.check import BankWorkload, converged
from dbank.client import BankClient, Session
from dbank.hosting import ProxiedBank, proxied_bank

PER_FAULT = 80
"""Acknowledged transfers between two fault steps."""


async def faults(bank: ProxiedBank, rounds: int, rng: random.Random, w: BankWorkload) -> None:
    loop = asyncio.get_running_loop()
    await w.after_transfers(PER_FAULT, within=60)
    for _ in range(rounds):
        a, b = rng.sample(bank.ids, 2)
        kind = rng.choice(["cut", "kill", "isolate"])
        if kind == "cut":
            bank.cut(a, b)
        elif kind == "isolate":
            bank.isolate(a)
        else:
            await loop.run_in_executor(None, bank.branches[a].kill)
        w.counts["faults"] += 1
        print(
            f"fault {w.counts['faults']}: {kind} {a}{f' {b}' if kind == 'cut' else ''};"
            f" so far {w.counts}",
            flush=True,
        )
        await w.after_transfers(PER_FAULT, within=60)
        if kind == "kill":
            await loop.run_in_executor(None, bank.start, a)
        bank.heal()
        await w.after_transfers(PER_FAULT, within=60)


async def check(bank: ProxiedBank, rounds: int, seed: int) -> int:
    workload = BankWorkload(bank, [f"jepsen-{k}" for k in range(8)], total=80_000)
    session = Session()
    await workload.setup(session)
    rng = random.Random(seed)
    await workload.run(lambda w: faults(bank, rounds, rng, w))
    bank.heal()
    bank.wait_connected()
    async with BankClient(bank.address(1), session=session) as one:
        await one.get_balances(account_ids=workload.accounts)
    final = await converged(bank, workload.accounts, session)
    counts = workload.counts
    print(machine_line())
    print("bank: 3 branches, SQLite (WAL, synchronous=FULL), links through TCP proxies")
    print(f"operations (transfers tried): {counts['transfers']}")
    print(f"acknowledged transfers:       {counts['acked']}")
    print(f"reads of all balances:        {counts['reads']}")
    print(f"faults injected:              {counts['faults']}")
    print(f"violations:                   {len(workload.violations)}")
    print(f"converged: every replica at {final} (sum {sum(final)})")
    for violation in workload.violations[:10]:
        print("  ", violation)
    return 1 if workload.violations or sum(final) != workload.total else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="dbank-jepsen-") as tmp,
        proxied_bank(Path(tmp)) as bank,
    ):
        code = asyncio.run(check(bank, args.rounds, args.seed))
    sys.exit(code)


if __name__ == "__main__":
    main()

"""Replication benchmark: deposits per second across three branches against one branch,
and replication lag at a fixed load, all in one run on this machine.

Usage: python benchmarks/replication.py [--duration S] [--clients N] [--rate R]

Every branch is a real ``dbank branch`` process on loopback with its own SQLite file
(WAL, synchronous=FULL). Throughput: N clients spread evenly over the branches deposit as
fast as they can for S seconds (the one-branch figure, measured first in the same run, is
the baseline). Lag: while a background load deposits R per second in total, a probe
deposits at branch 1 (write concern LOCAL) and at once reads at branches 2 and 3 with the
deposit's session token; the branch answers only once it has applied the deposit, so the
read's latency is the replication lag plus one loopback round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from _harness import ACCOUNTS, machine_line, open_accounts

from dbank.client import BankClient, Session, WriteConcern
from dbank.hosting import BranchProcess, free_ports, start_branch, wait_serving


def start_bank(root: Path, size: int) -> list[BranchProcess]:
    addresses = {i + 1: f"127.0.0.1:{p}" for i, p in enumerate(free_ports(size))}
    branches = []
    for i, address in addresses.items():
        peers = {j: a for j, a in addresses.items() if j != i}
        branches.append(start_branch(i, root / f"branch-{i}", listen=address, peers=peers))
    for branch in branches:
        wait_serving(branch.address, service="dbank.v1.Replication" if size > 1 else "")
    return branches


async def throughput(
    addresses: list[str], clients: int, duration: float, concern: WriteConcern
) -> float:
    done = 0
    deadline = time.monotonic() + duration

    async def worker(k: int) -> None:
        nonlocal done
        address = addresses[k % len(addresses)]
        async with BankClient(address, write_concern=concern) as client:
            while time.monotonic() < deadline:
                await client.deposit(account_id=ACCOUNTS[k % len(ACCOUNTS)], amount=1)
                done += 1

    started = time.monotonic()
    await asyncio.gather(*(worker(k) for k in range(clients)))
    return done / (time.monotonic() - started)


async def lag(addresses: list[str], rate: float, probes: int) -> list[float]:
    stop = asyncio.Event()

    async def background(address: str) -> None:
        period = len(addresses) / rate
        async with BankClient(address, write_concern=WriteConcern.LOCAL) as client:
            next_at = time.monotonic()
            while not stop.is_set():
                await client.deposit(account_id=ACCOUNTS[1], amount=1)
                next_at += period
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))  # the load's pace

    loads = [asyncio.create_task(background(a)) for a in addresses]
    samples: list[float] = []
    session = Session()
    async with (
        BankClient(addresses[0], session=session, write_concern=WriteConcern.LOCAL) as writer,
        BankClient(addresses[1], session=session) as two,
        BankClient(addresses[2], session=session) as three,
    ):
        for _ in range(probes):
            await writer.deposit(account_id=ACCOUNTS[0], amount=1)
            token = session.token
            started = time.monotonic()
            await asyncio.gather(
                two.get_balance(account_id=ACCOUNTS[0]), three.get_balance(account_id=ACCOUNTS[0])
            )
            samples.append(time.monotonic() - started)
            session.observe(token)
    stop.set()
    await asyncio.gather(*loads)
    return samples


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(args: argparse.Namespace, root: Path) -> None:
    print(machine_line())
    print("durability: SQLite WAL, synchronous=FULL, group commit, per branch")
    print(f"load: {args.clients} clients, {args.duration} s per figure, deposits of 1 unit\n")
    single = start_bank(root / "single", 1)
    try:
        await open_accounts(single[0].address)
        one = await throughput([single[0].address], args.clients, args.duration, WriteConcern.ALL)
    finally:
        single[0].stop()
    bank = start_bank(root / "bank", 3)
    try:
        addresses = [b.address for b in bank]
        await open_accounts(addresses[0])
        local = await throughput(addresses, args.clients, args.duration, WriteConcern.LOCAL)
        everywhere = await throughput(addresses, args.clients, args.duration, WriteConcern.ALL)
        samples = await lag(addresses, args.rate, args.probes)
    finally:
        for branch in bank:
            branch.stop()
    print(f"{'setup':<44}{'deposits/s':>12}{'vs one branch':>16}")
    print(f"{'one branch':<44}{one:>12,.0f}{1.0:>16.2f}")
    print(f"{'3 branches, write concern LOCAL':<44}{local:>12,.0f}{local / one:>16.2f}")
    print(f"{'3 branches, write concern ALL':<44}{everywhere:>12,.0f}{everywhere / one:>16.2f}")
    p50, p99 = percentile(samples, 0.5) * 1e3, percentile(samples, 0.99) * 1e3
    print(
        f"\nreplication lag at {args.rate:.0f} deposits/s over 3 branches ({len(samples)} probes,"
        f" to both other branches): p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=48)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--probes", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dbank-repl-bench-") as tmp:
        asyncio.run(measure(args, Path(tmp)))


if __name__ == "__main__":
    main()

"""How long a branch's start-up store check takes, and a full ``dbank verify``.

Fills a SQLite store with ``--ops`` ops (1,000 accounts opened, then deposits, one outcome
per op, committed in batches as the writer does), then times ``Store.verify()`` (what
``open_store`` runs before a branch serves: every row's digest and the version vector)
and ``Store.verify(replay=True)`` (``dbank verify``: also decode and replay every op).

    .venv/bin/python benchmarks/store_check.py --ops 1000000 [--keep DIR]
    .venv/bin/python benchmarks/store_check.py --ops 100000 --redis   # a redis-server of its own
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from dbank.hosting import RedisServer
from dbank.ledger import (
    AccountType,
    Deposit,
    LedgerState,
    Op,
    OpenAccount,
    OpId,
    Outcome,
    VersionVector,
)
from dbank.store import Commit, RedisStore, SqliteStore, Store

ACCOUNTS = 1_000
BATCH = 10_000


def _op(seq: int) -> Op:
    if seq <= ACCOUNTS:
        body: OpenAccount | Deposit = OpenAccount(f"a{seq}", AccountType.CHECKING, "USD", "o")
    else:
        body = Deposit(f"a{seq % ACCOUNTS + 1}", 100)
    return Op(OpId(1, seq), VersionVector({1: seq - 1}), seq, f"r{seq}", "USD", body)


async def _fill(store: Store, count: int) -> None:
    state = LedgerState()
    for start in range(1, count + 1, BATCH):
        ops = [_op(seq) for seq in range(start, min(start + BATCH, count + 1))]
        overlay = state.overlay()
        for op in ops:
            overlay.apply(op)
        outcomes = [(("a1", op.request_id), Outcome("fp", op.id)) for op in ops]
        await store.commit(Commit(ops, overlay.delta(), outcomes))
        state.absorb(overlay)


async def _time(store: Store) -> None:
    try:
        for replay in (False, True):
            began = time.perf_counter_ns()
            found = await store.verify(replay=replay)
            took = (time.perf_counter_ns() - began) // 1_000_000
            what = "verify(replay=True), dbank verify" if replay else "verify(), at start"
            print(f"{what}: {took} ms, rows {found.rows}, replayed {found.replayed}, ok {found.ok}")
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="Fill (or reuse) the store in this directory.")
    parser.add_argument("--redis", action="store_true", help="A Redis store instead.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        if args.redis:
            server = RedisServer(Path(scratch)).start()
            try:
                _run(lambda: RedisStore.open(server.url(0), branch_id=1), args.ops, fill=True)
            finally:
                server.stop()
            return
        path = (args.keep or Path(scratch)) / "branch-1.sqlite3"
        fill = not path.exists()
        _run(lambda: SqliteStore.open(path, branch_id=1), args.ops, fill=fill)


def _run(open_store: Callable[[], Awaitable[Store]], count: int, *, fill: bool) -> None:
    async def fill_store() -> None:
        began = time.perf_counter_ns()
        store = await open_store()
        try:
            await _fill(store, count)
        finally:
            await store.close()
        print(f"filled {count} ops in {(time.perf_counter_ns() - began) // 10**6} ms")

    async def time_store() -> None:
        await _time(await open_store())

    if fill:
        asyncio.run(fill_store())
    asyncio.run(time_store())


if __name__ == "__main__":
    main()

"""Branches started one after another, in every order, answer at once.

A branch started before its peers has channels to them that failed to connect; a call
that needs such a peer right after it has come up must wait for the channel's next
attempt (a few hundred milliseconds away) instead of failing with the gRPC core's
"failed to connect to all addresses". Each round starts three branches one after another,
each serving before the next starts, and at once opens, at every branch, an account owned
by each branch (an account is opened by its owner: the others forward the request to it).

The branches are real processes, forked from a fork server (``multiprocessing``'s
``forkserver``: one fresh interpreter that has imported dbank and then forks a process per
branch), so a round costs a fork per branch, not an interpreter start: the test process
itself uses gRPC already and must not fork.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import logging.handlers
import multiprocessing
import multiprocessing.queues
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path

import pytest
from support.secure import PKI, BankClient

from dbank import _log_limit as log_limit
from dbank.branch import BranchConfig
from dbank.client import RetryPolicy
from dbank.hosting import bank_configs
from dbank.ledger import Unavailable
from dbank.ledger.ownership import owner_branch
from dbank.server import BranchServer

IDS = (1, 2, 3)
ORDERS = list(itertools.permutations(IDS))
ROUNDS_PER_ORDER = int(os.environ.get("DBANK_START_ORDER_ROUNDS", "4"))
"""Rounds of each of the 6 orders: 24 banks started by default, more with
``DBANK_START_ORDER_ROUNDS``."""
START_DEADLINE = 20.0
REFUSAL_WINDOW = 1.0
"""The refusal test's window of repeated log lines (the branches' is 10 s)."""
ONCE = RetryPolicy(attempts=1)
"""No retry by the client: the branch itself must reach its peer."""

_FORKS = multiprocessing.get_context("forkserver")
_FORKS.set_forkserver_preload(["dbank.server", "dbank.client", __name__])


def _serve(
    config: BranchConfig,
    ready: Connection,
    logs: multiprocessing.queues.Queue[logging.LogRecord] | None,
    window: float | None,
) -> None:
    """A branch process: serve until SIGTERM or SIGKILL, saying "ready" once serving.
    ``logs``: where its log records go (INFO and up); ``window``: its ``RepeatLimiter``s'
    window, if not the default."""
    if logs is not None:
        handler = logging.handlers.QueueHandler(logs)
        handler.setFormatter(logging.Formatter("%(message)s"))  # a traceback would show
        logging.basicConfig(level=logging.INFO, handlers=[handler])
    if window is not None:
        log_limit.WINDOW = window

    async def serve() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        server = await BranchServer.start(config)
        ready.send("ready")
        try:
            await stop.wait()
        finally:
            await server.stop(0)

    asyncio.run(serve())


class Branches:
    """Branch processes of one bank, started one at a time."""

    def __init__(
        self,
        configs: Sequence[BranchConfig],
        logs: multiprocessing.queues.Queue[logging.LogRecord] | None = None,
        window: float | None = None,
    ) -> None:
        self.configs = {config.branch_id: config for config in configs}
        self.processes: dict[int, multiprocessing.process.BaseProcess] = {}
        self._logs = logs
        self._window = window

    def address(self, branch_id: int) -> str:
        return self.configs[branch_id].listen

    async def start(self, branch_id: int) -> None:
        """Fork branch ``branch_id`` and return once it serves."""
        theirs, ours = _FORKS.Pipe(duplex=False)
        process = _FORKS.Process(
            target=_serve,
            args=(self.configs[branch_id], ours, self._logs, self._window),
            name=f"branch-{branch_id}",
        )
        process.daemon = True
        process.start()
        ours.close()
        self.processes[branch_id] = process
        try:
            said = await asyncio.to_thread(theirs.poll, START_DEADLINE)
            assert said, f"branch {branch_id} did not start in {START_DEADLINE} s"
            assert theirs.recv() == "ready"
        finally:
            theirs.close()

    def kill(self) -> None:
        for process in self.processes.values():
            process.kill()
        for process in self.processes.values():
            process.join(10)


@contextlib.contextmanager
def bank(root: Path) -> Iterator[Branches]:
    branches = Branches(bank_configs(IDS, root, tls_dir=PKI.tls_dir))
    try:
        yield branches
    finally:
        branches.kill()


@contextlib.contextmanager
def refusing_bank(
    root: Path, logs: multiprocessing.queues.Queue[logging.LogRecord]
) -> Iterator[Branches]:
    """Branch 1 with branch 2 as its peer, and branch 2 that has no peers: it refuses
    branch 1's stream (UNKNOWN_BRANCH) each time branch 1 tries again. Both log to
    ``logs``, with a window of ``REFUSAL_WINDOW`` seconds."""
    one, two = bank_configs((1, 2), root, tls_dir=PKI.tls_dir)
    branches = Branches([one, dataclasses.replace(two, peers={})], logs, REFUSAL_WINDOW)
    try:
        yield branches
    finally:
        branches.kill()


def ids_owned_by_each(prefix: str) -> dict[int, str]:
    """An account id owned by each branch."""
    found: dict[int, str] = {}
    for n in itertools.count():
        account_id = f"{prefix}-{n}"
        found.setdefault(owner_branch(account_id, IDS), account_id)
        if len(found) == len(IDS):
            return found
    raise AssertionError("unreachable")


@contextlib.asynccontextmanager
async def clients(branches: Branches) -> AsyncIterator[dict[int, BankClient]]:
    opened = {i: BankClient(branches.address(i), retry=ONCE) for i in IDS}
    try:
        yield opened
    finally:
        for client in opened.values():
            await client.close()


@pytest.mark.timeout(240)
async def test_branches_started_in_any_order_open_accounts_of_every_owner_at_once(
    tmp_path: Path,
) -> None:
    failures: list[str] = []
    for number, order in enumerate(ORDERS * ROUNDS_PER_ORDER):
        with bank(tmp_path / f"round-{number}") as branches:
            for branch_id in order:
                await branches.start(branch_id)
            async with clients(branches) as at:
                # At every branch, an account of each owner: nine openings at once, seven
                # of them forwarded to an owner that may have started last.
                wanted = [
                    (asker, owner, account_id)
                    for asker in IDS
                    for owner, account_id in ids_owned_by_each(f"r{number}-at{asker}").items()
                ]
                results = await asyncio.gather(
                    *(
                        at[asker].create_account(account_id=account_id, owner="ann")
                        for asker, _, account_id in wanted
                    ),
                    return_exceptions=True,
                )
        for (asker, owner, account_id), result in zip(wanted, results, strict=True):
            if isinstance(result, BaseException):
                failures.append(
                    f"order {order}: {account_id} (owner {owner}) at branch {asker}: {result!r}"
                )
            else:
                assert result.account_id == account_id
    assert not failures, "\n".join(failures)


async def test_a_peer_that_is_not_up_is_named_in_a_clean_unavailable(tmp_path: Path) -> None:
    with bank(tmp_path / "alone") as branches:
        await branches.start(1)
        owned = ids_owned_by_each("alone")
        async with BankClient(branches.address(1), retry=ONCE, timeout=1.5) as client:
            for owner in (2, 3):
                with pytest.raises(Unavailable) as refused:
                    await client.create_account(account_id=owned[owner], owner="ann")
                error = refused.value
                assert (error.reason, error.metadata) == (
                    "BRANCH_UNREACHABLE",
                    {"branch": str(owner)},
                )
                # Said in dbank's words, not the gRPC core's.
                assert "no connection within the deadline" in error.message
                assert "failed to connect" not in error.message
            # Its own accounts it opens alone.
            assert (await client.create_account(account_id=owned[1], owner="ann")).owner == "ann"


def _said(record: logging.LogRecord) -> str:
    return f"{record.processName} {record.name}: {record.getMessage()}"


async def test_a_refused_peer_is_logged_once_and_then_counted(tmp_path: Path) -> None:
    logs: multiprocessing.queues.Queue[logging.LogRecord] = _FORKS.Queue()
    records: list[logging.LogRecord] = []
    with refusing_bank(tmp_path / "refusing", logs) as branches:
        await branches.start(2)
        await branches.start(1)
        # Until each side has said its count of repeats once (a window after its line).
        deadline = time.monotonic() + 30
        counted: set[str] = set()
        while counted != {"branch-1", "branch-2"}:
            left = deadline - time.monotonic()
            assert left > 0, "no count of repeats:\n" + "\n".join(map(_said, records))
            record = await asyncio.to_thread(logs.get, True, left)
            records.append(record)
            if "more times in the last" in record.getMessage():
                counted.add(record.processName)
    refused = [r for r in records if r.name == "dbank.server._replication_servicer"]
    refusing = [r for r in records if r.name == "dbank.replication._link"]
    said = "\n".join(map(_said, records))
    assert all(r.processName == "branch-2" for r in refused), said
    assert all(r.processName == "branch-1" for r in refusing), said
    for lines, first in (
        (refused, "replication stream from branch 1 refused: UNKNOWN_BRANCH: "),
        (refusing, "branch 2 refuses our ops: INVALID_ARGUMENT: "),
    ):
        # One line, then counts of the retries since (at least one each), never a
        # traceback.
        assert lines[0].getMessage().startswith(first), said
        assert len(lines) >= 2, said
        for count in lines[1:]:
            assert count.getMessage().startswith(first), said
            retries = count.getMessage().rsplit("(", 1)[1]
            assert retries.endswith("more times in the last 1 s)"), said
            assert int(retries.split()[0]) >= 1, said
        assert all(r.levelno == logging.WARNING for r in lines), said
        assert not any("Traceback" in r.getMessage() for r in lines), said

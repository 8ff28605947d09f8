"""``dbank run``: a scenario played by real branches through the client library.

One branch per branch id of the scenario (``dbank.hosting``: forked processes by default,
or all in this process's event loop), each on a free loopback port with its own store: a SQLite
file in a temporary directory or in ``data_dir``, or its keys in a Redis database that the
run claims for itself (``dbank.hosting.claim_redis_database``). Once every branch serves
(and, for a traced run, its replication streams are up):

1. The shared account exists from the start: it is the bank's genesis op (design §2.2),
   made from the file before any branch starts and applied by every branch first, which
   opens it with each branch's even share of the opening balance in escrow (the
   remainder one unit each to the lowest ids).
2. The customers' events run one after another in input order, each at its own branch,
   all clients sharing one ``Session``: every event sees every earlier one, wherever it
   ran (a branch that lacks some of the session's state fetches it from the branch that
   answered last). Writes answer once durable where they ran (``WriteConcern.LOCAL``),
   and the branches stream ops to each other only when a request needs it
   (``Streams.ON_DEMAND``): the session pulls carry every write to where the next event
   runs, and a run with kept stores ends with a read at every branch, which brings it
   every write. With a trace, writes answer once every branch has them
   (``WriteConcern.ALL``, on streams that are up from the start), which the trace
   shows. A withdraw refused with ``InsufficientFunds`` is a ``"failure"`` and changes
   nothing. Given a trace directory, every customer and every branch records its
   Lamport-clock events there (``dbank.tracing``), each event a request of its
   customer, its writes carrying request ids that name the request.

The branches are then stopped, on success and on every failure alike: a branch that
exits, SIGINT or SIGTERM to the runner, or any error.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from dbank import _event_loop as event_loop
from dbank.branch import Streams
from dbank.client import BankClient, Session, WriteConcern
from dbank.hosting import (
    ForkedBranches,
    InProcessBranches,
    LocalPki,
    RunError,
    bank_configs,
    claim_redis_database,
    wait_connected,
)
from dbank.ledger import InsufficientFunds, genesis_op
from dbank.scenario._results import EventResult
from dbank.scenario._scenario import Event, Interface, Scenario
from dbank.security import Role
from dbank.tracing import CustomerTrace, LamportInterceptor

__all__ = ["ACCOUNT_ID", "CURRENCY", "run_scenario"]

ACCOUNT_ID = "account"
ACCOUNT_OWNER = "customers"
CURRENCY = "JPY"
"""The files' amounts are whole currency units and their outputs print integers. A currency
without minor units (JPY has exponent 0) makes every amount its own minor-unit count, so
the integers pass to and from the bank unchanged, with no scaling to get wrong."""
REQUEST_DEADLINE = 30.0
"""Seconds each request may take, retries included: events run one at a time, so a slow
machine is better waited for than failed."""
CONNECT_DEADLINE = 30.0
"""Seconds for every branch to start (and, for a traced run, to connect its streams)."""

_SHARED_MEMORY = "/dev/shm"
_ROOM_PER_BRANCH = 32 * 2**20
"""Bytes of free shared memory asked per branch before stores go there (a store's WAL
alone grows to about 4 MiB before SQLite checkpoints it)."""

Echo = Callable[[str], None]
_Branches = ForkedBranches | InProcessBranches


def run_scenario(
    scenario: Scenario,
    *,
    data_dir: Path | None = None,
    in_process: bool = False,
    echo: Echo | None = None,
    trace_dir: Path | None = None,
    redis: str | None = None,
    unsafe_redis: bool = False,
    insecure: bool = False,
) -> list[EventResult]:
    """Run ``scenario`` on real branches and return one result per event, in order.

    Args:
        scenario: the scenario to play (any variant; the results do not depend on it).
        data_dir: where to keep the branches' SQLite files (``branch-ID.sqlite3``); it
            must be new or empty, and is kept. Default: a temporary directory, removed.
        redis: keep the branches' state in the Redis database at this URL instead
            (``redis://HOST:PORT/DB``; not with ``data_dir``): it must be empty, and the
            run's state is kept there.
        unsafe_redis: let the branches use that Redis even if its settings can lose
            acknowledged writes.
        in_process: host every branch in this process's event loop instead of one forked
            process per branch. The results are the same.
        echo: called with a line of progress at each step, for people.
        trace_dir: record the customers' and branches' Lamport traces there (an existing
            directory; ``dbank.tracing.read_trace`` reads them once this returns).
        insecure: run the branches plaintext and without authentication. By default the
            run makes a throwaway PKI (in the data directory, or a temporary one) and
            every branch serves TLS, its peers mutual TLS, and the customers call with
            a customer's token for the shared account.

    Forking needs a process that has created no gRPC object, event loop or thread yet (the
    ``dbank`` command is one); ``in_process`` has no such need. Every branch is stopped
    before this returns or raises, and no process is left behind.

    Raises:
        RunError: a branch failed to start, exited, or did not connect in time; or the
            runner got SIGTERM (``exit_status`` 143); with ``exit_status`` 2, ``data_dir``
            or ``redis`` cannot be used (not empty, unreachable, settings that can lose
            writes).
        DbankError: the bank refused or failed a request the run needed.
        KeyboardInterrupt: SIGINT, once every branch is stopped.
    """
    say = echo or _quiet
    genesis = genesis_op(
        account_id=ACCOUNT_ID,
        currency=CURRENCY,
        owner=ACCOUNT_OWNER,
        balance=scenario.opening_balance,
        branch_ids=scenario.branches,
    )
    if redis is not None and data_dir is not None:
        raise RunError("give a data directory or a Redis store, not both", exit_status=2)
    address = None if redis is None else claim_redis_database(redis, unsafe=unsafe_redis)
    if address is not None:
        say(f"the branches keep their state in {address}, claimed for this run")
    stores = (
        _bank_directory(data_dir, len(scenario.branches))
        if address is None
        else contextlib.nullcontext()
    )
    with stores as directory, _pki(directory, scenario.branches, insecure) as pki:
        configs = bank_configs(
            scenario.branches,
            directory,
            genesis,
            trace_dir,
            redis=address,
            unsafe_redis=unsafe_redis,
            tls_dir=None if pki is None else pki.tls_dir,
            # Untraced, the one session orders the events: no stream is needed before a
            # request needs one (a 50-branch run made 400 connections, now about 150).
            streams=Streams.ALWAYS if trace_dir is not None else Streams.ON_DEMAND,
            connect_early=_fetch_sources(scenario),
        )
        keep = data_dir is not None or address is not None
        # The customers of a file share its one account, owned by ACCOUNT_OWNER: they call
        # as that customer, whose role reaches its own accounts only.
        token = None if pki is None else pki.token(ACCOUNT_OWNER, Role.CUSTOMER)
        ca = None if pki is None else pki.ca
        if in_process:
            return event_loop.run(_run(InProcessBranches(configs), scenario, say, keep, ca, token))
        branches = ForkedBranches.fork(configs, tokens=() if token is None else (token,))
        try:
            for branch_id, pid in branches.pids.items():
                say(f"branch {branch_id}: pid {pid}, {branches.addresses[branch_id]}")
            return event_loop.run(_run(branches, scenario, say, keep, ca, token))
        finally:
            branches.kill()  # only what a second Ctrl-C cut short is left by now


def _quiet(line: str) -> None:
    pass


@contextlib.contextmanager
def _pki(
    directory: Path | None, branch_ids: Sequence[int], insecure: bool
) -> Iterator[LocalPki | None]:
    """The run's throwaway PKI: in the branches' directory (kept with a kept ``--data``),
    or in a temporary one (a Redis run has no directory of its own)."""
    if insecure:
        yield None
        return
    if directory is not None:
        yield LocalPki.make(directory / "tls", branch_ids)
        return
    with tempfile.TemporaryDirectory(prefix="dbank-run-tls-") as temporary:
        yield LocalPki.make(Path(temporary) / "tls", branch_ids)


@contextlib.contextmanager
def _bank_directory(data_dir: Path | None, branches: int) -> Iterator[Path]:
    if data_dir is None:
        scratch = _scratch(branches)
        with tempfile.TemporaryDirectory(prefix="dbank-run-", dir=scratch) as temporary:
            yield Path(temporary)
        return
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        if any(data_dir.iterdir()):
            problem = "not empty; give a new or empty directory for the branches' data"
            raise RunError(f"{data_dir}: {problem}", exit_status=2)
    except OSError as exc:
        raise RunError(f"{data_dir}: {exc.strerror}", exit_status=2) from None
    yield data_dir


def _scratch(branches: int) -> str | None:
    """Where the temporary stores go: memory-backed ``/dev/shm`` if there is one with room
    to spare, unless ``TMPDIR`` says otherwise; else the system's temporary directory.

    Every branch fsyncs every op it applies, so one event costs an fsync per branch; the
    temporary stores are deleted when the run ends, and on a disk those fsyncs buy nothing
    but time (with 20 branches on a virtual disk, several times the whole run's time).
    ``--data`` stores stay wherever they are asked to be.
    """
    if "TMPDIR" in os.environ or not os.access(_SHARED_MEMORY, os.W_OK | os.X_OK):
        return None
    room = os.statvfs(_SHARED_MEMORY)
    if room.f_bavail * room.f_frsize < branches * _ROOM_PER_BRANCH:
        return None  # a small /dev/shm (64 MiB in a default container) could fill up
    return _SHARED_MEMORY


class _Stopper:
    """Stops the run's work from outside it (SIGTERM, a branch that exits) by cancelling
    the work's task, and remembers why, so that the run raises the reason instead."""

    def __init__(self) -> None:
        self.work: asyncio.Task[list[EventResult]] | None = None
        self.reason: RunError | None = None

    def stop(self, reason: RunError) -> None:
        if self.reason is None:
            self.reason = reason
            if self.work is not None:
                self.work.cancel()


async def _run(
    branches: _Branches,
    scenario: Scenario,
    say: Echo,
    keep: bool,
    ca: bytes | None,
    token: str | None,
) -> list[EventResult]:
    """Start, play and stop, in a task of its own: cancelling it (the stopper) leaves this
    task free to stop the branches, while cancelling this one (Ctrl-C) cancels both.

    Branches whose stores are kept (``keep``) stop cleanly; the others are killed at once:
    every write they acknowledged is durable anyway, their stores are about to be
    deleted, and a clean stop of 50 branches costs a second of the run."""
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    stopper = _Stopper()
    terminated = RunError("stopped by SIGTERM", exit_status=128 + signal.SIGTERM)
    loop.add_signal_handler(signal.SIGTERM, stopper.stop, terminated)
    try:
        stopper.work = asyncio.create_task(
            _start_and_play(branches, scenario, say, stopper, ca, token, settle=keep)
        )
        try:
            return await stopper.work
        except BaseException:
            # Whatever the work raised once stopped, the reason it was stopped is the news.
            if stopper.reason is None or (me is not None and me.cancelling()):
                raise
            raise stopper.reason from None
        finally:
            say("stopping the branches")
            await branches.stop(graceful=keep)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def _start_and_play(
    branches: _Branches,
    scenario: Scenario,
    say: Echo,
    stopper: _Stopper,
    ca: bytes | None,
    token: str | None,
    *,
    settle: bool,
) -> list[EventResult]:
    began = time.monotonic()
    trace_dir = branches.configs[0].trace_dir  # the same for every branch
    customers = None if trace_dir is None else CustomerTrace(trace_dir)
    clients = _clients(branches.addresses, customers, ca, token)
    connecting: list[asyncio.Task[None]] = []

    def connect(branch_id: int) -> None:
        # Each branch as soon as it serves, while the others still start: the handshakes
        # fill the gaps of the start instead of following it.
        connecting.append(asyncio.create_task(clients[branch_id].connect()))

    try:
        try:
            async with asyncio.timeout(CONNECT_DEADLINE):
                await branches.start(on_exit=stopper.stop, on_ready=connect)
                say(f"{len(branches.addresses)} branches serving after {_since(began)}")
                if trace_dir is not None:
                    # The trace shows every write reach every branch before the next
                    # event: the streams that carry them are up first. Untraced, the
                    # session alone orders the events, and the streams come up while
                    # they run.
                    await wait_connected(branches.addresses, ca=ca)
                    say(f"every branch's streams up after {_since(began)}")
                await asyncio.gather(*connecting)
        except TimeoutError:
            raise RunError(
                f"the branches did not all start and connect within {CONNECT_DEADLINE:g} s"
            ) from None
        results = await _play(scenario, clients, say, customers, settle=settle)
        say(f"{len(results)} events done after {_since(began)}")
        return results
    finally:
        for task in connecting:
            task.cancel()
        await asyncio.gather(*(client.close() for client in clients.values()))
        if customers is not None:
            customers.close()


def _clients(
    addresses: Mapping[int, str],
    customers: CustomerTrace | None,
    ca: bytes | None,
    token: str | None,
) -> dict[int, BankClient]:
    """One client per branch, all in the one session of the run's customers, over TLS
    trusting ``ca`` with ``token`` (None: plaintext)."""
    session = Session()
    stamps = () if customers is None else (LamportInterceptor(customers),)
    # The one session already makes every event see every earlier one, wherever it runs
    # (the next branch fetches what it lacks from the last): a write need not wait for all
    # the other branches first. A traced run does wait: its trace is to show each write's
    # propagation to every branch before the next event.
    concern = WriteConcern.LOCAL if customers is None else WriteConcern.ALL
    return {
        i: BankClient(
            address,
            session=session,
            timeout=REQUEST_DEADLINE,
            interceptors=stamps,
            tls=ca,
            token=token,
            write_concern=concern,
        )
        for i, address in addresses.items()
    }


async def _play(
    scenario: Scenario,
    clients: Mapping[int, BankClient],
    say: Echo,
    customers: CustomerTrace | None,
    *,
    settle: bool = False,
) -> list[EventResult]:
    """Every event in order; with ``settle``, every branch then holds every write (a read
    at each with the session: the run's stores are kept, and a kept bank agrees)."""
    results = []
    entries = ((customer.id, event) for customer in scenario.customers for event in customer.events)
    for number, (customer_id, event) in enumerate(entries, 1):
        with _as_customer(customers, customer_id, event, number) as request_id:
            result = await _perform(clients[event.branch], event, request_id)
        say(f"event {number}: {_describe(result)}")
        results.append(result)
    if settle and customers is None:  # a traced run's writes waited for every branch
        await asyncio.gather(*(c.get_balance(account_id=ACCOUNT_ID) for c in clients.values()))
        say("every branch holds every write")
    return results


def _fetch_sources(scenario: Scenario) -> dict[int, frozenset[int]]:
    """For each branch, the branches its events follow: an event's session comes from the
    event before it, and its branch fetches what it lacks from there first."""
    sources: dict[int, set[int]] = {}
    for before, event in itertools.pairwise(scenario.events):
        if before.branch != event.branch:
            sources.setdefault(event.branch, set()).add(before.branch)
    return {branch: frozenset(peers) for branch, peers in sources.items()}


def _as_customer(
    customers: CustomerTrace | None, customer_id: int, event: Event, number: int
) -> contextlib.AbstractContextManager[str | None]:
    """While the event runs, the calls are its customer's (traced), and a write carries
    the request id this gives; without a trace, nothing and the client's own ids."""
    if customers is None:
        return contextlib.nullcontext()
    request = event.id if event.id is not None else number  # P1 files may omit ids
    return customers.request(customer_id, request, event.interface.value, event.branch)


async def _perform(client: BankClient, event: Event, request_id: str | None) -> EventResult:
    match event.interface:
        case Interface.QUERY:
            account = await client.get_balance(account_id=ACCOUNT_ID)
            return EventResult(event, "success", account.balance)
        case Interface.DEPOSIT:
            await client.deposit(account_id=ACCOUNT_ID, amount=event.money, request_id=request_id)
            return EventResult(event, "success")
        case Interface.WITHDRAW:
            try:
                await client.withdraw(
                    account_id=ACCOUNT_ID, amount=event.money, request_id=request_id
                )
            except InsufficientFunds:
                return EventResult(event, "failure")
            return EventResult(event, "success")


def _describe(result: EventResult) -> str:
    event = result.event
    what = f"{event.interface} {event.money}" if event.money else str(event.interface)
    answer = result.result if result.balance is None else f"balance {result.balance}"
    return f"{what} at branch {event.branch}: {answer}"


def _since(began: float) -> str:
    return f"{time.monotonic() - began:.2f} s"

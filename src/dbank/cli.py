"""The ``dbank`` command: run a branch, and a customer's commands against one.

Exit status: 0 on success, 1 when the bank refuses or fails a request (the reason is
printed), 2 for a mistake in the command line itself.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import logging
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

from dbank import _event_loop as event_loop
from dbank._render import (
    history_json,
    history_table,
    interest_json,
    interest_line,
    money_json,
    statement_csv,
    statement_json,
    statement_table,
)
from dbank.branch import BranchConfig, ConfigError, check_address, load_bank_file, parse_peers
from dbank.client import (
    Account,
    AccountStatement,
    BalanceChange,
    BankClient,
    InterestPosted,
    TransactionPage,
)
from dbank.ledger import AccountType, DbankError
from dbank.ledger.interest import parse_day, parse_rate
from dbank.money import Currency, currency, format_amount, parse_amount
from dbank.store import RedisAddress, StoreUnusable, UnsafeSettings, parse_redis_url

if TYPE_CHECKING:  # the scenario runner is imported only by ``dbank run``
    from dbank.scenario import EventResult, Scenario
    from dbank.tracing import TraceEvent

T = TypeVar("T")


def _fail(error: DbankError) -> None:
    click.echo(f"error: {error.reason}: {error.message}", err=True)
    sys.exit(1)


def _run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return event_loop.run(make())
    except DbankError as exc:
        _fail(exc)
        raise AssertionError("unreachable") from exc


@click.group()
@click.version_option(package_name="dbank")
def main() -> None:
    """dbank: a distributed bank over gRPC."""


# dbank branch -------------------------------------------------------------------------


class _StoreRefused(click.ClickException):
    """The branch's store cannot be used as configured: a mistake in the setup."""

    exit_code = 2


def _parse_store(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return parse_redis_url(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _store_options(store_help: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``--store`` (with ``store_help``) and ``--unsafe-redis``, for ``branch``,
    ``cluster`` and ``run``."""

    def add(command: Callable[..., None]) -> Callable[..., None]:
        command = click.option(
            "--unsafe-redis",
            is_flag=True,
            help="Use the Redis even if its settings can lose acknowledged writes (tests"
            " only: a branch that loses ops endangers the whole bank).",
        )(command)
        return click.option(
            "--store",
            metavar="redis://HOST:PORT/DB",
            callback=_parse_store,
            help=store_help,
        )(command)

    return add


@main.command()
@click.option(
    "--id", "branch_id", type=click.IntRange(min=1), required=True, help="This branch's id."
)
@click.option("--listen", help="HOST:PORT to serve on (port 0: any free port).")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of the branch's SQLite file (created if missing).",
)
@click.option("--peers", help="The other branches: ID=HOST:PORT,ID=HOST:PORT.")
@_store_options(
    "Keep the state in this Redis instead of a SQLite file under --data. Several processes"
    " may serve one branch from one Redis; the one holding its replication lease runs the"
    " links to the other branches."
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The bank's TOML file naming every branch; flags given override it.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def branch(
    branch_id: int,
    listen: str | None,
    data_dir: Path | None,
    peers: str | None,
    store: RedisAddress | None,
    unsafe_redis: bool,
    config_path: Path | None,
    verbose: bool,
) -> None:
    """Run one branch until SIGINT or SIGTERM.

    Prints "branch ID listening on HOST:PORT" once it serves requests. A store that cannot
    be used (Redis unreachable, or with settings that can lose writes) exits with status 2.
    """
    from dbank.server import BranchServer, serve_until_signalled

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = _branch_config(branch_id, listen, data_dir, peers, config_path, store, unsafe_redis)

    def ready(server: BranchServer) -> None:
        click.echo(f"branch {branch_id} listening on {server.address}")
        sys.stdout.flush()

    async def serve() -> None:
        try:
            await serve_until_signalled(config, on_ready=ready)
        except UnsafeSettings as exc:
            raise _StoreRefused(f"{exc.message}; --unsafe-redis runs it anyway") from None
        except StoreUnusable as exc:
            raise _StoreRefused(exc.message) from None

    _run(serve)


def _branch_config(
    branch_id: int,
    listen: str | None,
    data_dir: Path | None,
    peers: str | None,
    config_path: Path | None,
    store: RedisAddress | None,
    unsafe_redis: bool,
) -> BranchConfig:
    """Flags over the bank file; every problem is a usage error (exit status 2)."""
    try:
        config = (
            load_bank_file(config_path, branch_id)
            if config_path is not None
            else BranchConfig(branch_id, listen="127.0.0.1:0")
        )
        if listen is not None:
            config = dataclasses.replace(config, listen=check_address(listen, where="--listen"))
        if data_dir is not None:
            config = dataclasses.replace(config, data_dir=data_dir)
        if peers is not None:
            config = dataclasses.replace(config, peers=parse_peers(peers))
        if store is not None:
            config = dataclasses.replace(config, store=store)
        if unsafe_redis:
            config = dataclasses.replace(config, unsafe_redis=True)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    if config.data_dir is None and config.store is None:
        raise click.UsageError("give --data DIR or --store URL (or either in --config)")
    if branch_id in config.peers:
        raise click.UsageError(f"branch {branch_id} cannot be its own peer")
    return config


@main.command()
@click.option(
    "--branches",
    "count",
    type=click.IntRange(1, 64),
    default=3,
    show_default=True,
    help="How many branches.",
)
@click.option(
    "--base-port",
    type=click.IntRange(1, 65000),
    default=7000,
    show_default=True,
    help="Branch N listens on 127.0.0.1:BASE_PORT+N.",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("dbank-data"),
    show_default=True,
    help="Each branch keeps its SQLite file in DATA/branch-N.",
)
@_store_options("Keep every branch's state in this Redis (each under its own keys) instead.")
def cluster(
    count: int,
    base_port: int,
    data_dir: Path,
    store: RedisAddress | None,
    unsafe_redis: bool,
) -> None:
    """Run a bank of local branch processes for development, until Ctrl-C.

    With --store, every branch keeps its state in that one Redis, each under its own keys.
    """
    from dbank.cluster import StoreChoice, run_cluster

    addresses = {i: f"127.0.0.1:{base_port + i}" for i in range(1, count + 1)}
    choice = StoreChoice(data_dir, store, unsafe_redis)
    sys.exit(run_cluster(addresses, choice, echo=click.echo))


# dbank run ----------------------------------------------------------------------------


@main.command()
@click.argument("input_path", metavar="INPUT.json", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "output_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the output here instead of to standard output.",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the branches' SQLite files in DIR (new or empty); default: a temporary "
    "directory, removed after.",
)
@_store_options(
    "Keep the branches' state in this Redis database instead of SQLite files: it must be"
    " empty, and the run's state stays there."
)
@click.option(
    "--in-process",
    is_flag=True,
    help="Host every branch in this process's event loop, not one process per branch.",
)
@click.option(
    "--lamport",
    "lamport_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the run's Lamport-clock trace to FILE, in the 2022 shape (not for a "
    "P2 Fall 2023 file, whose output is its trace).",
)
@click.option(
    "--trace-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Record the run's Lamport-clock trace in DIR (made if missing, kept): each "
    "process's events, and for a P2 Fall 2023 file the three parts of its trace "
    "(customer-events.json, branch-events.json, all-events.json).",
)
@click.option("-v", "--verbose", is_flag=True, help="Report each step on standard error.")
def run(
    input_path: Path,
    output_path: Path | None,
    data_dir: Path | None,
    store: RedisAddress | None,
    unsafe_redis: bool,
    in_process: bool,
    lamport_path: Path | None,
    trace_dir: Path | None,
    verbose: bool,
) -> None:
    """Play a classic customers-and-branches scenario file on real branches.

    Starts one branch per branch entry, runs the customers' events one after another
    through the client library, writes the output in the input's own variant, and stops
    the branches. A P2 Fall 2023 file's output is the run's Lamport-clock trace (the flat
    list of every event). A bad file or flag exits with status 2 and one line; a failed
    run exits with status 1 (130 on Ctrl-C, 143 on SIGTERM) and leaves no process behind.
    """
    from dbank.scenario import ScenarioError, Variant, load_scenario

    if data_dir is not None and store is not None:
        raise click.UsageError("give --data or --store, not both")
    if unsafe_redis and store is None:
        raise click.UsageError("--unsafe-redis goes with --store")
    try:
        scenario = load_scenario(input_path)
    except ScenarioError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    if scenario.variant is Variant.P2_FALL_2023 and lamport_path is not None:
        click.echo(
            f"error: --lamport: {input_path} is {scenario.variant.display_name} input, whose "
            "output is its Lamport trace already (-o, and --trace-dir for all three parts)",
            err=True,
        )
        sys.exit(2)
    for path, flag in ((output_path, "-o"), (lamport_path, "--lamport")):
        if path is not None and not path.resolve().parent.is_dir():
            raise click.BadParameter(f"{path.parent} is not a directory", param_hint=flag)
    echo = functools.partial(click.echo, err=True) if verbose else None
    traced = lamport_path is not None or trace_dir is not None
    stores = _RunStores(data_dir, store, unsafe_redis)
    results, events = _play_scenario(scenario, stores, in_process, echo, traced, trace_dir)
    text = _scenario_outputs(scenario, results, events, lamport_path, trace_dir)
    if output_path is None:
        click.echo(text, nl=False)
    else:
        _write_output(output_path, text)


@dataclasses.dataclass(frozen=True)
class _RunStores:
    """Where a run's branches keep their state: ``dbank run``'s store flags."""

    data_dir: Path | None
    redis: RedisAddress | None
    unsafe_redis: bool


def _play_scenario(
    scenario: Scenario,
    stores: _RunStores,
    in_process: bool,
    echo: Callable[[str], None] | None,
    traced: bool,
    trace_dir: Path | None,
) -> tuple[list[EventResult], list[TraceEvent] | None]:
    """The run's results, and its trace if ``traced`` or the file asks for one."""
    from dbank.scenario import RunError, Variant, run_scenario, trace_scenario

    data_dir, unsafe_redis = stores.data_dir, stores.unsafe_redis
    redis = None if stores.redis is None else str(stores.redis)
    try:
        if traced or scenario.variant is Variant.P2_FALL_2023:
            return trace_scenario(
                scenario,
                trace_dir=trace_dir,
                data_dir=data_dir,
                redis=redis,
                unsafe_redis=unsafe_redis,
                in_process=in_process,
                echo=echo,
            )
        played = run_scenario(
            scenario,
            data_dir=data_dir,
            redis=redis,
            unsafe_redis=unsafe_redis,
            in_process=in_process,
            echo=echo,
        )
        return played, None
    except RunError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_status)
    except DbankError as exc:
        _fail(exc)
        raise  # not reached: _fail exits
    except KeyboardInterrupt:
        click.echo("interrupted; every branch stopped", err=True)
        sys.exit(130)


def _scenario_outputs(
    scenario: Scenario,
    results: list[EventResult],
    events: list[TraceEvent] | None,
    lamport_path: Path | None,
    trace_dir: Path | None,
) -> str:
    """The output document's text; the trace files beside it are written here."""
    from dbank.scenario import (
        Variant,
        build_output,
        classic_trace,
        fall_2023_trace,
        render_output,
        write_trace_parts,
    )

    if scenario.variant is not Variant.P2_FALL_2023:
        if lamport_path is not None and events is not None:
            _write_output(lamport_path, render_output(classic_trace(scenario, events)))
        return render_output(build_output(scenario, results))
    trace = fall_2023_trace(scenario, events or [])
    if trace_dir is not None:
        try:
            write_trace_parts(trace_dir, trace)
        except OSError as exc:
            click.echo(f"error: cannot write the trace in {trace_dir}: {exc.strerror}", err=True)
            sys.exit(1)
    return render_output(trace.all_events)


def _write_output(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as exc:
        click.echo(f"error: cannot write {path}: {exc.strerror}", err=True)
        sys.exit(1)


# dbank account ------------------------------------------------------------------------


@main.group()
def account() -> None:
    """A customer's commands against one branch. Amounts are decimals such as 12.34."""


@dataclasses.dataclass(frozen=True)
class _Session:
    target: str
    as_json: bool
    timeout: float

    def client(self) -> BankClient:
        return BankClient(self.target, timeout=self.timeout)

    def show(self, text: str, data: dict[str, Any]) -> None:
        click.echo(json.dumps(data, sort_keys=True) if self.as_json else text)


def _account_json(acct: Account) -> dict[str, Any]:
    cur = currency(acct.currency)
    return {
        "account_id": acct.account_id,
        "type": acct.type.value,
        "owner": acct.owner,
        "currency": acct.currency,
        "balance": money_json(acct.balance, cur),
        "withdrawable_here": money_json(acct.withdrawable_here, cur),
        "owner_branch": acct.owner_branch,
    }


def _account_line(acct: Account) -> str:
    cur = currency(acct.currency)
    return (
        f"{acct.account_id} ({acct.type.value}, owner {acct.owner}):"
        f" balance {format_amount(acct.balance, cur)} {cur.code}"
    )


def _parse_currency(code: str | None) -> Currency | None:
    if code is None:
        return None
    try:
        return currency(code.upper())
    except DbankError as exc:
        raise click.BadParameter(exc.message, param_hint="--currency") from exc


def _parse_amount(text: str, cur: Currency) -> int:
    try:
        return parse_amount(text, cur)
    except DbankError as exc:
        raise click.BadParameter(exc.message, param_hint="AMOUNT") from exc


async def _currency_of(bank: BankClient, account_id: str, given: Currency | None) -> Currency:
    """The currency to read an amount in: the one given, else the account's own."""
    if given is not None:
        return given
    return currency((await bank.get_balance(account_id=account_id)).currency)


def _session_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options every account command takes, gathered into its first argument."""

    @click.option(
        "--branch",
        "target",
        envvar="DBANK_BRANCH",
        default="127.0.0.1:7001",
        show_default=True,
        help="HOST:PORT of the branch to talk to (or $DBANK_BRANCH).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    @click.option(
        "--timeout",
        type=click.FloatRange(min=0.1),
        default=10.0,
        show_default=True,
        help="Seconds to wait for an answer, retries included.",
    )
    @functools.wraps(command)
    def with_session(target: str, as_json: bool, timeout: float, **kwargs: Any) -> None:
        command(_Session(target, as_json, timeout), **kwargs)

    return with_session


_currency_option = click.option(
    "--currency", "currency_code", help="ISO 4217 code; default: the account's own."
)
_request_id_option = click.option(
    "--request-id", help="Idempotency key; repeat it to retry safely (default: a new UUID)."
)
_request_branch_option = click.option(
    "--request-branch",
    type=click.IntRange(min=1),
    default=None,
    help="Retrying at another branch: the branch the --request-id was first sent to. Only"
    " it may decide the request; this branch forwards the retry there unless it has the op.",
)


def _request_branch(request_id: str | None, request_branch: int | None) -> int:
    if request_branch is not None and request_id is None:
        raise click.UsageError("--request-branch names the branch of a --request-id: give both")
    return request_branch or 0


@account.command("open")
@click.argument("account_id")
@click.option("--owner", required=True, help="The customer who owns the account.")
@click.option(
    "--type",
    "account_type",
    type=click.Choice(["checking", "savings"]),
    default="checking",
    show_default=True,
)
@click.option(
    "--currency", "currency_code", default="USD", show_default=True, help="ISO 4217 code."
)
@_request_id_option
@_session_options
def open_account(
    session: _Session,
    account_id: str,
    owner: str,
    account_type: str,
    currency_code: str,
    request_id: str | None,
) -> None:
    """Open ACCOUNT_ID with a zero balance."""
    cur = _parse_currency(currency_code)
    assert cur is not None

    async def go() -> Account:
        async with session.client() as bank:
            return await bank.create_account(
                account_id=account_id,
                owner=owner,
                type=AccountType(account_type),
                currency=cur.code,
                request_id=request_id,
            )

    acct = _run(go)
    session.show(f"opened {_account_line(acct)}", _account_json(acct))


@account.command("show")
@click.argument("account_ids", nargs=-1, required=True)
@_session_options
def show(session: _Session, account_ids: tuple[str, ...]) -> None:
    """Show the balance of one or more accounts, read from one state of the branch."""

    async def go() -> list[Account]:
        async with session.client() as bank:
            return await bank.get_balances(account_ids=account_ids)

    accounts = _run(go)
    text = "\n".join(_account_line(a) for a in accounts)
    data = (
        _account_json(accounts[0])
        if len(accounts) == 1
        else {"accounts": [_account_json(a) for a in accounts]}
    )
    session.show(text, data)


@account.command()
@click.argument("account_id")
@click.argument("amount")
@_currency_option
@_request_id_option
@_request_branch_option
@_session_options
def deposit(
    session: _Session,
    account_id: str,
    amount: str,
    currency_code: str | None,
    request_id: str | None,
    request_branch: int | None,
) -> None:
    """Deposit AMOUNT into ACCOUNT_ID."""
    branch = _request_branch(request_id, request_branch)
    _change_balance(session, "deposit", account_id, amount, currency_code, request_id, branch)


@account.command()
@click.argument("account_id")
@click.argument("amount")
@_currency_option
@_request_id_option
@_request_branch_option
@_session_options
def withdraw(
    session: _Session,
    account_id: str,
    amount: str,
    currency_code: str | None,
    request_id: str | None,
    request_branch: int | None,
) -> None:
    """Withdraw AMOUNT from ACCOUNT_ID; refused if the balance does not cover it."""
    branch = _request_branch(request_id, request_branch)
    _change_balance(session, "withdraw", account_id, amount, currency_code, request_id, branch)


def _change_balance(
    session: _Session,
    kind: Literal["deposit", "withdraw"],
    account_id: str,
    amount: str,
    currency_code: str | None,
    request_id: str | None,
    request_branch: int,
) -> None:
    """A deposit or a withdrawal: read AMOUNT in the account's currency, send, report."""
    given = _parse_currency(currency_code)

    async def go() -> tuple[Currency, int, BalanceChange]:
        async with session.client() as bank:
            cur = await _currency_of(bank, account_id, given)
            minor = _parse_amount(amount, cur)
            send = bank.deposit if kind == "deposit" else bank.withdraw
            done = await send(
                account_id=account_id,
                amount=minor,
                currency=cur.code,
                request_id=request_id,
                request_branch=request_branch,
            )
            return cur, minor, done

    cur, minor, done = _run(go)
    verb, past, preposition = (
        ("deposited", "deposited", "to") if kind == "deposit" else ("withdrew", "withdrawn", "from")
    )
    session.show(
        f"{verb} {format_amount(minor, cur)} {cur.code} {preposition} {account_id}:"
        f" balance {format_amount(done.balance, cur)} {cur.code}",
        {
            "account_id": account_id,
            past: money_json(minor, cur),
            "balance": money_json(done.balance, cur),
            "op_id": str(done.op_id),
            "request_id": done.request_id,
            "answered_by": done.answered_by,
        },
    )


@account.command()
@click.argument("from_account_id")
@click.argument("to_account_id")
@click.argument("amount")
@_currency_option
@_request_id_option
@_request_branch_option
@_session_options
def transfer(
    session: _Session,
    from_account_id: str,
    to_account_id: str,
    amount: str,
    currency_code: str | None,
    request_id: str | None,
    request_branch: int | None,
) -> None:
    """Transfer AMOUNT from FROM_ACCOUNT_ID to TO_ACCOUNT_ID (same currency)."""
    given = _parse_currency(currency_code)
    branch = _request_branch(request_id, request_branch)

    async def go() -> tuple[Currency, int, Any]:
        async with session.client() as bank:
            cur = await _currency_of(bank, from_account_id, given)
            minor = _parse_amount(amount, cur)
            done = await bank.transfer(
                from_account_id=from_account_id,
                to_account_id=to_account_id,
                amount=minor,
                currency=cur.code,
                request_id=request_id,
                request_branch=branch,
            )
            return cur, minor, done

    cur, minor, done = _run(go)
    session.show(
        f"transferred {format_amount(minor, cur)} {cur.code}"
        f" from {from_account_id} to {to_account_id}: balances"
        f" {format_amount(done.from_balance, cur)} and {format_amount(done.to_balance, cur)}",
        {
            "from_account_id": from_account_id,
            "to_account_id": to_account_id,
            "transferred": money_json(minor, cur),
            "from_balance": money_json(done.from_balance, cur),
            "to_balance": money_json(done.to_balance, cur),
            "op_id": str(done.op_id),
            "request_id": done.request_id,
            "answered_by": done.answered_by,
        },
    )


# Interest, history and statements -------------------------------------------------------


def _parse_day(text: str, flag: str) -> dt.date:
    try:
        return parse_day(text, field="the date")
    except DbankError as exc:
        raise click.BadParameter(exc.message, param_hint=flag) from exc


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@account.command()
@click.argument("account_id")
@click.option(
    "--rate",
    "annual_rate",
    required=True,
    help="Annual rate in percent, an exact decimal from 0 to 100 such as 4.25.",
)
@click.option(
    "--as-of",
    metavar="YYYY-MM-DD",
    help="The last day (UTC) to post interest for; a day before today. Default: yesterday.",
)
@_request_id_option
@_session_options
def interest(
    session: _Session,
    account_id: str,
    annual_rate: str,
    as_of: str | None,
    request_id: str | None,
) -> None:
    """Post the interest of savings account ACCOUNT_ID through a past day.

    Each day is posted once, by the account's owner branch: asking again for a day that
    is posted adds nothing and shows that posting.
    """
    try:
        parse_rate(annual_rate, field="the rate")
    except DbankError as exc:
        raise click.BadParameter(exc.message, param_hint="--rate") from exc
    day = _parse_day(as_of, "--as-of") if as_of else _today() - dt.timedelta(days=1)

    async def go() -> InterestPosted:
        async with session.client() as bank:
            return await bank.calculate_interest(
                account_id=account_id, annual_rate=annual_rate, as_of=day, request_id=request_id
            )

    done = _run(go)
    session.show(interest_line(done), interest_json(done))


@account.command()
@click.argument("account_id")
@click.option(
    "--page-size", type=click.IntRange(1, 1000), default=100, show_default=True, help="Per page."
)
@click.option("--page-token", default="", help="Go on from where the previous page ended.")
@click.option("--all", "every", is_flag=True, help="Every page, not just one.")
@_session_options
def history(
    session: _Session, account_id: str, page_size: int, page_token: str, every: bool
) -> None:
    """List ACCOUNT_ID's transactions, oldest first, with the running balance.

    A listing shows the account as it was at its first page: later pages of it neither
    lose nor repeat an entry, whatever is written meanwhile.
    """

    async def go() -> list[TransactionPage]:
        pages: list[TransactionPage] = []
        token = page_token
        async with session.client() as bank:
            while True:
                page = await bank.list_transactions(
                    account_id=account_id, page_size=page_size, page_token=token
                )
                pages.append(page)
                token = page.next_page_token
                if not (every and token):
                    return pages

    pages = _run(go)
    cur = currency(pages[0].currency)
    session.show(history_table(account_id, cur, pages), history_json(account_id, cur, pages))


@account.command()
@click.argument("account_id")
@click.option("--from", "from_date", required=True, metavar="YYYY-MM-DD", help="First day (UTC).")
@click.option("--to", "to_date", metavar="YYYY-MM-DD", help="Last day (UTC); default: today.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@_session_options
def statement(
    session: _Session, account_id: str, from_date: str, to_date: str | None, output_format: str
) -> None:
    """Show ACCOUNT_ID's statement: opening balance, entries, interest, closing balance."""
    first = _parse_day(from_date, "--from")
    last = _parse_day(to_date, "--to") if to_date else _today()
    if first > last:
        raise click.BadParameter(f"{last} is before --from {first}", param_hint="--to")

    async def go() -> AccountStatement:
        async with session.client() as bank:
            return await bank.get_statement(account_id=account_id, from_date=first, to_date=last)

    found = _run(go)
    if session.as_json or output_format == "json":
        click.echo(json.dumps(statement_json(found), sort_keys=True))
    elif output_format == "csv":
        click.echo(statement_csv(found))
    else:
        click.echo(statement_table(found))

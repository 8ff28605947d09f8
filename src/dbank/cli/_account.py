"""``dbank account ...``: a customer's commands against one branch."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import click

from dbank.branch import MAX_BATCH_ENTRIES
from dbank.cli._common import BRANCH_ID, Address, OneLineGroup, run_request
from dbank.cli._import import ImportFileError, ImportSummary, import_lines, read_lines
from dbank.cli._render import (
    history_json,
    history_table,
    import_json,
    interest_json,
    interest_line,
    money_json,
    print_import_summary,
    progress_bar,
    statement_csv,
    statement_json,
    statement_table,
)
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
from dbank.security import PkiError, load_ca


@click.group(cls=OneLineGroup)
def account() -> None:
    """A customer's commands against one branch. Amounts are decimals such as 12.34."""


@dataclasses.dataclass(frozen=True)
class _Session:
    target: str | None
    as_json: bool
    timeout: float
    ca: bytes | None = None
    token: str | None = None

    def client(self) -> BankClient:
        if self.target is None:
            # No default address: a command meant for one branch must not reach another.
            raise click.UsageError(
                "no branch to talk to: give --branch HOST:PORT or set DBANK_BRANCH"
            )
        try:
            return BankClient(self.target, timeout=self.timeout, tls=self.ca, token=self.token)
        except ValueError as exc:
            raise click.UsageError(f"--token: {exc}") from None

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


def _finite(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not math.isfinite(value):  # nan passes any FloatRange
        raise click.BadParameter(f"{value} is not a number of seconds")
    return value


def _session_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options every account command takes, gathered into its first argument."""

    @click.option(
        "--branch",
        "target",
        envvar="DBANK_BRANCH",
        type=Address(),
        help="HOST:PORT of the branch to talk to (or $DBANK_BRANCH); required.",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    @click.option(
        "--timeout",
        type=click.FloatRange(min=0.1),
        callback=_finite,
        default=10.0,
        show_default=True,
        help="Seconds to wait for an answer, retries included.",
    )
    @click.option(
        "--tls-dir",
        envvar="DBANK_TLS_DIR",
        type=click.Path(file_okay=False, path_type=Path),
        help="The bank's TLS directory: its ca.crt proves the branch is the bank's"
        " (or $DBANK_TLS_DIR).",
    )
    @click.option(
        "--ca",
        "ca_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="The bank's CA certificate, instead of --tls-dir.",
    )
    @click.option(
        "--token",
        envvar="DBANK_TOKEN",
        help="Your signed token (dbank token issue), or $DBANK_TOKEN.",
    )
    @click.option(
        "--insecure",
        envvar="DBANK_INSECURE",
        is_flag=True,
        help="Talk plaintext to an --insecure branch (or $DBANK_INSECURE=1).",
    )
    @functools.wraps(command)
    def with_session(
        target: str | None,
        as_json: bool,
        timeout: float,
        tls_dir: Path | None,
        ca_path: Path | None,
        token: str | None,
        insecure: bool,
        **kwargs: Any,
    ) -> None:
        ca = _bank_ca(tls_dir, ca_path, insecure)
        session = _Session(target, as_json, timeout, ca, None if ca is None else token)
        command(session, **kwargs)

    return with_session


def _bank_ca(tls_dir: Path | None, ca_path: Path | None, insecure: bool) -> bytes | None:
    """The CA certificate to verify the branch with; None for ``--insecure``."""
    if insecure:
        if tls_dir is not None or ca_path is not None:
            raise click.UsageError("--insecure excludes --tls-dir and --ca")
        return None
    if ca_path is None and tls_dir is None:
        raise click.UsageError(
            "give --tls-dir DIR or --ca FILE (the bank's CA certificate) and --token, or"
            " --insecure to talk to an --insecure branch"
        )
    try:
        return load_ca(ca_path if ca_path is not None else Path(str(tls_dir)) / "ca.crt")
    except PkiError as exc:
        raise click.UsageError(str(exc)) from None


_currency_option = click.option(
    "--currency", "currency_code", help="ISO 4217 code; default: the account's own."
)


def _check_request_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value:
        # The client would put a new UUID in place of an empty id: no retry could match it.
        raise click.BadParameter("an empty request id; give one, or leave it out for a new one")
    return value


_request_id_option = click.option(
    "--request-id",
    callback=_check_request_id,
    help="Idempotency key; repeat it to retry safely (default: a new UUID).",
)
_request_branch_option = click.option(
    "--request-branch",
    type=BRANCH_ID,
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

    acct = run_request(go)
    session.show(f"opened {_account_line(acct)}", _account_json(acct))


@account.command("show")
@click.argument("account_ids", nargs=-1, required=True)
@_session_options
def show(session: _Session, account_ids: tuple[str, ...]) -> None:
    """Show the balance of one or more accounts, read from one state of the branch."""

    async def go() -> list[Account]:
        async with session.client() as bank:
            return await bank.get_balances(account_ids=account_ids)

    accounts = run_request(go)
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

    cur, minor, done = run_request(go)
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

    cur, minor, done = run_request(go)
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

    done = run_request(go)
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

    pages = run_request(go)
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

    found = run_request(go)
    if session.as_json or output_format == "json":
        click.echo(json.dumps(statement_json(found), sort_keys=True))
    elif output_format == "csv":
        click.echo(statement_csv(found))
    else:
        click.echo(statement_table(found))


# Many operations from a file -------------------------------------------------------------


@account.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--batch-size",
    type=click.IntRange(1, MAX_BATCH_ENTRIES),
    default=2000,
    show_default=True,
    help=f"Lines sent per batch (1-{MAX_BATCH_ENTRIES}).",
)
@_session_options
def import_operations(session: _Session, file: Path, batch_size: int) -> None:
    """Carry out every deposit, withdrawal and transfer in FILE (CSV), in batches.

    Columns: operation, account_id, amount, and optionally to_account_id, currency and
    request_id. Importing the same file again applies nothing twice. A bad file is
    refused before anything is sent (exit status 2); lines the bank refuses are listed
    with their line numbers (exit status 1).
    """
    try:
        lines = read_lines(file)
    except ImportFileError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(2)

    async def go() -> ImportSummary:
        with progress_bar(len(lines), f"importing {file.name}", quiet=session.as_json) as bar:
            async with session.client() as bank:
                return await import_lines(bank, lines, batch_size=batch_size, advance=bar)

    summary = run_request(go)
    if session.as_json:
        click.echo(json.dumps(import_json(summary), sort_keys=True))
    else:
        print_import_summary(summary, len(lines))
    if summary.refused:
        sys.exit(1)

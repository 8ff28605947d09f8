"""How the ``dbank account`` commands show amounts, histories and statements: JSON values,
``rich`` tables and CSV. Amounts are exact decimal strings in the account's currency, never
floats; JSON also gives the integer minor units."""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dbank.cli._import import OPERATIONS, ImportSummary
from dbank.client import AccountStatement, InterestPosted, Transaction, TransactionPage
from dbank.money import Currency, currency, format_amount


def money_json(minor: int, cur: Currency) -> dict[str, Any]:
    return {"minor_units": minor, "amount": format_amount(minor, cur), "currency": cur.code}


def _signed(minor: int, cur: Currency) -> str:
    return ("+" if minor > 0 else "") + format_amount(minor, cur)


def _time(t: Transaction) -> str:
    return t.time.strftime("%Y-%m-%d %H:%M:%S")


def transaction_json(t: Transaction, cur: Currency) -> dict[str, Any]:
    return {
        "op_id": str(t.op_id),
        "kind": t.kind.value,
        "time": t.time.isoformat(),
        "amount": money_json(t.amount, cur),
        "balance": money_json(t.balance, cur),
        "counterparty": t.counterparty,
        "request_id": t.request_id,
    }


def interest_line(done: InterestPosted) -> str:
    cur = currency(done.currency)
    posted = f"{format_amount(done.interest, cur)} {cur.code} at {done.annual_rate}%"
    if done.posted_now:
        return f"posted {posted} on {done.account_id} through {done.posted_through}"
    return (
        f"{done.account_id}: interest is posted through {done.posted_through} already"
        f" ({posted}); nothing added"
    )


def interest_json(done: InterestPosted) -> dict[str, Any]:
    cur = currency(done.currency)
    return {
        "account_id": done.account_id,
        "interest": money_json(done.interest, cur),
        "posted_through": done.posted_through.isoformat(),
        "annual_rate": done.annual_rate,
        "day_balance": money_json(done.day_balance, cur),
        "posted_now": done.posted_now,
        "op_id": str(done.op_id),
        "request_id": done.request_id,
    }


def history_json(account_id: str, cur: Currency, pages: Sequence[TransactionPage]) -> Any:
    return {
        "account_id": account_id,
        "currency": cur.code,
        "transactions": [transaction_json(t, cur) for p in pages for t in p.transactions],
        "next_page_token": pages[-1].next_page_token if pages else "",
    }


def _entries_table(title: str, transactions: Sequence[Transaction], cur: Currency) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("amount", justify="right", no_wrap=True)
    table.add_column("balance", justify="right", no_wrap=True)
    table.add_column("counterparty")
    table.add_column("op", no_wrap=True)
    for t in transactions:
        table.add_row(
            _time(t),
            t.kind.value,
            _signed(t.amount, cur),
            format_amount(t.balance, cur),
            t.counterparty,
            str(t.op_id),
        )
    return table


def _printed(*parts: Any) -> str:
    buffer = io.StringIO()
    # A fixed width and no colour: the same text on a terminal, in a pipe and in a file.
    console = Console(file=buffer, width=120, color_system=None, soft_wrap=True)
    for part in parts:
        console.print(part)
    return buffer.getvalue().rstrip("\n")


def history_table(account_id: str, cur: Currency, pages: Sequence[TransactionPage]) -> str:
    transactions = [t for p in pages for t in p.transactions]
    parts: list[Any] = [_entries_table(f"{account_id} ({cur.code})", transactions, cur)]
    token = pages[-1].next_page_token if pages else ""
    if token:
        parts.append(f"more: --page-token {token}")
    return _printed(*parts)


def statement_json(s: AccountStatement) -> dict[str, Any]:
    cur = currency(s.currency)
    return {
        "account_id": s.account_id,
        "currency": cur.code,
        "from": s.from_date.isoformat(),
        "to": s.to_date.isoformat(),
        "opening_balance": money_json(s.opening_balance, cur),
        "transactions": [transaction_json(t, cur) for t in s.transactions],
        "interest": money_json(s.interest, cur),
        "closing_balance": money_json(s.closing_balance, cur),
    }


def statement_table(s: AccountStatement) -> str:
    cur = currency(s.currency)
    title = f"Statement of {s.account_id} ({cur.code}), {s.from_date} to {s.to_date}"
    table = _entries_table(title, s.transactions, cur)
    summary = Table.grid(padding=(0, 2))
    summary.add_column()
    summary.add_column(justify="right")
    summary.add_row("opening balance", format_amount(s.opening_balance, cur))
    summary.add_row("interest", format_amount(s.interest, cur))
    summary.add_row("closing balance", format_amount(s.closing_balance, cur))
    return _printed(table, summary)


CSV_COLUMNS = ("time", "kind", "amount", "balance", "counterparty", "op_id", "request_id")


def statement_csv(s: AccountStatement) -> str:
    """One row per entry, between an ``opening_balance`` row and a ``closing_balance`` row
    (their time is the range's first and last day)."""
    cur = currency(s.currency)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    opening = format_amount(s.opening_balance, cur)
    writer.writerow([s.from_date.isoformat(), "opening_balance", "", opening, "", "", ""])
    for t in s.transactions:
        writer.writerow(
            [
                t.time.isoformat(),
                t.kind.value,
                format_amount(t.amount, cur),
                format_amount(t.balance, cur),
                t.counterparty,
                str(t.op_id),
                t.request_id,
            ]
        )
    closing = format_amount(s.closing_balance, cur)
    writer.writerow([s.to_date.isoformat(), "closing_balance", "", closing, "", "", ""])
    return out.getvalue().rstrip("\n")


# Imports --------------------------------------------------------------------------------


@contextlib.contextmanager
def progress_bar(total: int, what: str, *, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr (none with ``quiet``, or where stderr is no terminal);
    yields the function that advances it by a number of lines."""
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet or not console.is_terminal,
    ) as progress:
        task = progress.add_task(what, total=total)
        yield lambda lines: progress.advance(task, lines)


def import_table(summary: ImportSummary, total: int) -> str:
    table = Table(title=f"{total} lines", title_justify="left")
    table.add_column("operation")
    table.add_column("applied", justify="right")
    table.add_column("amount", justify="right")
    for operation in OPERATIONS:
        moved = [
            f"{format_amount(minor, currency(code))} {code}"
            for (kind, code), minor in sorted(summary.moved.items())
            if kind == operation
        ]
        table.add_row(operation, str(summary.applied.get(operation, 0)), ", ".join(moved))
    table.add_row("refused", str(len(summary.refused)), "")
    parts: list[Any] = [table]
    for number, error in summary.refused[:MAX_REFUSED_SHOWN]:
        parts.append(f"line {number}: {error.reason}: {error.message}")
    if len(summary.refused) > MAX_REFUSED_SHOWN:
        parts.append(f"... {len(summary.refused) - MAX_REFUSED_SHOWN} more refused lines (--json)")
    return _printed(*parts)


def print_import_summary(summary: ImportSummary, total: int) -> None:
    click.echo(import_table(summary, total))


def import_json(summary: ImportSummary) -> dict[str, Any]:
    return {
        "applied": summary.applied,
        "moved": [
            {"operation": kind, "amount": money_json(minor, currency(code))}
            for (kind, code), minor in sorted(summary.moved.items())
        ],
        "refused": [
            {"line": number, "reason": error.reason, "message": error.message}
            for number, error in summary.refused
        ],
    }


MAX_REFUSED_SHOWN = 50
"""The refused lines the table names (``--json`` lists every one)."""

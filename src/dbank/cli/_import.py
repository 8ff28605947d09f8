"""``dbank account import FILE.csv``: many operations from a file, sent as batches.

The file is CSV with a header naming its columns: ``operation`` (deposit, withdraw or
transfer), ``account_id`` (the account credited or debited; a transfer's source),
``amount`` (a decimal in the account's currency, as every account command takes it), and
optionally ``to_account_id`` (transfers only), ``currency`` and ``request_id``. A line
without a request id gets ``csv-<digest of the file>:<line number>``: importing the same
file again applies nothing twice (each entry is idempotent by its request id), and a
changed file is a new file. The whole file is read and checked before anything is sent.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dbank.client import (
    BankClient,
    BatchEntry,
    DepositEntry,
    TransferEntry,
    WithdrawEntry,
)
from dbank.errors import DbankError
from dbank.ledger.commands import check_id, check_request_id
from dbank.money import Currency, currency, parse_amount

OPERATIONS = ("deposit", "withdraw", "transfer")
REQUIRED = ("operation", "account_id", "amount")
OPTIONAL = ("to_account_id", "currency", "request_id")
MAX_LINE_ERRORS = 20
"""A file with more bad lines names only this many (and how many more there are)."""
CURRENCY_READS = 32
"""How many accounts' currencies are read at once."""


class ImportFileError(Exception):
    """The file cannot be imported: one line per problem, each naming its line."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class Line:
    """One operation of the file, as written (``number``: its line in the file)."""

    number: int
    operation: str
    account_id: str
    amount: str
    to_account_id: str
    currency: str
    request_id: str


@dataclass(slots=True)
class ImportSummary:
    """What an import did: per operation, how many lines were applied (or had been by an
    earlier import) and how much they moved, in minor units per currency; and each
    refused line with its error."""

    applied: dict[str, int] = field(default_factory=dict)
    moved: dict[tuple[str, str], int] = field(default_factory=dict)
    refused: list[tuple[int, DbankError]] = field(default_factory=list)


def read_lines(path: Path) -> list[Line]:
    """Raises ``ImportFileError``: unreadable, not CSV with the columns above, or a line
    whose operation, account id, request id or columns are wrong."""
    try:
        data = path.read_bytes()
        text = data.decode("utf-8-sig")
    except OSError as exc:
        raise ImportFileError([f"{path}: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ImportFileError([f"{path}: not UTF-8 text"]) from None
    digest = hashlib.sha256(data).hexdigest()[:16]
    reader = csv.DictReader(text.splitlines(), strict=True)
    try:
        header = reader.fieldnames or []
        missing = [name for name in REQUIRED if name not in header]
        unknown = [name for name in header if name not in REQUIRED + OPTIONAL]
        if missing or unknown:
            said = ", ".join(
                [f"no column {n!r}" for n in missing] + [f"unknown column {n!r}" for n in unknown]
            )
            raise ImportFileError([f"{path}:1: {said} (columns: {', '.join(REQUIRED + OPTIONAL)})"])
        lines, problems = [], []
        for row in reader:
            number = reader.line_num
            try:
                lines.append(_line(row, number, digest))
            except ValueError as exc:
                problems.append(f"{path}:{number}: {exc}")
    except csv.Error as exc:
        raise ImportFileError([f"{path}:{reader.line_num}: not CSV: {exc}"]) from None
    if problems:
        more = len(problems) - MAX_LINE_ERRORS
        shown = problems[:MAX_LINE_ERRORS] + (
            [f"{path}: {more} more bad lines"] if more > 0 else []
        )
        raise ImportFileError(shown)
    if not lines:
        raise ImportFileError([f"{path}: no operations after the header"])
    return lines


def _line(row: dict[str | None, str | list[str] | None], number: int, digest: str) -> Line:
    if None in row:
        raise ValueError("more values than columns")
    values = {
        k: (v or "").strip()
        for k, v in row.items()
        if isinstance(k, str) and not isinstance(v, list)
    }
    operation = values.get("operation", "").lower()
    if operation not in OPERATIONS:
        raise ValueError(
            f"operation {values.get('operation', '')!r} is none of {', '.join(OPERATIONS)}"
        )
    to_account = values.get("to_account_id", "")
    if (operation == "transfer") != bool(to_account):
        raise ValueError("a transfer needs to_account_id, and only a transfer has one")
    request_id = values.get("request_id", "") or f"csv-{digest}:{number}"
    try:
        check_id(values.get("account_id", ""), field="account_id")
        if to_account:
            check_id(to_account, field="to_account_id")
        check_request_id(request_id)
        if values.get("currency"):
            currency(values["currency"].upper())
    except DbankError as exc:
        raise ValueError(exc.message) from None
    if not values.get("amount"):
        raise ValueError("no amount")
    return Line(
        number,
        operation,
        values["account_id"],
        values["amount"],
        to_account,
        values.get("currency", "").upper(),
        request_id,
    )


async def import_lines(
    bank: BankClient,
    lines: Sequence[Line],
    *,
    batch_size: int,
    advance: Callable[[int], None],
) -> ImportSummary:
    """Send ``lines`` in batches of ``batch_size``, in order; ``advance`` is told how many
    lines each batch settled. A line the bank refuses (or whose amount does not fit its
    account's currency) is counted in the summary and the others go on.

    Raises:
        DbankError: a batch was refused as a whole (the caller's rights, the branch down
            after the client's retries); the batches before it are applied.
    """
    summary = ImportSummary()
    currencies = await _currencies(bank, lines)
    for start in range(0, len(lines), batch_size):
        chunk = lines[start : start + batch_size]
        entries: list[tuple[Line, BatchEntry, int, Currency]] = []
        for line in chunk:
            found = currencies[line.account_id]
            if isinstance(found, DbankError):
                summary.refused.append((line.number, found))
                continue
            try:
                entry, minor = _entry(line, found)
            except DbankError as exc:
                summary.refused.append((line.number, exc))
                continue
            entries.append((line, entry, minor, found))
        if entries:
            outcome = await bank.batch([entry for _, entry, _, _ in entries])
            for (line, _, minor, cur), result in zip(entries, outcome.results, strict=True):
                if isinstance(result, DbankError):
                    summary.refused.append((line.number, result))
                    continue
                summary.applied[line.operation] = summary.applied.get(line.operation, 0) + 1
                key = (line.operation, cur.code)
                summary.moved[key] = summary.moved.get(key, 0) + minor
        advance(len(chunk))
    summary.refused.sort(key=lambda refused: refused[0])
    return summary


def _entry(line: Line, cur: Currency) -> tuple[BatchEntry, int]:
    """Raises ``InvalidArgument`` for an amount that is not one of ``cur``."""
    minor = parse_amount(line.amount, cur)
    match line.operation:
        case "deposit":
            return DepositEntry(line.account_id, minor, cur.code, line.request_id), minor
        case "withdraw":
            return WithdrawEntry(line.account_id, minor, cur.code, line.request_id), minor
        case _:
            entry = TransferEntry(
                line.account_id, line.to_account_id, minor, cur.code, line.request_id
            )
            return entry, minor


async def _currencies(bank: BankClient, lines: Sequence[Line]) -> dict[str, Currency | DbankError]:
    """Each account's currency: the file's where it names one, else the account's own
    (read from the branch; an account it cannot read gets that error instead)."""
    found: dict[str, Currency | DbankError] = {}
    unread = set()
    for line in lines:
        if line.currency:
            found.setdefault(line.account_id, currency(line.currency))
        else:
            unread.add(line.account_id)
    limit = asyncio.Semaphore(CURRENCY_READS)

    async def read(account_id: str) -> None:
        async with limit:
            try:
                account = await bank.get_balance(account_id=account_id)
            except DbankError as exc:
                found[account_id] = exc
                return
            found[account_id] = currency(account.currency)

    await asyncio.gather(*(read(a) for a in sorted(unread - set(found))))
    return found

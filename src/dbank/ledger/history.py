"""An account's history (design §6): the ops that opened it or changed its balance, in
``(hlc, origin, seq)`` order, each with the balance right after it, and the opaque page
tokens that walk it (AIP-158).

A page token carries the snapshot (a version vector) the first page was read at, the
position of the last entry served and the balance there. Every later page is read at the
same snapshot, so a listing neither loses nor repeats an entry while writes continue, and
any branch that covers the snapshot serves the same pages.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from dbank.errors import InvalidArgument
from dbank.ledger.clock import day_start_hlc, hlc_day
from dbank.ledger.ops import (
    Deposit,
    Genesis,
    Grant,
    Interest,
    Op,
    OpenAccount,
    Transfer,
    Withdrawal,
)
from dbank.ledger.version_vector import MAX_BRANCH_ID, OpId, VersionVector

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

Position = tuple[int, int, int]
"""``(hlc, origin, seq)`` of an op: its place in every account history it is part of."""


class EntryKind(enum.Enum):
    OPEN = "open"
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    TRANSFER_IN = "transfer_in"
    TRANSFER_OUT = "transfer_out"
    INTEREST = "interest"


@dataclass(frozen=True, slots=True)
class Entry:
    """One op in an account's history.

    Attributes:
        change: what the op did to the balance, signed minor units.
        balance: the balance right after the op.
        counterparty: the other account of a transfer, else "".
    """

    op_id: OpId
    hlc: int
    kind: EntryKind
    change: int
    balance: int
    request_id: str
    counterparty: str = ""

    @property
    def day(self) -> dt.date:
        return hlc_day(self.hlc)


def history_accounts(op: Op) -> tuple[str, ...]:
    """The accounts whose history holds ``op``: all it touches, except for grants, which
    move escrow between branches and leave every balance as it was."""
    if isinstance(op.body, Grant):
        return ()
    return op.accounts()


def position(op: Op) -> Position:
    return (op.hlc, op.id.origin, op.id.seq)


def day_position(day: dt.date) -> Position:
    """A position just before every op of ``day`` and after every op of earlier days: a
    read after it starts at ``day``."""
    return (day_start_hlc(day), -1, -1)


def change_of(op: Op, account_id: str) -> tuple[EntryKind, int, str]:
    """``(kind, balance change, counterparty)`` of ``op`` for ``account_id``."""
    body = op.body
    match body:
        case OpenAccount():
            return EntryKind.OPEN, 0, ""
        case Deposit():
            return EntryKind.DEPOSIT, body.amount, ""
        case Withdrawal():
            return EntryKind.WITHDRAWAL, -body.amount, ""
        case Interest():
            return EntryKind.INTEREST, body.amount, ""
        case Transfer() if body.from_account_id == account_id:
            return EntryKind.TRANSFER_OUT, -body.amount, body.to_account_id
        case Transfer():
            return EntryKind.TRANSFER_IN, body.amount, body.from_account_id
        case Grant():
            raise ValueError(f"op {op.id} is a grant, in no account's history")
        case Genesis():
            return EntryKind.OPEN, body.amount, ""


def entries(ops: Iterable[Op], account_id: str, balance: int) -> list[Entry]:
    """The history entries of ``ops`` (in history order), starting at ``balance``."""
    found = []
    for op in ops:
        kind, change, counterparty = change_of(op, account_id)
        balance += change
        found.append(Entry(op.id, op.hlc, kind, change, balance, op.request_id, counterparty))
    return found


def bounded_page_size(requested: int) -> int:
    """AIP-158: 0 means the default, more than the maximum means the maximum.

    Raises:
        InvalidArgument: ``INVALID_PAGE_SIZE`` for a negative size.
    """
    if requested < 0:
        raise InvalidArgument(
            f"page_size must not be negative, got {requested}",
            reason="INVALID_PAGE_SIZE",
            field="page_size",
        )
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


_TOKEN_VERSION = 1
_CHECK_BYTES = 8


@dataclass(frozen=True, slots=True)
class PageToken:
    """Where the next page of one account's history starts.

    Attributes:
        account_id: the account listed; a token is refused for another.
        snapshot: the replica state the listing reads, for every page.
        after: the position of the last entry served.
        balance: the balance right after that entry.
    """

    account_id: str
    snapshot: VersionVector
    after: Position
    balance: int

    def encode(self) -> str:
        body = json.dumps(
            [
                _TOKEN_VERSION,
                self.account_id,
                list(self.snapshot.items()),
                list(self.after),
                self.balance,
            ],
            separators=(",", ":"),
        ).encode()
        check = hashlib.sha256(body).digest()[:_CHECK_BYTES]
        return base64.urlsafe_b64encode(check + body).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, account_id: str) -> PageToken:
        """Raises ``InvalidArgument`` (``INVALID_PAGE_TOKEN``) for a token that this code
        did not make, that was changed, or that belongs to another account's listing."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            check, body = raw[:_CHECK_BYTES], raw[_CHECK_BYTES:]
            if hashlib.sha256(body).digest()[:_CHECK_BYTES] != check:
                raise ValueError("checksum")
            version, owner, snapshot, after, balance = json.loads(body)
            if version != _TOKEN_VERSION or owner != account_id:
                raise ValueError("another listing")
            token = cls(owner, VersionVector(_pairs(snapshot)), _position(after), _int(balance))
        except (ValueError, TypeError, binascii.Error) as exc:
            raise InvalidArgument(
                "page_token is not a token of this account's listing; start again without one",
                reason="INVALID_PAGE_TOKEN",
                field="page_token",
            ) from exc
        return token


def _int(value: object, high: int = 2**63 - 1) -> int:
    """A count, a position or a balance: what the store and the wire hold (int64; an
    origin: uint32), never more."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise ValueError(value)
    return value


def _pairs(value: object) -> list[tuple[int, int]]:
    if not isinstance(value, list):
        raise TypeError(value)
    return [(_int(origin, MAX_BRANCH_ID), _int(seq)) for origin, seq in value]


def _position(value: object) -> Position:
    if not isinstance(value, list) or len(value) != 3:
        raise ValueError(value)
    hlc, origin, seq = value
    return (_int(hlc), _int(origin, MAX_BRANCH_ID), _int(seq))

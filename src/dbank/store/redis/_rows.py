"""Stored values that carry their digest (key schema 3): ``DIGEST SPACE PAYLOAD``.

Every value of the branch's hashes (accounts, rights, net credits, the version vector,
outcomes, interest postings) and every item of its ops lists starts with the row's
``row_digest`` (32 hex digits) and a space. The digest covers the row's table, its name
(a hash's field; an op's origin and seq) and its payload, so a value that changed, or
moved to another field or index, no longer matches. The scripts strip the digest where
they read a value (the version vector in ``commit.lua``); Python checks it on every read.
"""

from __future__ import annotations

import datetime as dt
import json

from dbank.ledger import AccountRecord, AccountType, InterestPosting, LedgerState, OpId
from dbank.store._errors import StoreCorrupt
from dbank.store._integrity import describe, row_digest
from dbank.store.redis._keys import split_branch_field

DIGEST_WIDTH = 32
"""Hex digits of a digest; the payload starts after them and one space."""


def sign(table: str, name: tuple[object, ...], payload: bytes | str | int) -> bytes:
    """The stored form of ``payload`` in row ``name`` of ``table``."""
    data = payload if isinstance(payload, bytes) else str(payload).encode()
    return row_digest(table, *name, data).encode() + b" " + data


def payload_of(table: str, name: tuple[object, ...], value: bytes, where: str) -> bytes:
    """The payload of a stored value, checked against its digest.

    Raises:
        StoreCorrupt: naming the row, when the value is not what ``sign`` made of it.
    """
    problem = problem_of(table, name, value)
    if problem is not None:
        raise StoreCorrupt(f"{where}: {problem}")
    return value[DIGEST_WIDTH + 1 :]


def problem_of(table: str, name: tuple[object, ...], value: bytes) -> str | None:
    """What is wrong with a stored value, naming its row; None if nothing."""
    digest, payload = value[:DIGEST_WIDTH], value[DIGEST_WIDTH + 1 :]
    if (
        value[DIGEST_WIDTH : DIGEST_WIDTH + 1] == b" "
        and digest == row_digest(table, *name, payload).encode()
    ):
        return None
    return f"{describe(table, row_key(table, name))}: its digest does not match its contents"


def row_key(table: str, name: tuple[object, ...]) -> dict[str, object]:
    """How a row of ``table`` is named in a report: by its key's parts."""
    if table == "ops":
        return {"origin": name[0], "seq": name[1]}
    field = str(name[0])
    if table in ("rights", "credits"):
        account_id, branch = split_branch_field(field)
        return {"account_id": account_id, "branch": branch}
    if table == "outcomes":
        scope, _, request_id = field.partition("\0")
        return {"scope": scope, "request_id": request_id}
    if table == "applied":
        return {"origin": int(field)}
    return {"account_id": field}


def encode_account(record: AccountRecord) -> bytes:
    fields = [record.type.value, record.currency, record.owner]
    return json.dumps([*fields, record.owner_branch, record.opened_hlc]).encode()


def encode_posting(posting: InterestPosting) -> bytes:
    op_id = posting.op_id
    fields = [posting.through.isoformat(), op_id.origin, op_id.seq, posting.amount]
    return json.dumps([*fields, posting.rate, posting.day_balance]).encode()


def decode_posting(data: bytes) -> InterestPosting:
    through, origin, seq, amount, rate, day_balance = json.loads(data)
    day = dt.date.fromisoformat(through)
    return InterestPosting(day, OpId(origin, seq), amount, rate, day_balance)


def state_of(tables: dict[str, dict[str, bytes]]) -> LedgerState:
    """The ledger state of the payloads of the state hashes, by table and field."""

    def by_branch(table: str) -> dict[tuple[str, int], int]:
        return {split_branch_field(k): int(v) for k, v in tables[table].items()}

    return LedgerState(
        {k: decode_account(k, v) for k, v in tables["accounts"].items()},
        by_branch("rights"),
        {int(k): int(v) for k, v in tables["applied"].items()},
        postings={k: decode_posting(v) for k, v in tables["postings"].items()},
        credits=by_branch("credits"),
    )


def decode_account(account_id: str, data: bytes) -> AccountRecord:
    kind, currency, owner, owner_branch, opened_hlc = json.loads(data)
    return AccountRecord(account_id, AccountType(kind), currency, owner, owner_branch, opened_hlc)

"""Canonical bytes for ops and outcomes.

Every replica stores and sends an op as the same bytes (compact positional JSON), so
``op_digest`` can tell an op that arrives again from a different op under a reused id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from dbank.errors import Internal
from dbank.ledger.ops import (
    AccountType,
    Deposit,
    Genesis,
    Grant,
    Interest,
    Op,
    OpBody,
    OpenAccount,
    Transfer,
    Withdrawal,
)
from dbank.ledger.outcome import Outcome
from dbank.ledger.version_vector import MAX_BRANCH_ID, OpId, VersionVector

_KINDS: dict[str, type[OpBody]] = {
    "open": OpenAccount,
    "deposit": Deposit,
    "withdrawal": Withdrawal,
    "transfer": Transfer,
    "grant": Grant,
    "interest": Interest,
    "genesis": Genesis,
}
_KIND_OF = {cls: kind for kind, cls in _KINDS.items()}
_FIELD_TYPES: dict[type[OpBody], tuple[type, ...]] = {
    OpenAccount: (str, AccountType, str, str),
    Deposit: (str, int),
    Withdrawal: (str, int),
    Transfer: (str, str, int),
    Grant: (str, int, int),
    Interest: (str, int, dt.date, str, int),
    Genesis: (str, AccountType, str, str, int, tuple),
}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode()


def encode_op(op: Op) -> bytes:
    """``[origin, seq, deps, hlc, request, currency, kind, *body fields]``: positional,
    so the bytes are canonical without sorting and cheap to make. ``request`` is the
    request id, or ``[caller, request id]`` when the op has a caller (ops of an
    ``--insecure`` bank keep the shorter form)."""
    body = op.body
    fields = [_to_json(getattr(body, name)) for name in body.__slots__]
    return _dumps(
        [
            op.id.origin,
            op.id.seq,
            list(op.deps.items()),
            op.hlc,
            [op.caller, op.request_id] if op.caller else op.request_id,
            op.currency,
            _KIND_OF[type(body)],
            *fields,
        ]
    )


def decode_op(data: bytes) -> Op:
    """Raises ``Internal`` for bytes that are not an encoded op, or whose numbers are out
    of what an op can hold (an origin beyond uint32, a seq below 1, an amount beyond
    int64...): such an op was never made by a branch, so it is not one."""
    try:
        origin, seq, deps, hlc, request, currency, kind, *fields = json.loads(
            data, parse_constant=_no_constant
        )
        caller, request_id = request if isinstance(request, list) else ("", request)
        cls = _KINDS[kind]
        fields = _from_json(fields, _FIELD_TYPES[cls])
        op = Op(
            id=OpId(_within(origin, 0, MAX_BRANCH_ID), _within(seq, 1, _INT64_MAX)),
            deps=VersionVector(
                (_within(o, 0, MAX_BRANCH_ID), _within(s, 1, _INT64_MAX)) for o, s in deps
            ),
            hlc=_within(hlc, 0, _INT64_MAX),
            request_id=str(request_id),
            currency=str(currency),
            body=cls(*fields),
            caller=str(caller),
        )
        _check_body(op.body)
        return op
    except (ValueError, KeyError, TypeError, IndexError, RecursionError, OverflowError) as exc:
        raise Internal(f"undecodable op: {type(exc).__name__}") from exc


_INT64_MAX = 2**63 - 1
_MAX_TEXT = 256
"""The longest string an op's body holds (the bound on every request field)."""


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number an op holds")


def _within(value: object, low: int, high: int) -> int:
    number = _integer(value)
    if not low <= number <= high:
        raise ValueError(f"{number} is not in {low}..{high}")
    return number


def _check_body(body: OpBody) -> None:
    """Every amount of a body from 1 (0 for interest) to int64's largest, every other
    number within int64, every string within ``_MAX_TEXT``."""
    for name in body.__slots__:
        value = getattr(body, name)
        if isinstance(value, str) and len(value) > _MAX_TEXT:
            raise ValueError(f"{name} is {len(value)} characters long")
        if isinstance(value, int) and not isinstance(value, AccountType):
            # Interest may post nothing (it still marks its days); every other amount moves
            # at least one minor unit.
            low = -_INT64_MAX - 1 if name != "amount" else 0 if isinstance(body, Interest) else 1
            _within(value, low, _INT64_MAX)


def _to_json(value: object) -> object:
    if isinstance(value, AccountType):
        return value.value
    if isinstance(value, dt.date):
        return value.isoformat()
    return value  # tuples (genesis shares) encode as JSON arrays as they are


def _from_json(fields: list[Any], types: tuple[type, ...]) -> list[Any]:
    if len(fields) != len(types):
        raise ValueError(f"expected {len(types)} body fields, got {len(fields)}")
    decoded = []
    for value, expected in zip(fields, types, strict=True):
        if expected is AccountType:
            value = AccountType(value)
        elif expected is dt.date and isinstance(value, str):
            value = dt.date.fromisoformat(value)
        elif expected is tuple and isinstance(value, list):
            value = tuple((_integer(branch), _integer(amount)) for branch, amount in value)
        # bool is an int in Python, never an amount or a branch id here.
        if not isinstance(value, expected) or isinstance(value, bool):
            raise TypeError(f"body field {value!r} is not a {expected.__name__}")
        decoded.append(value)
    return decoded


def op_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode_outcome(outcome: Outcome) -> bytes:
    op_id = outcome.op_id
    return _dumps(
        [
            outcome.fingerprint,
            [op_id.origin, op_id.seq] if op_id else None,
            outcome.balances,
            outcome.error_type,
            outcome.error_reason,
            outcome.error_message,
            outcome.error_metadata,
        ]
    )


def decode_outcome(data: bytes) -> Outcome:
    """Raises ``Internal`` for bytes that are not an encoded outcome."""
    try:
        fingerprint, op_id, balances, error_type, reason, message, metadata = json.loads(data)
        return Outcome(
            fingerprint=fingerprint,
            op_id=OpId(*op_id) if op_id else None,
            balances=tuple((str(a), int(b)) for a, b in balances),
            error_type=error_type,
            error_reason=reason,
            error_message=message,
            error_metadata=tuple((str(k), str(v)) for k, v in metadata),
        )
    except (ValueError, KeyError, TypeError, IndexError, RecursionError) as exc:
        raise Internal(f"undecodable outcome: {type(exc).__name__}") from exc


def _integer(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{value!r} is not an integer")
    return value

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
from dbank.ledger.version_vector import OpId, VersionVector

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
    """Raises ``Internal`` for bytes that are not an encoded op."""
    try:
        origin, seq, deps, hlc, request, currency, kind, *fields = json.loads(data)
        caller, request_id = request if isinstance(request, list) else ("", request)
        cls = _KINDS[kind]
        fields = _from_json(fields, _FIELD_TYPES[cls])
        return Op(
            id=OpId(int(origin), int(seq)),
            deps=VersionVector((int(o), int(s)) for o, s in deps),
            hlc=int(hlc),
            request_id=str(request_id),
            currency=str(currency),
            body=cls(*fields),
            caller=str(caller),
        )
    except (ValueError, KeyError, TypeError, IndexError, RecursionError) as exc:
        raise Internal(f"undecodable op: {type(exc).__name__}") from exc


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

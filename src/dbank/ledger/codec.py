"""Canonical bytes for ops and outcomes.

Every replica stores and sends an op as the same bytes (compact JSON with sorted keys), so
``op_digest`` can tell an op that arrives again from a different op under a reused id.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from dbank.ledger.errors import Internal
from dbank.ledger.ops import (
    AccountType,
    Deposit,
    Grant,
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
}
_KIND_OF = {cls: kind for kind, cls in _KINDS.items()}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def encode_op(op: Op) -> bytes:
    body = {name: getattr(op.body, name) for name in op.body.__slots__}
    if isinstance(op.body, OpenAccount):
        body["type"] = op.body.type.value
    return _dumps(
        {
            "id": [op.id.origin, op.id.seq],
            "deps": sorted(op.deps.items()),
            "hlc": op.hlc,
            "request_id": op.request_id,
            "currency": op.currency,
            "kind": _KIND_OF[type(op.body)],
            "body": body,
        }
    )


def decode_op(data: bytes) -> Op:
    """Raises ``Internal`` for bytes that are not an encoded op."""
    try:
        raw = json.loads(data)
        kind = _KINDS[raw["kind"]]
        fields = dict(raw["body"])
        if kind is OpenAccount:
            fields["type"] = AccountType(fields["type"])
        return Op(
            id=OpId(*raw["id"]),
            deps=VersionVector((int(o), int(s)) for o, s in raw["deps"]),
            hlc=int(raw["hlc"]),
            request_id=str(raw["request_id"]),
            currency=str(raw["currency"]),
            body=kind(**fields),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise Internal(f"undecodable op: {exc}") from exc


def op_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode_outcome(outcome: Outcome) -> bytes:
    return _dumps(
        {
            "fingerprint": outcome.fingerprint,
            "op_id": [outcome.op_id.origin, outcome.op_id.seq] if outcome.op_id else None,
            "balances": outcome.balances,
            "error": [
                outcome.error_type,
                outcome.error_reason,
                outcome.error_message,
                outcome.error_metadata,
            ],
        }
    )


def decode_outcome(data: bytes) -> Outcome:
    """Raises ``Internal`` for bytes that are not an encoded outcome."""
    try:
        raw = json.loads(data)
        error_type, reason, message, metadata = raw["error"]
        return Outcome(
            fingerprint=raw["fingerprint"],
            op_id=OpId(*raw["op_id"]) if raw["op_id"] else None,
            balances=tuple((str(a), int(b)) for a, b in raw["balances"]),
            error_type=error_type,
            error_reason=reason,
            error_message=message,
            error_metadata=tuple((str(k), str(v)) for k, v in metadata),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise Internal(f"undecodable outcome: {exc}") from exc

"""How a traced customer request is recognised on the wire, by every process it reaches.

* A customer's call carries two metadata entries: its Lamport stamp (``dbank-lamport``)
  and who asks for which request (``dbank-customer-request``: ``"CUSTOMER/REQUEST"``). The
  branch answers with its own stamp in the reply's initial metadata, which also reaches the
  caller with an error status. No Bank message changes.
* A traced write's request id carries the request (``tagged_request_id``), because that is
  what its op carries to the other branches: a branch that receives the op recovers the
  request from it (``request_of``). Untagged request ids (UUIDs) are never traced.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

__all__ = [
    "CUSTOMER_REQUEST_KEY",
    "LAMPORT_KEY",
    "CustomerRequest",
    "customer_request_of",
    "lamport_metadata",
    "lamport_of",
    "request_of",
    "tagged_request_id",
]

LAMPORT_KEY = "dbank-lamport"
CUSTOMER_REQUEST_KEY = "dbank-customer-request"

_TAG = re.compile(r"cr([0-9]{1,18})-[0-9a-f]{32}")
"""``cr`` is not hexadecimal, so no UUID request id can look like a tagged one."""
_NUMBER = re.compile(r"[0-9]{1,18}")

CustomerRequest = tuple[int, int]
"""``(customer, request)``: a customer's id and the id of its request."""

Metadata = Iterable[tuple[str, str | bytes]]


def tagged_request_id(request: int) -> str:
    """A fresh request id (unique, 1-64 bytes) from which ``request_of`` recovers
    ``request``. Request ids of a file repeat, so each call gets its own."""
    return f"cr{request}-{uuid.uuid4().hex}"


def request_of(request_id: str) -> int | None:
    """The customer request a ``tagged_request_id`` stands for; ``None`` for any other."""
    match = _TAG.fullmatch(request_id)
    return None if match is None else int(match.group(1))


def lamport_metadata(stamp: int) -> tuple[tuple[str, str]]:
    """The metadata that carries the Lamport stamp ``stamp``."""
    return ((LAMPORT_KEY, str(stamp)),)


def lamport_of(metadata: Metadata | None) -> int | None:
    """The Lamport stamp among gRPC metadata, if there is a valid one."""
    value = _value(metadata, LAMPORT_KEY)
    return int(value) if value is not None and _NUMBER.fullmatch(value) else None


def customer_request_of(metadata: Metadata | None) -> CustomerRequest | None:
    """The ``(customer, request)`` a call is made for, if its metadata says so."""
    value = _value(metadata, CUSTOMER_REQUEST_KEY)
    if value is None:
        return None
    customer, _, request = value.partition("/")
    if not (_NUMBER.fullmatch(customer) and _NUMBER.fullmatch(request)):
        return None
    return int(customer), int(request)


def _value(metadata: Metadata | None, key: str) -> str | None:
    for name, value in metadata or ():
        if name == key and isinstance(value, str):
            return value
    return None

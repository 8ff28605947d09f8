"""The one table between dbank's errors and gRPC statuses, used in both directions.

A server turns a ``DbankError`` into a status with a ``google.rpc.ErrorInfo`` (domain
``dbank``, the error's reason and metadata) in ``grpc-status-details-bin``; a client (the
customer's library, or a branch calling another) turns the status back into the same class
by its reason. Each branch of the exception tree has one code here; subclasses take their
base's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from dbank.errors import (
    Aborted,
    AlreadyExists,
    DbankError,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    error_class_for_reason,
)

DOMAIN = "dbank"

STATUS_CODES: dict[type[DbankError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    Aborted: grpc.StatusCode.ABORTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Internal: grpc.StatusCode.INTERNAL,
}
"""Each branch of the exception tree to its status."""

_BY_CODE: dict[grpc.StatusCode, type[DbankError]] = {
    code: cls for cls, code in STATUS_CODES.items() if cls is not Internal
}
# A call cancelled on the way (the peer went away) is worth a retry, like UNAVAILABLE.
_BY_CODE[grpc.StatusCode.CANCELLED] = Unavailable


def status_code_for(error: DbankError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        code = STATUS_CODES.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


MAX_MESSAGE_CHARS = 1024
MAX_METADATA_CHARS = 256
"""A status travels in HTTP/2 trailers, which a peer takes only up to 16 KiB in all
(more, and the caller sees ``RESOURCE_EXHAUSTED`` without the ErrorInfo): messages and
metadata values are cut to these lengths, whatever went into them."""


def to_status(error: DbankError) -> grpc.Status:
    """The rich gRPC status for ``error``: code, message and ErrorInfo."""
    return rpc_status.to_status(status_message(error))


def status_message(error: DbankError) -> status_pb2.Status:
    """``error`` as a ``google.rpc.Status`` message with its ErrorInfo (what a status
    carries, and what a batch's reply holds for each refused entry)."""
    code = status_code_for(error)
    metadata = {key: _cut(value, MAX_METADATA_CHARS) for key, value in error.metadata.items()}
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    return status_pb2.Status(
        code=getattr(code_pb2, code.name),
        message=_cut(error.message, MAX_MESSAGE_CHARS),
        details=[detail],
    )


def error_from_status(status: status_pb2.Status) -> DbankError:
    """The ``DbankError`` a ``google.rpc.Status`` message stands for, by its ErrorInfo."""
    code = next((c for c in grpc.StatusCode if c.value[0] == status.code), None)
    default = _BY_CODE.get(code, Internal) if code is not None else Internal
    message = status.message or (code.name if code is not None else "error")
    found = _from_details(status.details, default, message)
    return found or default(message, reason=code.name if code is not None else "UNKNOWN")


def _from_details(
    details: Iterable[any_pb2.Any], default: type[DbankError], message: str
) -> DbankError | None:
    for detail in details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            cls = error_class_for_reason(info.reason, default)
            return cls(message, reason=info.reason, **dict(info.metadata))
    return None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


async def abort_with(context: grpc.aio.ServicerContext, error: DbankError) -> NoReturn:
    """End the call being served with ``error``'s rich status."""
    status = to_status(error)
    await context.abort(status.code, status.details, status.trailing_metadata)
    raise AssertionError("context.abort returns only by raising")


def error_from_rpc(error: grpc.aio.AioRpcError) -> DbankError:
    """The ``DbankError`` a failed call stands for, chosen by its ErrorInfo reason."""
    default = _BY_CODE.get(error.code(), Internal)
    message = error.details() or error.code().name
    status = rpc_status.from_call(error)
    found = _from_details(status.details if status is not None else (), default, message)
    if found is not None:
        return found
    # No ErrorInfo: the status came from the transport, not from a branch.
    for clue, reason, said in _TRANSPORT_PROBLEMS:
        if clue in message:
            return default(said, reason=reason)
    return default(message, reason=error.code().name)


_TRANSPORT_PROBLEMS = (
    (
        "CERTIFICATE_VERIFY_FAILED",
        "TLS_CERTIFICATE_REFUSED",
        "the branch's certificate is not signed by the bank's CA given (--tls-dir or --ca):"
        " another bank's branch, or the wrong CA",
    ),
    (
        "WRONG_VERSION_NUMBER",
        "TLS_NOT_SERVED",
        "the branch does not speak TLS: an --insecure branch (talk to it with --insecure)",
    ),
    (
        "Socket closed",
        "CONNECTION_CLOSED",
        "the branch closed the connection before answering: if it serves TLS, give the"
        " bank's CA (--tls-dir or --ca); else it may be stopping",
    ),
    (
        "Tls handshake failed",
        "TLS_HANDSHAKE_FAILED",
        "the TLS handshake with the branch failed: is it a branch of this bank?",
    ),
)
"""Transport failures people meet when TLS is set up wrong, each said in one line (the
gRPC core's own text is a dump of its internals)."""

"""The one table from dbank's errors to gRPC statuses, and the rich status it produces.

Every status carries a ``google.rpc.ErrorInfo`` (domain ``dbank``, the error's reason and
metadata) in ``grpc-status-details-bin``; the client reads it back to raise the same class.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from dbank.ledger.errors import (
    Aborted,
    AlreadyExists,
    DbankError,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    Unavailable,
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
    Internal: grpc.StatusCode.INTERNAL,
}
"""Each branch of the exception tree to its status; subclasses take their base's."""


def status_code_for(error: DbankError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        code = STATUS_CODES.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


def to_status(error: DbankError) -> grpc.Status:
    """The rich gRPC status for ``error``: code, message and ErrorInfo."""
    code = status_code_for(error)
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=error.metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(
        code=getattr(code_pb2, code.name), message=error.message, details=[detail]
    )
    return rpc_status.to_status(status)

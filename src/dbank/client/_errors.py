"""gRPC statuses back into dbank's exception tree: the inverse of the server's table."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
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
    error_class_for_reason,
)

_BY_CODE: dict[grpc.StatusCode, type[DbankError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ABORTED: Aborted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.CANCELLED: Unavailable,
}


def error_from_rpc(error: grpc.aio.AioRpcError) -> DbankError:
    """The ``DbankError`` a failed call stands for, chosen by its ErrorInfo reason."""
    default = _BY_CODE.get(error.code(), Internal)
    message = error.details() or error.code().name
    status = rpc_status.from_call(error)
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            cls = error_class_for_reason(info.reason, default)
            return cls(message, reason=info.reason, **dict(info.metadata))
    # No ErrorInfo: the status came from the transport, not from a branch.
    return default(message, reason=error.code().name)

"""Server interceptors: where dbank's errors become gRPC statuses, for every method; the
base of every interceptor that wraps unary handlers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from dbank._status import abort_with
from dbank.errors import DbankError, Internal

log = logging.getLogger(__name__)

Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


class UnaryInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Wraps the unary handler of each method that ``wrap`` chooses, once per method."""

    def __init__(self) -> None:
        # Handlers by method, wrapped or not: built once, not on every call.
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    def wrap(self, behavior: Handler, method: str) -> Handler | None:
        """The handler to run instead of ``behavior`` for ``method``; None: ``behavior``."""
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        behavior = self.wrap(handler.unary_unary, method)
        if behavior is None:
            wrapped = handler
        else:
            wrapped = grpc.unary_unary_rpc_method_handler(
                behavior,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        self._wrapped[method] = wrapped
        return wrapped


class ErrorInterceptor(UnaryInterceptor):
    """Maps a ``DbankError`` raised by a unary handler to its rich status; anything else
    is a defect, logged and answered ``INTERNAL`` (never ``UNKNOWN``)."""

    def wrap(self, behavior: Handler, method: str) -> Handler:
        return _mapping_errors(behavior, method)


def _mapping_errors(behavior: Handler, method: str) -> Handler:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await behavior(request, context)
        except grpc.aio.AbortError:
            raise
        except DbankError as exc:
            error = exc
        except Exception as exc:
            log.exception("%s failed", method)
            error = Internal(f"internal error in {method}: {type(exc).__name__}")
        await abort_with(context, error)

    return wrapped

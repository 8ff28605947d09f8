"""The edge of every call a branch serves: what is checked before any other code runs.

A request that cannot be parsed (random bytes, a string that is not UTF-8, nesting past
protobuf's limit) is ``INVALID_ARGUMENT`` with reason ``MALFORMED_REQUEST``: gRPC would
answer ``UNKNOWN`` and log a traceback per request. A parsed request is then held to its
message's shape: every string field at most ``MAX_STRING_CHARS`` characters (so no error
can repeat a megabyte back, and no later check walks one), and every enum field one of its
enum's values (proto3 keeps unknown numbers, which would read as the default). The rules
come from the message descriptors, so a field added to the protocol is guarded at once.
The domain's own checks (an account id's characters, an amount's range) come after.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from dbank._proto import bank_pb2
from dbank._status import abort_with
from dbank.errors import InvalidArgument

MAX_STRING_CHARS = 256
"""The longest string any request field may hold: four times the longest value any field
means (an account id or request id is at most 64)."""

BANK_SERVICE = bank_pb2.DESCRIPTOR.services_by_name["Bank"].full_name

MAX_ITEMS = 10_000
"""The most items any repeated request field may hold, checked before they are walked:
more than any method takes (a batch takes 8,000 entries, a read 1,000 ids)."""

MAX_REQUEST_BYTES = 4 * 2**20
"""The largest request a customer's call may be, checked before it is parsed: twice the
largest batch that any branch takes (8,000 transfers with every id at its longest are
about 2 MiB). The replication service's messages are bounded by the server's own limit."""

_ENUM_REASONS = {
    "type": "INVALID_ACCOUNT_TYPE",
    "write_concern": "INVALID_WRITE_CONCERN",
}
"""The reason an unknown value of these enum fields gets (else ``INVALID_ARGUMENT``)."""

Deserializer = Callable[[bytes], Any]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]


@dataclass(frozen=True, slots=True)
class Malformed:
    """What the guarded deserializer gives in place of a request it cannot parse (or,
    with ``size``, one too large to parse)."""

    message_type: str
    size: int = 0


class GuardInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Guards every method of every service: unary calls and each message of a stream."""

    def __init__(self) -> None:
        self._handlers: dict[str, grpc.RpcMethodHandler | None] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        if method in self._handlers:
            return self._handlers[method]
        handler = await continuation(handler_call_details)
        limit = MAX_REQUEST_BYTES if method.startswith(f"/{BANK_SERVICE}/") else None
        guarded = None if handler is None else _guarded(handler, limit)
        self._handlers[method] = guarded
        return guarded


def check_request(request: Message) -> None:
    """Raises ``InvalidArgument`` naming the first field of ``request`` (or of a message
    in it) that is too long or holds an unknown enum value."""
    _check(request, _plan(request.DESCRIPTOR), "")


def _guarded(handler: grpc.RpcMethodHandler, limit: int | None) -> grpc.RpcMethodHandler:
    parse = handler.request_deserializer
    if parse is None:
        return handler
    safe = parsing_safely(parse, limit)
    serialize = handler.response_serializer
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            _unary(handler.unary_unary), request_deserializer=safe, response_serializer=serialize
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _unary_stream(handler.unary_stream),
            request_deserializer=safe,
            response_serializer=serialize,
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            _stream_unary(handler.stream_unary),
            request_deserializer=safe,
            response_serializer=serialize,
        )
    return grpc.stream_stream_rpc_method_handler(
        _stream_stream(handler.stream_stream),
        request_deserializer=safe,
        response_serializer=serialize,
    )


def parsing_safely(parse: Deserializer, limit: int | None = None) -> Deserializer:
    """``parse`` (a message type's ``FromString``), giving ``Malformed`` where it would
    raise, or without parsing for more than ``limit`` bytes."""
    name = getattr(getattr(parse, "__self__", None), "DESCRIPTOR", None)
    message_type = name.full_name if name is not None else "request"

    def guarded(data: bytes) -> Any:
        if limit is not None and len(data) > limit:
            return Malformed(message_type, len(data))
        try:
            return parse(data)
        except Exception:  # DecodeError, or RecursionError from a pure-Python protobuf
            return Malformed(message_type)

    return guarded


def _admit(request: Any) -> None:
    """Raises ``InvalidArgument`` unless ``request`` parsed and has its message's shape."""
    if isinstance(request, Malformed) and request.size:
        raise InvalidArgument(
            f"the request is {request.size} bytes; a call takes at most {MAX_REQUEST_BYTES}",
            reason="REQUEST_TOO_LARGE",
            max_bytes=str(MAX_REQUEST_BYTES),
        )
    if isinstance(request, Malformed):
        raise InvalidArgument(
            f"the request is not a well-formed {request.message_type} message",
            reason="MALFORMED_REQUEST",
        )
    if isinstance(request, Message):
        check_request(request)


# A unary call's refusal becomes its status in ``ErrorInterceptor``, like any other. A
# stream's is raised by its request iterator into the servicer, which may end the call
# with it (the replication stream does); if it escapes the servicer, the wrapper does.


def _unary(behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
        _admit(request)
        return await behavior(request, context)

    return guarded


def _unary_stream(behavior: Callable[..., Any]) -> Callable[..., Any]:
    # gRPC runs a streaming handler that is a coroutine function (it writes its replies
    # with ``context.write``) differently from an async generator: keep the kind.
    if inspect.iscoroutinefunction(behavior):

        async def writing(request: Any, context: grpc.aio.ServicerContext) -> None:
            try:
                _admit(request)
            except InvalidArgument as exc:
                await abort_with(context, exc)
            await behavior(request, context)

        return writing

    async def yielding(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            _admit(request)
        except InvalidArgument as exc:
            await abort_with(context, exc)
        async for reply in behavior(request, context):
            yield reply

    return yielding


def _stream_unary(behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def guarded(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
        try:
            return await behavior(_admitted(requests), context)
        except InvalidArgument as exc:
            await abort_with(context, exc)

    return guarded


def _stream_stream(behavior: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(behavior):

        async def writing(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> None:
            try:
                await behavior(_admitted(requests), context)
            except InvalidArgument as exc:
                await abort_with(context, exc)

        return writing

    async def yielding(
        requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        try:
            async for reply in behavior(_admitted(requests), context):
                yield reply
        except InvalidArgument as exc:
            await abort_with(context, exc)

    return yielding


async def _admitted(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        _admit(request)
        yield request


# The shape of each message type, from its descriptor ------------------------------------

_STRING = FieldDescriptor.TYPE_STRING
_ENUM = FieldDescriptor.TYPE_ENUM
_MESSAGE = FieldDescriptor.TYPE_MESSAGE


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    kind: int
    """``_STRING``, ``_ENUM`` or ``_MESSAGE``."""
    repeated: bool
    enum_name: str = ""
    enum_values: frozenset[int] = frozenset()
    inner: tuple[_Rule, ...] = ()


_PLANS: dict[str, tuple[_Rule, ...]] = {}


def _plan(descriptor: Any) -> tuple[_Rule, ...]:
    """The rules of a message type (a ``Descriptor``): its string and enum fields, and its
    message fields that hold some (built once per type)."""
    plan = _PLANS.get(descriptor.full_name)
    if plan is not None:
        return plan
    _PLANS[descriptor.full_name] = ()  # a recursive type: its inner copies add nothing new
    rules = []
    for field in descriptor.fields:
        name, repeated = field.name, field.is_repeated
        if field.type == _STRING:
            rules.append(_Rule(name, _STRING, repeated))
        elif field.type == _ENUM:
            enum = field.enum_type
            values = frozenset(value.number for value in enum.values)
            rules.append(_Rule(name, _ENUM, repeated, enum.name, values))
        elif field.type == _MESSAGE:
            inner = _plan(field.message_type)
            if inner:
                rules.append(_Rule(name, _MESSAGE, repeated, inner=inner))
    plan = tuple(rules)
    _PLANS[descriptor.full_name] = plan
    return plan


def _check(message: Message, plan: tuple[_Rule, ...], prefix: str) -> None:
    for rule in plan:
        name = f"{prefix}{rule.name}"
        if rule.repeated and len(getattr(message, rule.name)) > MAX_ITEMS:
            raise InvalidArgument(
                f"{name} holds {len(getattr(message, rule.name))} items; at most {MAX_ITEMS}"
                " are taken",
                reason="TOO_MANY_ITEMS",
                field=name,
                max_items=str(MAX_ITEMS),
            )
        if rule.kind == _MESSAGE:
            if rule.repeated:
                for item in getattr(message, rule.name):
                    _check(item, rule.inner, f"{name}.")
            elif message.HasField(rule.name):
                _check(getattr(message, rule.name), rule.inner, f"{name}.")
            continue
        value = getattr(message, rule.name)
        for item in value if rule.repeated else (value,):
            if rule.kind == _STRING:
                _check_length(item, name)
            elif item not in rule.enum_values:
                raise InvalidArgument(
                    f"{name} {item} is not a value of {rule.enum_name}",
                    reason=_ENUM_REASONS.get(rule.name, "INVALID_ARGUMENT"),
                    field=name,
                )


def _check_length(value: str, name: str) -> None:
    if len(value) > MAX_STRING_CHARS:
        raise InvalidArgument(
            f"{name} is {len(value)} characters long; at most {MAX_STRING_CHARS} are taken",
            reason="FIELD_TOO_LONG",
            field=name,
            max_length=str(MAX_STRING_CHARS),
        )

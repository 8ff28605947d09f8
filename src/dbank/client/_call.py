"""The one choke point of every RPC: deadline, retries of transient failures, errors.

Every dbank RPC may be retried: reads trivially, writes because they carry a request id
that the branch deduplicates. Only transient failures (``Aborted``, ``Unavailable``,
``DeadlineExceeded``) are retried, with capped exponential backoff, within one overall
deadline.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import grpc

from dbank._status import error_from_rpc
from dbank.errors import DbankError, DeadlineExceeded

Request = TypeVar("Request")
Response = TypeVar("Response")
_Request_contra = TypeVar("_Request_contra", contravariant=True)
_Response_co = TypeVar("_Response_co", covariant=True)
Metadata = tuple[tuple[str, str], ...]


class UnaryCall(Protocol[_Request_contra, _Response_co]):
    """A unary method of a generated async stub: takes one request type, answers one reply
    type (``grpc.aio.UnaryUnaryMultiCallable[Request, Response]``)."""

    def __call__(
        self,
        request: _Request_contra,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> Awaitable[_Response_co]: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How to retry a transient failure."""

    attempts: int = 5
    first_backoff: float = 0.05
    max_backoff: float = 1.0


async def call(
    method: UnaryCall[Request, Response],
    request: Request,
    *,
    within: float,
    retry: RetryPolicy,
    metadata: Metadata = (),
) -> Response:
    """Send ``request`` (with ``metadata``) and return the reply within ``within``
    seconds, retries included; raise the ``DbankError`` a failure stands for."""
    deadline = time.monotonic() + within
    backoff = retry.first_backoff
    for attempt in range(1, retry.attempts + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded(f"no answer within {within} s")
        try:
            return await method(request, timeout=remaining, metadata=metadata or None)
        except grpc.aio.AioRpcError as exc:
            error: DbankError = error_from_rpc(exc)
        if not error.transient or attempt == retry.attempts:
            raise error
        # Backoff between attempts, not a wait for an event: it spreads retries out.
        pause = min(backoff, max(0.0, deadline - time.monotonic()))
        await asyncio.sleep(pause * random.uniform(0.5, 1.0))
        backoff = min(backoff * 2, retry.max_backoff)
    raise AssertionError("unreachable")

"""What the customers' side records: each customer's requests as it sends them.

Every customer of a scenario is a process of its own with its own Lamport clock, although
one runner plays them all through shared clients: the runner says whose request is under
way (``CustomerTrace.request``), and the clients' ``LamportInterceptor`` stamps each call
made meanwhile with that customer's clock, records the send, and takes in the stamp of the
branch's reply. Calls outside a request carry no stamp.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from dbank.tracing._events import Role, Step
from dbank.tracing._files import TraceFile, customers_file
from dbank.tracing._recorder import Recorder
from dbank.tracing._tags import (
    CUSTOMER_REQUEST_KEY,
    Metadata,
    lamport_metadata,
    lamport_of,
    tagged_request_id,
)

__all__ = ["CustomerTrace", "LamportInterceptor"]


@dataclass(frozen=True, slots=True)
class _Request:
    customer: int
    request: int
    interface: str
    branch: int


class CustomerTrace:
    """The clocks of every customer of a run, by customer id, and their events, written
    to the trace directory's customers file. ``close()`` when done.

    Raises:
        OSError: on construction, if the file cannot be created.
    """

    def __init__(self, directory: Path) -> None:
        self._file = TraceFile(customers_file(directory))
        self._recorders: dict[int, Recorder] = {}
        self._current: _Request | None = None

    @contextlib.contextmanager
    def request(self, customer: int, request: int, interface: str, branch: int) -> Iterator[str]:
        """The calls made inside are ``customer``'s ``request`` (a ``interface``) to
        ``branch``; gives the request id a write made for it must carry."""
        self._current = _Request(customer, request, interface, branch)
        try:
            yield tagged_request_id(request)
        finally:
            self._current = None

    def sending(self) -> tuple[tuple[str, str], ...]:
        """The metadata of a call about to be sent: the customer's stamp for the send, which
        is recorded, and the request; nothing outside a request."""
        current = self._current
        if current is None:
            return ()
        recorder = self._recorder(current.customer)
        clock = recorder.clock.tick()
        recorder.record(
            clock, current.request, current.interface, Step.REQUEST_SENT, current.branch
        )
        return (
            *lamport_metadata(clock),
            (CUSTOMER_REQUEST_KEY, f"{current.customer}/{current.request}"),
        )

    def replied(self, metadata: Metadata | None) -> None:
        """The reply to the call under way came (success or error), with ``metadata``."""
        if self._current is None:
            return
        clock = self._recorder(self._current.customer).clock
        stamp = lamport_of(metadata)
        if stamp is None:
            clock.tick()  # a receipt all the same, from a branch that keeps no clock
        else:
            clock.receive(stamp)

    def close(self) -> None:
        self._file.close()

    def _recorder(self, customer: int) -> Recorder:
        recorder = self._recorders.get(customer)
        if recorder is None:
            recorder = Recorder(Role.CUSTOMER, customer, self._file)
            self._recorders[customer] = recorder
        return recorder


Continuation = Callable[[grpc.aio.ClientCallDetails, Any], Any]


class LamportInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """A client channel's interceptor that carries the customers' clocks in metadata."""

    def __init__(self, customers: CustomerTrace) -> None:
        self._customers = customers

    async def intercept_unary_unary(
        self, continuation: Continuation, client_call_details: Any, request: Any
    ) -> Any:
        stamp = self._customers.sending()
        if not stamp:
            return await continuation(client_call_details, request)
        metadata = (*(client_call_details.metadata or ()), *stamp)
        call = await continuation(client_call_details._replace(metadata=metadata), request)
        # The branch sends its stamp as initial metadata, which errors carry too.
        self._customers.replied(await call.initial_metadata())
        return call

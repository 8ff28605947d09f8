"""The branch's side of a customer's Lamport clock: the stamps on Bank requests and replies.

A customer request that carries a stamp and names its customer request (``dbank.tracing``
metadata) is a receive at this branch; the reply, success or error, is a send whose stamp
goes back in the reply's initial metadata (an error status replaces trailing metadata, not
initial). Installed only on a branch that records a trace; requests without a stamp pass
through untouched.
"""

from __future__ import annotations

from typing import Any

import grpc

from dbank._proto import bank_pb2
from dbank.server._interceptors import Handler, UnaryInterceptor
from dbank.tracing import BranchTrace, customer_request_of, lamport_metadata, lamport_of

_BANK_METHODS = f"/{bank_pb2.DESCRIPTOR.services_by_name['Bank'].full_name}/"
_INTERFACES = {"Deposit": "deposit", "Withdraw": "withdraw", "GetBalance": "query"}
"""The scenario's interfaces by RPC; any other RPC is traced under its own name."""


class LamportInterceptor(UnaryInterceptor):
    """Ticks ``trace``'s clock on every stamped Bank request and its reply, and records
    them. Put it after ``ErrorInterceptor``, so that it sees a handler's error before the
    error becomes a status, and stamps that reply too."""

    def __init__(self, trace: BranchTrace) -> None:
        super().__init__()
        self._trace = trace

    def wrap(self, behavior: Handler, method: str) -> Handler | None:
        if not method.startswith(_BANK_METHODS):
            return None
        name = method.removeprefix(_BANK_METHODS)
        interface = _INTERFACES.get(name, name)
        trace = self._trace

        async def stamped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            metadata = context.invocation_metadata()
            stamp, who = lamport_of(metadata), customer_request_of(metadata)
            if stamp is None or who is None:
                return await behavior(request, context)
            trace.request_received(stamp, who, interface)
            request_id = getattr(request, "request_id", "")
            try:
                reply = await behavior(request, context)
            except Exception:
                await _stamp(context, trace.replying(who, interface, request_id))
                raise
            await _stamp(context, trace.replying(who, interface, request_id))
            return reply

        return stamped


async def _stamp(context: grpc.aio.ServicerContext, clock: int) -> None:
    await context.send_initial_metadata(lamport_metadata(clock))

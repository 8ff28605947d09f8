"""Knowing when the branches of a bank are up: their health, watched, never polled.

"Up" means a branch's health service ``dbank.v1.Replication`` is SERVING, i.e. its
replication streams to all of its peers are up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dbank.hosting._errors import RunError
from dbank.server import REPLICATION_SERVICE

START_DEADLINE = 30.0
"""Seconds a branch process gets to start serving."""


async def wait_connected(addresses: Mapping[int, str], *, ca: bytes | None = None) -> None:
    """Return once every branch reports ``dbank.v1.Replication`` SERVING: every stream it
    runs is up (to all of its peers, in a bank of up to 8 branches). Watches each
    branch's health (no polling; over TLS with the bank's CA ``ca``, if given); the
    caller bounds the wait.

    Raises:
        RunError: a branch ended its health watch before that.
    """
    await asyncio.gather(*(_serving(i, address, ca) for i, address in addresses.items()))


def _channel(address: str, ca: bytes | None) -> grpc.aio.Channel:
    if ca is None:
        return grpc.aio.insecure_channel(address)
    return grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=ca))


async def _serving(branch_id: int, address: str, ca: bytes | None) -> None:
    async with _channel(address, ca) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=REPLICATION_SERVICE)
        watch = stub.Watch(request, wait_for_ready=True)
        try:
            async for update in watch:
                if update.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        except grpc.aio.AioRpcError as exc:
            problem = f"{exc.code().name}: {exc.details()}"
            message = f"branch {branch_id} at {address}: health watch failed: {problem}"
            raise RunError(message) from None
        finally:
            watch.cancel()
    raise RunError(f"branch {branch_id} at {address} ended its health watch before SERVING")


def wait_serving(
    address: str, deadline: float = START_DEADLINE, service: str = "", *, ca: bytes | None = None
) -> None:
    """Block until ``address`` reports ``service`` SERVING (watching its health, no polling):
    the synchronous twin of ``wait_connected``, for callers without an event loop. ``ca``:
    the bank's CA certificate, to reach a secure branch over TLS.

    The service "dbank.v1.Replication" is SERVING once the branch's streams to all of its
    peers are up."""
    with (
        grpc.insecure_channel(address)
        if ca is None
        else grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=ca))
    ) as channel:
        grpc.channel_ready_future(channel).result(timeout=deadline)
        stub = health_pb2_grpc.HealthStub(channel)
        updates = stub.Watch(health_pb2.HealthCheckRequest(service=service), timeout=deadline)
        try:
            for update in updates:
                if update.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        finally:
            updates.cancel()
        raise RuntimeError(f"branch at {address}: {service or 'server'} never SERVING")

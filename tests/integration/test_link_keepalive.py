"""A link between two branches stays up for minutes under the real keepalive settings.

Peers ping idle connections every 5 s (``dbank.replication._peer``); a server that took
those pings for abuse closed the connection ("too_many_pings") after about 15 s, and the
link came back on a new connection. Two real branch processes with a proxy on each link
(which counts the TCP connections it carries) keep their link for three minutes: each
proxy carries the one connection it had at the start, neither branch's health leaves
SERVING meanwhile (it would the moment a link dropped), and a write still replicates.

The bank starts when collection ends and the test runs last (``support.kept_link``), so
its three minutes pass while the rest of the suite runs; it watches the branches' health
for what is left of them, and nothing polls.
"""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.kept_link import KeptLink
from support.secure import PKI, BankClient

from dbank.hosting import ProxiedBank
from dbank.server import REPLICATION_SERVICE

LINK_SECONDS = 180.0
"""How long the link must stay up: the issue asks for at least three minutes."""


async def _health_while(address: str, seconds: float) -> list[int]:
    """Every status that branch's ``dbank.v1.Replication`` health reports in ``seconds``
    (the first is its status when asked)."""
    credentials = grpc.ssl_channel_credentials(root_certificates=PKI.ca)
    seen: list[int] = []
    async with grpc.aio.secure_channel(address, credentials) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=REPLICATION_SERVICE))
        try:
            async with asyncio.timeout(seconds):
                async for update in watch:
                    seen.append(update.status)
        except TimeoutError:
            pass
        finally:
            watch.cancel()
    return seen


@pytest.mark.timeout(LINK_SECONDS + 120)
async def test_a_link_between_two_branches_stays_up_for_three_minutes(
    kept_link: KeptLink,
) -> None:
    # The bank has been up since collection ended (support.kept_link): watch its health
    # for whatever is left of the three minutes, at least a few seconds.
    bank = kept_link.bank
    left = max(5.0, kept_link.started + LINK_SECONDS - time.monotonic())
    serving = health_pb2.HealthCheckResponse.SERVING
    seen = await asyncio.gather(*(_health_while(bank.address(i), left) for i in bank.ids))
    assert seen == [[serving], [serving]], "a link dropped:\n" + bank.logs()
    assert time.monotonic() - kept_link.started >= LINK_SECONDS
    # No new connection on either link since the start: the one each had is the one it has.
    assert _connections(bank) == kept_link.connections
    assert all(proxy.active_connections == 1 for proxy in bank.proxies.values())
    async with BankClient(bank.address(1)) as one, BankClient(bank.address(2)) as two:
        await one.create_account(account_id="kept", owner="ann")
        change = await one.deposit(account_id="kept", amount=1_234)
        assert change.unconfirmed_branches == ()  # branch 2 applied it before the reply
        assert (await two.get_balance(account_id="kept")).balance == 1_234
    assert _connections(bank) == kept_link.connections
    logs = bank.logs()
    assert "link to branch 1 lost" not in logs
    assert "link to branch 2 lost" not in logs


def _connections(bank: ProxiedBank) -> dict[tuple[int, int], int]:
    return {link: proxy.connections_accepted for link, proxy in bank.proxies.items()}

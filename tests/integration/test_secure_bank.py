"""Two secure branches (TLS, tokens, mutual TLS between them) attacked from outside: roles,
authentication, and the replication service's identity and clock checks (design §11)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from conftest import unique_id
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from dbank._proto import replication_pb2 as rpb
from dbank._proto import replication_pb2_grpc
from dbank._status import error_from_rpc
from dbank.client import BankClient, Session
from dbank.errors import DbankError, InvalidArgument, PermissionDenied, Unauthenticated
from dbank.hosting import HOST, BranchProcess, free_ports, start_branch, wait_serving
from dbank.ledger import Deposit, Op, OpId, VersionVector
from dbank.ledger.codec import encode_op
from dbank.security import (
    Role,
    init_pki,
    issue_token,
    load_branch_tls,
    load_ca,
    load_token_signing_key,
)
from dbank.server import REPLICATION_SERVICE

HOUR = timedelta(hours=1)


@dataclass
class SecureBank:
    tls_dir: Path
    ca: bytes
    signing_key: bytes
    branches: dict[int, BranchProcess]
    other_bank_dir: Path

    def token(self, subject: str, role: Role, **kwargs: object) -> str:
        ttl = kwargs.get("ttl", HOUR)
        now = kwargs.get("now", datetime.now(UTC))
        key = kwargs.get("key", self.signing_key)
        return issue_token(key, subject=subject, role=role, ttl=ttl, now=now)  # type: ignore[arg-type]

    def client(self, i: int, token: str | None, session: Session | None = None) -> BankClient:
        return BankClient(self.branches[i].address, tls=self.ca, token=token, session=session)


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBank]:
    root = tmp_path_factory.mktemp("secure")
    tls_dir, other = root / "tls", root / "other-bank"
    init_pki(tls_dir, [1, 2])
    init_pki(other, [1, 2])
    ca = load_ca(tls_dir / "ca.crt")
    peer_ports = dict(zip((1, 2), free_ports(2), strict=True))
    branches: dict[int, BranchProcess] = {}
    try:
        for i, other_id in ((1, 2), (2, 1)):
            # Both announcements at once is the case that once hung start_branch.
            branches[i] = start_branch(
                i,
                root / f"data-{i}",
                peers={other_id: f"{HOST}:{peer_ports[other_id]}"},
                tls_dir=tls_dir,
                peer_listen=f"{HOST}:{peer_ports[i]}",
            )
        for process in branches.values():
            wait_serving(process.address, service=REPLICATION_SERVICE, ca=ca)
        yield SecureBank(tls_dir, ca, load_token_signing_key(tls_dir), branches, other)
    finally:
        for process in branches.values():
            if process.process.poll() is None:
                process.stop()


@pytest.fixture
async def teller(bank: SecureBank) -> AsyncIterator[BankClient]:
    async with bank.client(1, bank.token("teller-1", Role.TELLER)) as client:
        yield client


async def _balances(teller: BankClient, *accounts: str) -> dict[str, int]:
    return {a: (await teller.get_balance(account_id=a)).balance for a in accounts}


async def _refused(call: object) -> PermissionDenied:
    with pytest.raises(PermissionDenied) as refused:
        await call  # type: ignore[misc]
    assert refused.value.reason == "PERMISSION_DENIED"
    return refused.value


# Roles ------------------------------------------------------------------------------------


async def test_customers_reach_their_own_accounts_only(
    bank: SecureBank, teller: BankClient
) -> None:
    alice, bob = unique_id("alice"), unique_id("bob")
    mine, theirs, nowhere = unique_id("a"), unique_id("b"), unique_id("none")
    await teller.create_account(account_id=theirs, owner=bob)
    await teller.deposit(account_id=theirs, amount=500)
    async with bank.client(1, bank.token(alice, Role.CUSTOMER), teller.session) as customer:
        await customer.create_account(account_id=mine, owner=alice)
        await customer.deposit(account_id=mine, amount=1000)
        await customer.withdraw(account_id=mine, amount=100)
        assert (await customer.get_balance(account_id=mine)).balance == 900
        # Opening an account in someone else's name is refused too.
        await _refused(customer.create_account(account_id=unique_id("x"), owner=bob))

        before = await _balances(teller, mine, theirs)
        others = [
            await _refused(customer.get_balance(account_id=theirs)),
            await _refused(customer.withdraw(account_id=theirs, amount=1)),
            await _refused(customer.transfer(from_account_id=theirs, to_account_id=mine, amount=1)),
        ]
        unknown = [
            await _refused(customer.get_balance(account_id=nowhere)),
            await _refused(customer.withdraw(account_id=nowhere, amount=1)),
            await _refused(
                customer.transfer(from_account_id=nowhere, to_account_id=mine, amount=1)
            ),
        ]
        # No existence oracle: an unknown account is refused exactly like another's.
        assert [(type(e), e.reason, e.message) for e in others] == [
            (type(e), e.reason, e.message) for e in unknown
        ]
        assert theirs not in " ".join(e.message for e in others)
        assert await _balances(teller, mine, theirs) == before

        await _refused(
            customer.calculate_interest(
                account_id=mine, annual_rate="5", as_of=datetime.now(UTC).date()
            )
        )
        assert await _balances(teller, mine, theirs) == before

        await customer.transfer(from_account_id=mine, to_account_id=theirs, amount=200)
    assert await _balances(teller, mine, theirs) == {mine: 700, theirs: 700}


async def test_tellers_open_for_anyone_and_auditors_only_read(
    bank: SecureBank, teller: BankClient
) -> None:
    account = unique_id("c")
    await teller.create_account(account_id=account, owner=unique_id("carol"))
    await teller.deposit(account_id=account, amount=300)
    async with bank.client(1, bank.token("audit-1", Role.AUDITOR), teller.session) as auditor:
        assert (await auditor.get_balance(account_id=account)).balance == 300
        await _refused(auditor.deposit(account_id=account, amount=1))
        await _refused(auditor.withdraw(account_id=account, amount=1))
        await _refused(auditor.create_account(account_id=unique_id("d"), owner="dave"))
    assert await _balances(teller, account) == {account: 300}


# Authentication ---------------------------------------------------------------------------


async def _unauthenticated(bank: SecureBank, token: str | None) -> Unauthenticated:
    async with bank.client(1, token) as client:
        with pytest.raises(Unauthenticated) as refused:
            await client.get_balance(account_id=unique_id("any"))
    return refused.value


async def test_a_call_without_a_token_is_unauthenticated(bank: SecureBank) -> None:
    assert (await _unauthenticated(bank, None)).reason == "TOKEN_MISSING"


async def test_a_token_of_another_bank_is_refused(bank: SecureBank) -> None:
    foreign = bank.token("mallory", Role.ADMIN, key=load_token_signing_key(bank.other_bank_dir))
    refused = await _unauthenticated(bank, foreign)
    assert refused.reason in {"TOKEN_UNKNOWN_KEY", "TOKEN_BAD_SIGNATURE"}


async def test_an_expired_token_is_refused(bank: SecureBank) -> None:
    stale = bank.token(
        "teller-2", Role.TELLER, ttl=timedelta(seconds=5), now=datetime.now(UTC) - HOUR
    )
    assert (await _unauthenticated(bank, stale)).reason == "TOKEN_EXPIRED"


async def test_a_plaintext_client_reaches_nothing(bank: SecureBank, teller: BankClient) -> None:
    account = unique_id("p")
    await teller.create_account(account_id=account, owner="paul")
    async with BankClient(bank.branches[1].address, timeout=5) as plaintext:
        with pytest.raises(DbankError) as refused:
            await plaintext.deposit(account_id=account, amount=1)
        # Said in one line, not as the gRPC core's dump.
        assert refused.value.reason == "CONNECTION_CLOSED"
        with pytest.raises(DbankError):
            await plaintext.create_account(account_id=unique_id("p"), owner="paul")
    assert await _balances(teller, account) == {account: 0}


async def test_a_branch_of_another_bank_is_not_believed(bank: SecureBank) -> None:
    other_ca = load_ca(bank.other_bank_dir / "ca.crt")
    token = bank.token("teller-1", Role.TELLER)
    async with BankClient(bank.branches[1].address, tls=other_ca, token=token, timeout=5) as c:
        with pytest.raises(DbankError) as refused:
            await c.get_balance(account_id="any")
    assert refused.value.reason == "TLS_CERTIFICATE_REFUSED"
    assert "CA" in refused.value.message


# The replication service ------------------------------------------------------------------


def _peer_channel(bank: SecureBank, i: int, tls_dir: Path, as_branch: int) -> grpc.aio.Channel:
    material = load_branch_tls(tls_dir, as_branch)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=bank.ca,
        private_key=material.key_pem,
        certificate_chain=material.cert_pem,
    )
    address = bank.branches[i].peer_address
    assert address is not None
    return grpc.aio.secure_channel(address, credentials)


async def _fetch_refused(channel: grpc.aio.Channel, request: rpb.FetchOpsRequest) -> DbankError:
    stub = replication_pb2_grpc.ReplicationStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.FetchOps(request, timeout=10)
    return error_from_rpc(failed.value)


async def test_fetch_ops_on_the_customer_port_is_refused(bank: SecureBank) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=bank.ca)
    async with grpc.aio.secure_channel(bank.branches[1].address, credentials) as channel:
        error = await _fetch_refused(channel, rpb.FetchOpsRequest(branch_id=2))
    assert isinstance(error, PermissionDenied)
    assert error.reason in {"NOT_A_BRANCH", "PERMISSION_DENIED"}


async def test_a_branch_may_not_claim_another_branch(bank: SecureBank) -> None:
    async with _peer_channel(bank, 1, bank.tls_dir, as_branch=2) as channel:
        error = await _fetch_refused(channel, rpb.FetchOpsRequest(branch_id=1))
    assert isinstance(error, PermissionDenied)
    assert error.reason == "BRANCH_IDENTITY_MISMATCH"


async def test_a_certificate_of_another_ca_cannot_handshake(bank: SecureBank) -> None:
    async with _peer_channel(bank, 1, bank.other_bank_dir, as_branch=2) as channel:
        stub = replication_pb2_grpc.ReplicationStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await stub.FetchOps(rpb.FetchOpsRequest(branch_id=2), timeout=10)
    assert failed.value.code() is grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("seal_hlc", [253402300799000 << 16, 2**62])
async def test_a_seal_far_in_the_future_is_refused_and_replication_goes_on(
    bank: SecureBank, seal_hlc: int
) -> None:
    async with _peer_channel(bank, 1, bank.tls_dir, as_branch=2) as channel:
        error = await _fetch_refused(channel, rpb.FetchOpsRequest(branch_id=2, seal_hlc=seal_hlc))
        assert error.reason == "CLOCK_AHEAD"
        assert isinstance(error, InvalidArgument)
        # The same caller, honest, is served.
        stub = replication_pb2_grpc.ReplicationStub(channel)
        await stub.FetchOps(rpb.FetchOpsRequest(branch_id=2, limit=1), timeout=10)
    await _replication_works(bank)


async def _replication_works(bank: SecureBank) -> None:
    account, session = unique_id("r"), Session()
    token = bank.token("teller-r", Role.TELLER)
    async with bank.client(1, token, session) as first, bank.client(2, token, session) as second:
        await first.create_account(account_id=account, owner="rita")
        await first.deposit(account_id=account, amount=42)
        assert (await second.get_balance(account_id=account)).balance == 42


async def test_a_stream_may_carry_only_its_own_ops(bank: SecureBank) -> None:
    forged = Op(
        id=OpId(1, 10**6),
        deps=VersionVector({1: 10**6 - 1}),
        hlc=int(datetime.now(UTC).timestamp() * 1000) << 16,
        request_id="",
        currency="USD",
        body=Deposit(unique_id("f"), 10**6),
    )
    requests = [
        rpb.ReplicateRequest(hello=rpb.Hello(branch_id=2, genesis_digest="")),
        rpb.ReplicateRequest(batch=rpb.OpBatch(ops=[encode_op(forged)])),
    ]
    async with _peer_channel(bank, 1, bank.tls_dir, as_branch=2) as channel:
        stub = replication_pb2_grpc.ReplicationStub(channel)
        call = stub.Replicate(iter(requests), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            async for _ in call:
                pass
    error = error_from_rpc(failed.value)
    assert isinstance(error, PermissionDenied)
    assert error.reason == "ORIGIN_MISMATCH"
    await _replication_works(bank)


# Idempotency per caller, health and reflection ---------------------------------------------


async def test_two_callers_equal_request_ids_never_meet(
    bank: SecureBank, teller: BankClient
) -> None:
    alice = unique_id("alice")
    account = unique_id("acct")
    async with bank.client(1, bank.token(alice, Role.CUSTOMER), teller.session) as customer:
        await customer.create_account(account_id=account, owner=alice)
        await customer.deposit(account_id=account, amount=100, request_id="same-id")
        # The same request id from another caller is another request, not a retry.
        await teller.deposit(account_id=account, amount=100, request_id="same-id")
        # A retry by the first caller is still recognised and applied once.
        await customer.deposit(account_id=account, amount=100, request_id="same-id")
        assert (await customer.get_balance(account_id=account)).balance == 200


def _secure_channel(bank: SecureBank, token: str | None = None) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(root_certificates=bank.ca)
    if token is not None:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(token)
        )
    return grpc.aio.secure_channel(bank.branches[1].address, credentials)


async def test_health_needs_no_token_and_reflection_does(bank: SecureBank) -> None:
    ask = reflection_pb2.ServerReflectionRequest(list_services="")
    async with _secure_channel(bank) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        # The refusal comes with the call's headers, before any message: the client's first
        # write may race it and fail on its own, so read the call's outcome, not the write's.
        stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stream.read()
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_from_rpc(refused.value).reason == "TOKEN_MISSING"
    async with _secure_channel(bank, bank.token("auditor-1", Role.AUDITOR)) as channel:
        answer = await _reflect(channel, ask)
        names = {service.name for service in answer.list_services_response.service}
        assert "dbank.v1.Bank" in names


async def _reflect(
    channel: grpc.aio.Channel, ask: reflection_pb2.ServerReflectionRequest
) -> reflection_pb2.ServerReflectionResponse:
    stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo()
    await stream.write(ask)
    answer = await stream.read()
    await stream.done_writing()
    return answer


# What a payment tells a customer about the account it pays into ----------------------------


async def test_paying_a_stranger_tells_nothing_of_the_stranger(
    bank: SecureBank, teller: BankClient
) -> None:
    mallory = unique_id("mallory")
    mine, theirs, euros = unique_id("m"), unique_id("t"), unique_id("e")
    nowhere = unique_id("none")
    await teller.create_account(account_id=theirs, owner="trudy")
    await teller.deposit(account_id=theirs, amount=7_777)
    await teller.create_account(account_id=euros, owner="trudy", currency="EUR")
    async with bank.client(1, bank.token(mallory, Role.CUSTOMER), teller.session) as customer:
        await customer.create_account(account_id=mine, owner=mallory)
        await customer.deposit(account_id=mine, amount=100)
        paid = await customer.transfer(from_account_id=mine, to_account_id=theirs, amount=1)
        assert paid.from_balance == 99
        assert paid.to_balance == 0  # not the stranger's 7,778
        # More than the source holds: the same answer whatever the target.
        for target in (theirs, nowhere, euros):
            with pytest.raises(DbankError) as short:
                await customer.transfer(from_account_id=mine, to_account_id=target, amount=10**9)
            assert short.value.reason == "INSUFFICIENT_FUNDS"
        # An unknown target and one of another currency are refused alike.
        refusals = []
        for target in (nowhere, euros):
            with pytest.raises(PermissionDenied) as refused:
                await customer.transfer(from_account_id=mine, to_account_id=target, amount=1)
            refusals.append((refused.value.reason, refused.value.message, refused.value.metadata))
        assert refusals[0] == refusals[1]
        assert "EUR" not in refusals[1][1]
    assert await _balances(teller, mine, theirs, euros) == {mine: 99, theirs: 7_778, euros: 0}

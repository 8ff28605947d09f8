"""``dbank certs`` and ``dbank token`` as a user runs them, and the certificates they make
serving real gRPC TLS, with what a servicer then learns from ``context.auth_context()``."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
import jwt
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dbank.security import (
    BranchTls,
    Principal,
    Role,
    TokenVerifier,
    branch_id_of_peer,
    load_branch_tls,
)


def dbank(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dbank", *args],
        env={**os.environ, **(env or {})},
        text=True,
        capture_output=True,
        timeout=60,
    )


def _usage_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def _one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    _usage_error(result, *needles)
    assert result.stderr.count("\n") == 1, result.stderr


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("certs") / "tls"
    made = dbank("certs", "init", str(directory), "--branches", "1,2,3", "--host", "bank.test")
    assert made.returncode == 0, made.stderr
    assert made.stdout == f"made the bank's CA, branches 1,2,3 and the token key in {directory}\n"
    return directory


# certs ------------------------------------------------------------------------------------


def test_init_makes_the_directory(tls_dir: Path) -> None:
    names = sorted(p.name for p in tls_dir.iterdir())
    assert names == sorted(
        ["ca.crt", "ca.key", "tokens.key", "tokens.pub"]
        + [f"branch-{n}.{ext}" for n in (1, 2, 3) for ext in ("crt", "key")]
    )
    for path in tls_dir.glob("*.key"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert load_branch_tls(tls_dir, 3).cert_pem == (tls_dir / "branch-3.crt").read_bytes()


def test_init_refuses_to_overwrite(tls_dir: Path) -> None:
    before = (tls_dir / "ca.key").read_bytes()
    again = dbank("certs", "init", str(tls_dir), "--branches", "1")
    _one_line_error(again, "ca.crt exists already")
    assert (tls_dir / "ca.key").read_bytes() == before


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--branches", "1,x"], "is not a list like 1,2,3"),
        (["--branches", "0"], "branch ids are from 1 to"),
        (["--branches", "1,1"], "named twice"),
        ([], "Missing option '--branches'"),
    ],
)
def test_init_bad_flags_exit_2(tmp_path: Path, flags: list[str], needle: str) -> None:
    _usage_error(dbank("certs", "init", str(tmp_path / "tls"), *flags), needle)
    assert not (tmp_path / "tls").exists()


def test_init_bad_host_exits_2(tmp_path: Path) -> None:
    result = dbank("certs", "init", str(tmp_path / "t"), "--branches", "1", "--host", "a_b")
    _one_line_error(result, "host 'a_b' is neither an IP address nor a DNS name")


def test_init_into_a_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    _one_line_error(dbank("certs", "init", str(tmp_path / "file" / "tls"), "--branches", "1"))


def test_add_branch(tmp_path: Path) -> None:
    assert dbank("certs", "init", str(tmp_path), "--branches", "1").returncode == 0
    added = dbank("certs", "add-branch", str(tmp_path), "4", "--host", "10.0.0.4")
    assert (added.returncode, added.stdout) == (0, f"made branch 4 in {tmp_path}\n")
    assert load_branch_tls(tmp_path, 4).ca_pem == (tmp_path / "ca.crt").read_bytes()
    _one_line_error(dbank("certs", "add-branch", str(tmp_path), "4"), "branch-4", "exists")
    _usage_error(dbank("certs", "add-branch", str(tmp_path), "0"), "Invalid value for 'N'")


def test_add_branch_without_a_ca_says_how_to_make_one(tmp_path: Path) -> None:
    result = dbank("certs", "add-branch", str(tmp_path), "2")
    _one_line_error(result, "ca.crt does not exist", "dbank certs init")


def test_rotate_token_key(tmp_path: Path) -> None:
    assert dbank("certs", "init", str(tmp_path), "--branches", "1").returncode == 0
    old = dbank("token", "issue", "--tls-dir", str(tmp_path), "--subject", "a", "--role", "admin")
    rotated = dbank("certs", "rotate-token-key", str(tmp_path))
    assert rotated.returncode == 0, rotated.stderr
    retired = jwt.get_unverified_header(old.stdout.strip())["kid"]
    assert f"the old key {retired} is kept in tokens-{retired}.pub" in rotated.stdout
    assert (tmp_path / f"tokens-{retired}.pub").exists()
    new = dbank("token", "issue", "--tls-dir", str(tmp_path), "--subject", "b", "--role", "admin")
    verifier = TokenVerifier.from_directory(tmp_path)
    assert verifier.verify(old.stdout.strip()).subject == "a"
    assert verifier.verify(new.stdout.strip()).subject == "b"
    assert jwt.get_unverified_header(new.stdout.strip())["kid"] != retired


def test_rotate_without_keys_exits_2(tmp_path: Path) -> None:
    _one_line_error(dbank("certs", "rotate-token-key", str(tmp_path)), "tokens.pub does not exist")


# token ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ttl", "seconds"), [("30m", 1800), ("8h", 28800), ("7d", 604800)])
def test_token_issue_prints_the_token_alone(tls_dir: Path, ttl: str, seconds: int) -> None:
    issued = dbank(
        "token", "issue", "--tls-dir", str(tls_dir), "--subject", "alice", "--role", "customer",
        "--ttl", ttl,
    )  # fmt: skip
    assert issued.returncode == 0, issued.stderr
    assert issued.stderr == ""
    token = issued.stdout.removesuffix("\n")
    assert "\n" not in token
    assert token.count(".") == 2
    verifier = TokenVerifier.from_directory(tls_dir)
    assert verifier.verify(token) == Principal("alice", Role.CUSTOMER)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == seconds


def test_token_issue_default_ttl_and_env(tls_dir: Path) -> None:
    issued = dbank(
        "token", "issue", "--subject", "t1", "--role", "teller", env={"DBANK_TLS_DIR": str(tls_dir)}
    )
    assert issued.returncode == 0, issued.stderr
    claims = jwt.decode(issued.stdout.strip(), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 8 * 3600


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--ttl", "3x"], "is not a duration like 30m, 8h or 7d"),
        (["--ttl", "0h"], "is not a duration"),
        (["--ttl", "-5m"], "is not a duration"),
        (["--ttl", "400d"], "the ttl must be between"),
        (["--role", "root"], "'root' is not one of"),
        (["--subject", "al ice"], "the subject must be"),
    ],
)
def test_token_issue_bad_flags_exit_2(tls_dir: Path, flags: list[str], needle: str) -> None:
    base = {"--subject": "alice", "--role": "customer"}
    base.update(dict(zip(flags[::2], flags[1::2], strict=True)))
    args = [part for pair in base.items() for part in pair]
    _usage_error(dbank("token", "issue", "--tls-dir", str(tls_dir), *args), needle)


def test_token_issue_without_a_key_exits_2(tmp_path: Path) -> None:
    result = dbank(
        "token", "issue", "--tls-dir", str(tmp_path), "--subject", "a", "--role", "admin"
    )
    _one_line_error(result, "tokens.key does not exist", "dbank certs init")


def test_token_issue_needs_a_tls_dir() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DBANK_TLS_DIR"}
    result = subprocess.run(
        [sys.executable, "-m", "dbank", "token", "issue", "--subject", "a", "--role", "admin"],
        env=env, text=True, capture_output=True, timeout=60,
    )  # fmt: skip
    _usage_error(result, "Missing option '--tls-dir'")


# gRPC TLS with these certificates ---------------------------------------------------------


class _Recorder(health_pb2_grpc.HealthServicer):
    """The standard health service, keeping each call's auth context."""

    def __init__(self) -> None:
        self.contexts: list[dict[str, list[bytes]]] = []

    async def Check(  # noqa: N802 - the RPC's name
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        self.contexts.append({k: list(v) for k, v in context.auth_context().items()})
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


@dataclass
class _Server:
    port: int
    recorder: _Recorder


async def _serve(tls: BranchTls | None, *, mutual: bool) -> AsyncIterator[_Server]:
    server = grpc.aio.server()
    recorder = _Recorder()
    health_pb2_grpc.add_HealthServicer_to_server(recorder, server)
    if tls is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        credentials = grpc.ssl_server_credentials(
            [(tls.key_pem, tls.cert_pem)], root_certificates=tls.ca_pem, require_client_auth=mutual
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        yield _Server(port, recorder)
    finally:
        await server.stop(None)


@pytest.fixture
async def mutual_server(tls_dir: Path) -> AsyncIterator[_Server]:
    async for server in _serve(load_branch_tls(tls_dir, 1), mutual=True):
        yield server


@pytest.fixture
async def tls_server(tls_dir: Path) -> AsyncIterator[_Server]:
    async for server in _serve(load_branch_tls(tls_dir, 1), mutual=False):
        yield server


@pytest.fixture
async def plaintext_server() -> AsyncIterator[_Server]:
    async for server in _serve(None, mutual=False):
        yield server


@pytest.fixture(scope="module")
def stranger_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("stranger")
    assert dbank("certs", "init", str(directory), "--branches", "2").returncode == 0
    return directory


async def _check(
    host: str,
    port: int,
    ca_pem: bytes | None,
    client: BranchTls | None = None,
) -> grpc.StatusCode:
    if ca_pem is None:
        channel = grpc.aio.insecure_channel(f"{host}:{port}")
    else:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca_pem,
            private_key=client.key_pem if client else None,
            certificate_chain=client.cert_pem if client else None,
        )
        channel = grpc.aio.secure_channel(f"{host}:{port}", credentials)
    try:
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    finally:
        await channel.close()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_branches_handshake_with_mutual_tls(
    tls_dir: Path, mutual_server: _Server, host: str
) -> None:
    peer = load_branch_tls(tls_dir, 2)
    assert await _check(host, mutual_server.port, peer.ca_pem, peer) == grpc.StatusCode.OK
    seen = mutual_server.recorder.contexts[-1]
    assert seen["transport_security_type"] == [b"ssl"]
    assert seen["x509_pem_cert"] == [peer.cert_pem]
    assert seen["x509_subject_alternative_name"][0] == b"dbank://branch/2"
    assert {b"localhost", b"bank.test", b"127.0.0.1", b"::1"} <= set(
        seen["x509_subject_alternative_name"]
    )
    assert seen["peer_uri"] == [b"dbank://branch/2"]
    assert seen["ssl_tls_version"][0] in (b"TLSv1.2", b"TLSv1.3")
    assert branch_id_of_peer(seen) == 2


async def test_mutual_tls_refuses_a_client_without_a_certificate(
    tls_dir: Path, mutual_server: _Server
) -> None:
    ca = (tls_dir / "ca.crt").read_bytes()
    assert await _check("localhost", mutual_server.port, ca) == grpc.StatusCode.UNAVAILABLE
    assert mutual_server.recorder.contexts == []


async def test_mutual_tls_refuses_a_certificate_of_another_ca(
    tls_dir: Path, stranger_dir: Path, mutual_server: _Server
) -> None:
    stranger = load_branch_tls(stranger_dir, 2)
    ca = (tls_dir / "ca.crt").read_bytes()
    status = await _check("localhost", mutual_server.port, ca, stranger)
    assert status == grpc.StatusCode.UNAVAILABLE
    assert mutual_server.recorder.contexts == []


async def test_a_client_of_another_ca_does_not_trust_the_branch(
    stranger_dir: Path, tls_server: _Server
) -> None:
    ca = (stranger_dir / "ca.crt").read_bytes()
    assert await _check("localhost", tls_server.port, ca) == grpc.StatusCode.UNAVAILABLE


async def test_a_plaintext_client_cannot_talk_to_a_tls_port(tls_server: _Server) -> None:
    assert await _check("127.0.0.1", tls_server.port, None) == grpc.StatusCode.UNAVAILABLE
    assert tls_server.recorder.contexts == []


async def test_without_required_client_auth_grpc_never_asks_for_a_certificate(
    tls_dir: Path, tls_server: _Server
) -> None:
    """gRPC Python has no "request but do not require": a branch's certificate is then not
    even sent, so the replication service needs a port that requires it."""
    peer = load_branch_tls(tls_dir, 2)
    assert await _check("localhost", tls_server.port, peer.ca_pem, peer) == grpc.StatusCode.OK
    seen = tls_server.recorder.contexts[-1]
    assert seen["transport_security_type"] == [b"ssl"]
    assert not {k for k in seen if k.startswith(("x509_", "peer_"))}
    assert branch_id_of_peer(seen) is None


async def test_a_plaintext_call_names_no_peer(plaintext_server: _Server) -> None:
    assert await _check("127.0.0.1", plaintext_server.port, None) == grpc.StatusCode.OK
    assert plaintext_server.recorder.contexts == [
        {"transport_security_type": [b"insecure"], "security_level": [b"TSI_SECURITY_NONE"]}
    ]
    assert branch_id_of_peer(plaintext_server.recorder.contexts[0]) is None

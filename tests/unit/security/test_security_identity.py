"""A branch's identity from its certificate: only an exact ``dbank://branch/N`` URI SAN."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from dbank import ledger
from dbank.security import (
    MAX_BRANCH_ID,
    branch_id_of_certificate,
    branch_id_of_peer,
    branch_uri,
    init_pki,
)

_KEY = ec.generate_private_key(ec.SECP256R1())


def _certificate(*names: x509.GeneralName) -> bytes:
    """A self-signed certificate with ``names`` as its SANs (none: no SAN extension)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dbank://branch/1")])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(_KEY.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
    return builder.sign(_KEY, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _uris(*uris: str) -> bytes:
    return _certificate(*(x509.UniformResourceIdentifier(u) for u in uris))


def test_the_bank_certificates_name_their_branch(tmp_path: Path) -> None:
    init_pki(tmp_path, [1, 42])
    assert branch_id_of_certificate((tmp_path / "branch-1.crt").read_bytes()) == 1
    assert branch_id_of_certificate((tmp_path / "branch-42.crt").read_bytes()) == 42
    assert branch_id_of_certificate((tmp_path / "ca.crt").read_bytes()) is None


@pytest.mark.parametrize(
    "uri",
    [
        "dbank://branch/0",
        "dbank://branch/-1",
        "dbank://branch/+1",
        "dbank://branch/01",
        "dbank://branch/1x",
        "dbank://branch/1/",
        "dbank://branch/1?x=2",
        "dbank://branch/ 1",
        "dbank://branch/",
        "dbank://branch/4294967296",
        "dbank://branch/99999999999",
        "dbank://Branch/1",
        "DBANK://branch/1",
        "dbank://branches/1",
        "dbank://branch/1.0",
    ],
)
def test_a_malformed_branch_uri_names_no_branch(uri: str) -> None:
    assert branch_id_of_certificate(_uris(uri)) is None


def test_a_non_ascii_digit_is_no_branch_id() -> None:
    """int() would read an Arabic-Indic one as 1; a certificate may carry any bytes."""
    # cryptography refuses to build a non-ASCII URI, as a forger's tool would not
    forged = x509.UniformResourceIdentifier._init_without_validation("dbank://branch/\u0661")
    assert branch_id_of_certificate(_certificate(forged)) is None


def test_the_largest_branch_id_is_int32() -> None:
    assert branch_id_of_certificate(_uris(f"dbank://branch/{MAX_BRANCH_ID}")) == MAX_BRANCH_ID
    assert MAX_BRANCH_ID == ledger.MAX_BRANCH_ID == 2**32 - 1  # uint32 on the wire


def test_other_uris_are_ignored_but_two_dbank_uris_are_ambiguous() -> None:
    assert branch_id_of_certificate(_uris("spiffe://bank/x", "dbank://branch/3")) == 3
    assert branch_id_of_certificate(_uris("dbank://branch/3", "dbank://branch/4")) is None
    assert branch_id_of_certificate(_uris("dbank://branch/3", "dbank://branch/3")) is None
    assert branch_id_of_certificate(_uris("dbank://branch/3", "DBANK://x")) is None


def test_only_a_uri_san_is_an_identity() -> None:
    assert branch_id_of_certificate(_certificate()) is None  # no SAN: the CN does not count
    assert branch_id_of_certificate(_certificate(x509.DNSName("dbank://branch/1"))) is None
    assert branch_id_of_certificate(_certificate(x509.RFC822Name("dbank@branch"))) is None


@pytest.mark.parametrize("pem", [b"", b"garbage", b"-----BEGIN CERTIFICATE-----\nAAAA\n"])
def test_garbage_names_no_branch(pem: bytes) -> None:
    assert branch_id_of_certificate(pem) is None


def test_der_is_not_pem() -> None:
    der = x509.load_pem_x509_certificate(_uris("dbank://branch/1")).public_bytes(
        serialization.Encoding.DER
    )
    assert branch_id_of_certificate(der) is None


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=MAX_BRANCH_ID))
def test_every_branch_id_round_trips(branch_id: int) -> None:
    assert branch_id_of_certificate(_uris(branch_uri(branch_id))) == branch_id


@pytest.mark.parametrize("bad", [0, -1, MAX_BRANCH_ID + 1, True])
def test_branch_uri_refuses_ids_out_of_range(bad: int) -> None:
    with pytest.raises(ValueError, match="branch id"):
        branch_uri(bad)


def test_branch_id_of_peer_reads_the_pem_certificate_grpc_gives() -> None:
    pem = _uris("dbank://branch/2")
    context = {
        "transport_security_type": [b"ssl"],
        "x509_pem_cert": [pem],
        "x509_subject_alternative_name": [b"dbank://branch/2", b"localhost"],
    }
    assert branch_id_of_peer(context) == 2


@pytest.mark.parametrize(
    "context",
    [
        {},
        {"transport_security_type": [b"insecure"], "security_level": [b"TSI_SECURITY_NONE"]},
        {"transport_security_type": [b"ssl"], "security_level": [b"TSI_PRIVACY_AND_INTEGRITY"]},
        # the flat SAN list alone is not trusted: it does not say which SAN is a URI
        {"x509_subject_alternative_name": [b"dbank://branch/2"]},
        {"peer_uri": [b"dbank://branch/2"]},
        {"x509_pem_cert": []},
        {"x509_pem_cert": [b"garbage"]},
    ],
    ids=[
        "empty-mapping",
        "plaintext",
        "tls-without-client-cert",
        "sans-only",
        "peer-uri-only",
        "no-pem",
        "junk",
    ],
)
def test_a_peer_without_a_branch_certificate_is_no_branch(
    context: dict[str, list[bytes]],
) -> None:
    assert branch_id_of_peer(context) is None


def test_a_peer_with_two_leaf_certificates_is_no_branch() -> None:
    pems = [_uris("dbank://branch/2"), _uris("dbank://branch/3")]
    assert branch_id_of_peer({"x509_pem_cert": pems}) is None

"""The bank's PKI: the files it makes, their modes, what the certificates say and whom they
verify against, and the refusals to overwrite or use material that does not fit."""

from __future__ import annotations

import ipaddress
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from dbank.security import (
    BRANCH_VALIDITY,
    CA_VALIDITY,
    BranchTls,
    KeyExists,
    TlsMaterialError,
    add_branch,
    init_pki,
    key_id,
    load_branch_tls,
    load_ca,
    load_token_signing_key,
    rotate_token_key,
)

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TLS directory of branches 1 and 2 with two extra hosts, made once for the module."""
    directory = tmp_path_factory.mktemp("pki") / "tls"
    init_pki(directory, [1, 2], ["Bank.Example.com", "10.1.2.3", "fd00::7"])
    return directory


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("other") / "tls"
    init_pki(directory, [1])
    return directory


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _put(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, mode 0600 (as a careful operator copies a key)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def test_init_makes_every_file(pki: Path) -> None:
    assert sorted(p.name for p in pki.iterdir()) == [
        "branch-1.crt",
        "branch-1.key",
        "branch-2.crt",
        "branch-2.key",
        "ca.crt",
        "ca.key",
        "tokens.key",
        "tokens.pub",
    ]


def test_private_keys_are_mode_0600_and_public_files_readable(pki: Path) -> None:
    for path in pki.iterdir():
        if path.suffix == ".key":
            assert _mode(path) == 0o600, path
        else:
            assert _mode(path) & 0o600 == 0o600, path
            assert _mode(path) & 0o022 == 0, path


def test_keys_are_created_0600_never_chmodded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: dict[str, tuple[int, int]] = {}
    real_open = os.open

    def spy_open(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        opened[Path(path).name] = (flags, mode)
        return real_open(path, flags, mode)

    def no_chmod(*args: object, **kwargs: object) -> None:
        raise AssertionError("a key file's mode is set when it is created, not after")

    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os, "chmod", no_chmod)
    monkeypatch.setattr(os, "fchmod", no_chmod)
    init_pki(tmp_path / "tls", [3])
    rotate_token_key(tmp_path / "tls")
    keys = {name: fm for name, fm in opened.items() if name.endswith((".key", ".key.new"))}
    assert {"ca.key", "branch-3.key", "tokens.key", ".tokens.key.new"} <= set(keys)
    for name, (flags, mode) in keys.items():
        assert mode == 0o600, name
        assert flags & os.O_EXCL, name
        assert flags & os.O_CREAT, name


def test_ca_certificate(pki: Path) -> None:
    ca = _cert(pki / "ca.crt")
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert (constraints.value.ca, constraints.value.path_length) == (True, 0)
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert not usage.digital_signature
    assert ca.not_valid_after_utc - ca.not_valid_before_utc >= CA_VALIDITY
    assert timedelta(days=3650) == CA_VALIDITY
    ca.verify_directly_issued_by(ca)
    key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None)
    assert key.public_key() == ca.public_key()


def test_branch_certificate_names_and_usages(pki: Path) -> None:
    cert = _cert(pki / "branch-1.crt")
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == ["dbank://branch/1"]
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "bank.example.com"]
    assert sans.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("10.1.2.3"),
        ipaddress.ip_address("fd00::7"),
    ]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert cert.not_valid_after_utc - cert.not_valid_before_utc >= BRANCH_VALIDITY
    assert timedelta(days=730) == BRANCH_VALIDITY
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert isinstance(key.curve, ec.SECP256R1)


def test_branch_certificate_verifies_against_its_ca_only(pki: Path, other_pki: Path) -> None:
    cert = _cert(pki / "branch-1.crt")
    cert.verify_directly_issued_by(_cert(pki / "ca.crt"))
    with pytest.raises(InvalidSignature):
        cert.verify_directly_issued_by(_cert(other_pki / "ca.crt"))


@pytest.mark.parametrize(
    "name",
    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    ids=["localhost", "127.0.0.1"],
)
def test_a_path_validator_accepts_the_branch_as_server_and_client(
    pki: Path, other_pki: Path, name: x509.DNSName | x509.IPAddress
) -> None:
    """cryptography's RFC 5280 validator, as a TLS client and server would use it."""
    leaf = _cert(pki / "branch-2.crt")
    builder = PolicyBuilder().time(datetime.now(UTC))
    own = builder.store(Store([_cert(pki / "ca.crt")]))
    own.build_server_verifier(name).verify(leaf, [])
    own.build_client_verifier().verify(leaf, [])
    other = builder.store(Store([_cert(other_pki / "ca.crt")]))
    with pytest.raises(VerificationError):
        other.build_server_verifier(name).verify(leaf, [])
    with pytest.raises(VerificationError):
        other.build_client_verifier().verify(leaf, [])


def test_token_pair_is_ed25519_pem(pki: Path) -> None:
    private = serialization.load_pem_private_key((pki / "tokens.key").read_bytes(), None)
    public = serialization.load_pem_public_key((pki / "tokens.pub").read_bytes())
    assert isinstance(private, Ed25519PrivateKey)
    assert isinstance(public, Ed25519PublicKey)
    assert private.public_key() == public
    assert (pki / "tokens.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert (pki / "tokens.pub").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert load_token_signing_key(pki) == (pki / "tokens.key").read_bytes()


def test_host_names_are_deduplicated_and_checked(tmp_path: Path) -> None:
    init_pki(tmp_path, [1], ["LOCALHOST", "127.0.0.1", "a.example.", "a.example"])
    sans = _cert(tmp_path / "branch-1.crt").extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert sans.value.get_values_for_type(x509.DNSName) == ["localhost", "a.example"]
    assert len(sans.value.get_values_for_type(x509.IPAddress)) == 2


@pytest.mark.parametrize("host", ["bad_host", "-a.example", "a..b", "", "*.example", "a b"])
def test_a_bad_host_is_refused_before_anything_is_written(tmp_path: Path, host: str) -> None:
    with pytest.raises(ValueError, match=r"neither an IP address nor a DNS name"):
        init_pki(tmp_path / "tls", [1], [host])
    assert not (tmp_path / "tls").exists()


@pytest.mark.parametrize("branches", [[0], [-1], [2**32], [1, 1], [True]])
def test_bad_branch_ids_are_refused(tmp_path: Path, branches: list[int]) -> None:
    with pytest.raises(ValueError, match=r"branch"):
        init_pki(tmp_path / "tls", branches)
    assert not (tmp_path / "tls").exists()


def test_init_never_overwrites(pki: Path) -> None:
    before = {p.name: p.read_bytes() for p in pki.iterdir()}
    with pytest.raises(KeyExists, match=r"ca\.crt exists already"):
        init_pki(pki, [7])
    assert {p.name: p.read_bytes() for p in pki.iterdir()} == before


def test_init_refuses_a_lone_existing_key_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "branch-2.key").write_bytes(b"precious")
    with pytest.raises(KeyExists, match=r"branch-2\.key"):
        init_pki(tmp_path, [1, 2])
    assert [p.name for p in tmp_path.iterdir()] == ["branch-2.key"]
    assert (tmp_path / "branch-2.key").read_bytes() == b"precious"


def test_add_branch_signs_with_the_same_ca(tmp_path: Path) -> None:
    init_pki(tmp_path, [1])
    add_branch(tmp_path, 5, ["branch5.example"])
    cert = _cert(tmp_path / "branch-5.crt")
    cert.verify_directly_issued_by(_cert(tmp_path / "ca.crt"))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "branch5.example"]
    assert _mode(tmp_path / "branch-5.key") == 0o600
    tls = load_branch_tls(tmp_path, 5)
    assert tls == BranchTls(
        ca_pem=(tmp_path / "ca.crt").read_bytes(),
        cert_pem=(tmp_path / "branch-5.crt").read_bytes(),
        key_pem=(tmp_path / "branch-5.key").read_bytes(),
    )


def test_add_branch_refuses_an_existing_branch(pki: Path) -> None:
    before = (pki / "branch-1.key").read_bytes()
    with pytest.raises(KeyExists, match=r"branch-1"):
        add_branch(pki, 1)
    assert (pki / "branch-1.key").read_bytes() == before


def test_add_branch_without_a_ca_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(TlsMaterialError, match=r"ca\.crt does not exist.*dbank certs init"):
        add_branch(tmp_path, 1)


def test_add_branch_refuses_a_ca_key_of_another_ca(tmp_path: Path, other_pki: Path) -> None:
    init_pki(tmp_path, [1])
    _put(tmp_path / "ca.key", (other_pki / "ca.key").read_bytes())
    with pytest.raises(TlsMaterialError, match=r"is not the key of"):
        add_branch(tmp_path, 2)


def test_branch_validity_never_passes_the_ca(tmp_path: Path) -> None:
    init_pki(tmp_path, [1], now=NOW)
    ca = _cert(tmp_path / "ca.crt")
    late = ca.not_valid_after_utc - timedelta(days=100)
    add_branch(tmp_path, 2, now=late)
    assert _cert(tmp_path / "branch-2.crt").not_valid_after_utc == ca.not_valid_after_utc


def test_load_branch_tls_reads_the_three_files(pki: Path) -> None:
    tls = load_branch_tls(pki, 2)
    assert tls.ca_pem == (pki / "ca.crt").read_bytes()
    assert tls.cert_pem == (pki / "branch-2.crt").read_bytes()
    assert tls.key_pem == (pki / "branch-2.key").read_bytes()
    with pytest.raises(AttributeError):
        tls.ca_pem = b""  # type: ignore[misc]


def test_missing_branch_material_names_the_file_and_the_command(pki: Path, tmp_path: Path) -> None:
    with pytest.raises(TlsMaterialError) as missing:
        load_branch_tls(pki, 9)
    message = str(missing.value)
    assert "branch-9.crt does not exist" in message
    assert f"dbank certs add-branch {pki} 9" in message
    assert "\n" not in message
    with pytest.raises(TlsMaterialError, match=r"ca\.crt does not exist.*dbank certs init"):
        load_branch_tls(tmp_path / "nothing", 1)


def test_unreadable_material_is_one_clear_error(tmp_path: Path) -> None:
    init_pki(tmp_path, [1])
    (tmp_path / "branch-1.key").unlink()
    (tmp_path / "branch-1.key").mkdir()
    with pytest.raises(TlsMaterialError, match=r"cannot read .*branch-1\.key"):
        load_branch_tls(tmp_path, 1)


def test_material_that_does_not_fit_is_refused(tmp_path: Path, other_pki: Path) -> None:
    init_pki(tmp_path, [1, 2])
    swapped = tmp_path / "swapped"
    init_pki(swapped, [])
    for name in ("branch-1.crt", "branch-1.key"):
        _put(swapped / name, (tmp_path / name.replace("1", "2")).read_bytes())
    with pytest.raises(TlsMaterialError, match=r"does not name branch 1"):
        load_branch_tls(swapped, 1)
    _put(tmp_path / "branch-1.key", (tmp_path / "branch-2.key").read_bytes())
    with pytest.raises(TlsMaterialError, match=r"is not the key of"):
        load_branch_tls(tmp_path, 1)
    (tmp_path / "ca.crt").write_bytes((other_pki / "ca.crt").read_bytes())
    with pytest.raises(TlsMaterialError, match=r"not signed by the bank's CA"):
        load_branch_tls(tmp_path, 2)
    (tmp_path / "branch-2.crt").write_bytes(b"not a certificate")
    with pytest.raises(TlsMaterialError, match=r"is not a PEM certificate"):
        load_branch_tls(tmp_path, 2)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_a_key_open_to_other_users_is_refused(tmp_path: Path, mode: int) -> None:
    init_pki(tmp_path, [1])
    for name in ("branch-1.key", "ca.key", "tokens.key"):
        (tmp_path / name).chmod(mode)
    with pytest.raises(
        TlsMaterialError, match=rf"branch-1\.key is open to other users \(mode 0{mode:o}\)"
    ):
        load_branch_tls(tmp_path, 1)
    with pytest.raises(TlsMaterialError, match=r"ca\.key is open to other users"):
        add_branch(tmp_path, 2)
    with pytest.raises(TlsMaterialError, match=r"tokens\.key is open to other users"):
        load_token_signing_key(tmp_path)
    with pytest.raises(TlsMaterialError, match=r"tokens\.key is open to other users"):
        rotate_token_key(tmp_path)


def test_an_expired_branch_certificate_is_refused(tmp_path: Path) -> None:
    init_pki(tmp_path, [1], now=datetime.now(UTC) - BRANCH_VALIDITY - timedelta(days=1))
    with pytest.raises(TlsMaterialError, match=r"branch-1\.crt is valid from .* not now"):
        load_branch_tls(tmp_path, 1)


def test_load_ca(pki: Path, tmp_path: Path) -> None:
    assert load_ca(pki / "ca.crt") == (pki / "ca.crt").read_bytes()
    with pytest.raises(TlsMaterialError, match=r"does not exist.*dbank certs init"):
        load_ca(tmp_path / "ca.crt")
    (tmp_path / "junk.crt").write_bytes(b"junk")
    with pytest.raises(TlsMaterialError, match=r"holds no PEM certificate"):
        load_ca(tmp_path / "junk.crt")


def test_rotation_keeps_the_old_public_key(tmp_path: Path) -> None:
    init_pki(tmp_path, [1])
    old_public = (tmp_path / "tokens.pub").read_bytes()
    old_private = (tmp_path / "tokens.key").read_bytes()
    retired, new = rotate_token_key(tmp_path)
    assert retired == key_id(_public(old_public))
    assert (tmp_path / f"tokens-{retired}.pub").read_bytes() == old_public
    assert new == key_id(_public((tmp_path / "tokens.pub").read_bytes()))
    assert new != retired
    assert (tmp_path / "tokens.key").read_bytes() != old_private
    assert _mode(tmp_path / "tokens.key") == 0o600
    again, newest = rotate_token_key(tmp_path)
    assert again == new
    assert {p.name for p in tmp_path.glob("tokens-*.pub")} == {
        f"tokens-{retired}.pub",
        f"tokens-{new}.pub",
    }
    assert not list(tmp_path.glob(".*.new"))
    assert newest not in (retired, new)


def test_rotation_needs_a_token_pair(tmp_path: Path) -> None:
    with pytest.raises(TlsMaterialError, match=r"tokens\.pub does not exist.*dbank certs init"):
        rotate_token_key(tmp_path)
    with pytest.raises(TlsMaterialError, match=r"tokens\.key does not exist"):
        load_token_signing_key(tmp_path)


def _public(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    assert isinstance(key, Ed25519PublicKey)
    return key

"""The bank's own PKI, made with ``cryptography`` (design §11), as CockroachDB's ``cert``
commands make a cluster's.

A TLS directory holds::

    ca.crt, ca.key              the bank's CA (ECDSA P-256, CA=true, path length 0)
    branch-N.crt, branch-N.key  branch N: ECDSA P-256, URI SAN dbank://branch/N, DNS SANs
                                localhost and each host name, IP SANs 127.0.0.1, ::1 and
                                each host address; serverAuth and clientAuth, since
                                branches dial each other with mutual TLS
    tokens.key, tokens.pub      the Ed25519 pair that signs and verifies callers' tokens
    tokens-<kid>.pub            retired token keys, still verified after a rotation

Private keys (``*.key``) are created with mode 0600; nothing is ever overwritten but the
token pair by ``rotate_token_key``. ECDSA P-256 is what gRPC's BoringSSL handles for TLS
keys, and the key every TLS 1.2 and 1.3 client accepts.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dbank.security._files import (
    CA_CERT,
    CA_KEY,
    TOKEN_KEY,
    TOKEN_PUBLIC_KEY,
    PkiError,
    TlsMaterialError,
    branch_cert,
    branch_key,
    read_file,
    read_private,
    refuse_existing,
    replace,
    retired_token_key,
    write_new,
)
from dbank.security._identity import branch_id_of_certificate, branch_uri, check_branch_id
from dbank.security._tokens import key_id, load_private_key, load_public_key

CA_VALIDITY = timedelta(days=3650)
BRANCH_VALIDITY = timedelta(days=730)
_BACKDATE = timedelta(minutes=5)  # a certificate is valid at once on a slightly slow clock
_ORGANIZATION = "dbank"

_IpAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
_LOOPBACK_NAMES = ("localhost",)
_LOOPBACK_ADDRESSES: tuple[_IpAddress, ...] = (
    ipaddress.ip_address("127.0.0.1"),
    ipaddress.ip_address("::1"),
)
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


@dataclass(frozen=True, slots=True)
class BranchTls:
    """What a branch needs to serve TLS and dial its peers with mutual TLS: the bank's CA
    certificate, its own certificate and its private key, each PEM."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def init_pki(
    directory: Path | str,
    branches: Sequence[int],
    hosts: Sequence[str] = (),
    *,
    now: datetime | None = None,
) -> None:
    """Make a bank's TLS directory: its CA, a certificate for each of ``branches`` with
    SANs for loopback and each of ``hosts``, and the token signing pair.

    The directory is created (mode 0700) if missing. Nothing is written if any file to make
    exists already.

    Raises:
        KeyExists: a file to make exists.
        ValueError: a branch id out of range or repeated, or a host that is neither an IP
            address nor a DNS name.
        TlsMaterialError: the directory cannot be made or written.
    """
    directory = Path(directory)
    ids = _distinct_branch_ids(branches)
    names, addresses = _subject_alt_names(hosts)
    moment = now or datetime.now(UTC)
    targets = [CA_CERT, CA_KEY, TOKEN_KEY, TOKEN_PUBLIC_KEY]
    targets += [f(n) for n in ids for f in (branch_cert, branch_key)]
    with _writing(directory):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        refuse_existing([directory / name for name in targets])
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _ca_certificate(ca_key, moment)
        write_new(directory / CA_KEY, _private_pem(ca_key), private=True)
        write_new(directory / CA_CERT, ca.public_bytes(serialization.Encoding.PEM), private=False)
        _write_token_pair(directory, Ed25519PrivateKey.generate(), fresh=True)
        for n in ids:
            _write_branch(directory, n, ca_key, ca, names, addresses, moment)


def add_branch(
    directory: Path | str,
    n: int,
    hosts: Sequence[str] = (),
    *,
    now: datetime | None = None,
) -> None:
    """Make the certificate and key of branch ``n``, signed by the directory's CA.

    Raises:
        KeyExists: ``branch-N.crt`` or ``branch-N.key`` exists.
        TlsMaterialError: the CA is missing, unreadable, expired, or its key does not match
            its certificate.
        ValueError: ``n`` out of range, or a host that is neither an address nor a name.
    """
    directory = Path(directory)
    check_branch_id(n)
    names, addresses = _subject_alt_names(hosts)
    moment = now or datetime.now(UTC)
    ca_key, ca = _load_ca_pair(directory, moment)
    with _writing(directory):
        refuse_existing([directory / branch_cert(n), directory / branch_key(n)])
        _write_branch(directory, n, ca_key, ca, names, addresses, moment)


def rotate_token_key(directory: Path | str) -> tuple[str, str]:
    """Retire the token signing key for a new one; return (retired kid, new kid).

    The current public key is kept as ``tokens-<kid>.pub``, so that branches given the
    directory's ``tokens.pub`` and ``tokens-*.pub`` accept tokens of both keys. The public
    key is replaced before the private one, so a crash in between leaves every token that
    can be issued verifiable.

    Raises:
        TlsMaterialError: the token pair is missing or not an Ed25519 pair.
    """
    directory = Path(directory)
    how = f"make it with `dbank certs init {directory} --branches N`"
    public_path, private_path = directory / TOKEN_PUBLIC_KEY, directory / TOKEN_KEY
    public_pem = read_file(public_path, how_to_make=how)
    retired = key_id(load_public_key(public_pem, source=str(public_path)))
    load_private_key(read_private(private_path, how_to_make=how), source=str(private_path))
    with _writing(directory):
        archive = directory / retired_token_key(retired)
        if not archive.exists():
            write_new(archive, public_pem, private=False)
        new_key = Ed25519PrivateKey.generate()
        _write_token_pair(directory, new_key, fresh=False)
    return retired, key_id(new_key.public_key())


def load_branch_tls(directory: Path | str, n: int) -> BranchTls:
    """Read branch ``n``'s TLS material from ``directory`` and check it fits together.

    Raises:
        TlsMaterialError: a file is missing or unreadable (the message names it and the
            command that makes it), the certificate names another branch, is not signed
            by the CA, is expired, or does not match the key.
    """
    directory = Path(directory)
    init = f"make it with `dbank certs init {directory} --branches {n}`"
    add = f"make it with `dbank certs add-branch {directory} {n}`"
    ca_pem = read_file(directory / CA_CERT, how_to_make=init)
    cert_path, key_path = directory / branch_cert(n), directory / branch_key(n)
    cert_pem = read_file(cert_path, how_to_make=add)
    key_pem = read_private(key_path, how_to_make=add)
    ca = _parse_certificate(ca_pem, directory / CA_CERT)
    certificate = _parse_certificate(cert_pem, cert_path)
    key = _parse_private_key(key_pem, key_path)
    if branch_id_of_certificate(cert_pem) != n:
        raise TlsMaterialError(f"{cert_path} does not name branch {n} (dbank://branch/{n})")
    _check_issued_by(certificate, ca, cert_path)
    _check_current(certificate, cert_path, datetime.now(UTC))
    if key.public_key() != certificate.public_key():
        raise TlsMaterialError(f"{key_path} is not the key of {cert_path}")
    return BranchTls(ca_pem=ca_pem, cert_pem=cert_pem, key_pem=key_pem)


def load_ca(path: Path | str) -> bytes:
    """Read the PEM CA certificate(s) a client trusts.

    Raises:
        TlsMaterialError: the file is missing, unreadable, or holds no PEM certificate.
    """
    path = Path(path)
    pem = read_file(path, how_to_make="make the bank's CA with `dbank certs init DIR`")
    try:
        x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise TlsMaterialError(f"{path} holds no PEM certificate") from None
    return pem


def load_token_signing_key(directory: Path | str) -> bytes:
    """Read the PEM Ed25519 private key that signs tokens (``tokens.key``).

    Raises:
        TlsMaterialError: it is missing, unreadable, or not an Ed25519 private key.
    """
    directory = Path(directory)
    path = directory / TOKEN_KEY
    pem = read_private(
        path, how_to_make=f"make it with `dbank certs init {directory} --branches N`"
    )
    load_private_key(pem, source=str(path))
    return pem


# Building ---------------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not signs_certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _ca_certificate(key: ec.EllipticCurvePrivateKey, now: datetime) -> x509.Certificate:
    name = _name("dbank CA")
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _branch_certificate(
    n: int,
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate,
    names: Sequence[str],
    addresses: Sequence[_IpAddress],
    now: datetime,
) -> x509.Certificate:
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(branch_uri(n))]
    sans += [x509.DNSName(name) for name in names]
    sans += [x509.IPAddress(address) for address in addresses]
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    ca_key_id = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(_name(f"dbank branch {n}"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        # never past the CA: a chain is only as valid as its root
        .not_valid_after(min(now + BRANCH_VALIDITY, ca.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _write_branch(
    directory: Path,
    n: int,
    ca_key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate,
    names: Sequence[str],
    addresses: Sequence[_IpAddress],
    now: datetime,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _branch_certificate(n, key, ca_key, ca, names, addresses, now)
    write_new(directory / branch_key(n), _private_pem(key), private=True)
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    write_new(directory / branch_cert(n), pem, private=False)


def _write_token_pair(directory: Path, key: Ed25519PrivateKey, *, fresh: bool) -> None:
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write = write_new if fresh else replace
    write(directory / TOKEN_PUBLIC_KEY, public_pem, private=False)
    write(directory / TOKEN_KEY, _private_pem(key), private=True)


def _private_pem(key: ec.EllipticCurvePrivateKey | Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@contextlib.contextmanager
def _writing(directory: Path) -> Iterator[None]:
    """Turn a failure to write the directory into one TlsMaterialError line."""
    try:
        yield
    except PkiError:
        raise
    except OSError as exc:
        where = exc.filename or directory
        raise TlsMaterialError(f"cannot write {where}: {exc.strerror or exc}") from None


# Checking ---------------------------------------------------------------------------------


def _distinct_branch_ids(branches: Sequence[int]) -> list[int]:
    ids = [check_branch_id(n) for n in branches]
    repeated = sorted({n for n in ids if ids.count(n) > 1})
    if repeated:
        raise ValueError(f"branch {repeated[0]} is named twice")
    return ids


def _subject_alt_names(hosts: Sequence[str]) -> tuple[list[str], list[_IpAddress]]:
    """The DNS names and IP addresses of a branch certificate: loopback, then ``hosts``."""
    names, addresses = list(_LOOPBACK_NAMES), list(_LOOPBACK_ADDRESSES)
    for host in hosts:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            name = _check_host_name(host)
            if name not in names:
                names.append(name)
        else:
            if address not in addresses:
                addresses.append(address)
    return names, addresses


def _check_host_name(host: str) -> str:
    name = host.lower().removesuffix(".")
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"host {host!r} is neither an IP address nor a DNS name")
    return name


def _load_ca_pair(
    directory: Path, now: datetime
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    how = f"make the CA with `dbank certs init {directory} --branches N`"
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    ca = _parse_certificate(read_file(cert_path, how_to_make=how), cert_path)
    key = _parse_private_key(read_private(key_path, how_to_make=how), key_path)
    if key.public_key() != ca.public_key():
        raise TlsMaterialError(f"{key_path} is not the key of {cert_path}")
    _check_current(ca, cert_path, now)
    return key, ca


def _parse_certificate(pem: bytes, path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise TlsMaterialError(f"{path} is not a PEM certificate") from None


def _parse_private_key(pem: bytes, path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise TlsMaterialError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TlsMaterialError(f"{path} is not an ECDSA private key")
    return key


def _check_issued_by(certificate: x509.Certificate, ca: x509.Certificate, path: Path) -> None:
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise TlsMaterialError(f"{path} is not signed by the bank's CA in ca.crt") from None


def _check_current(certificate: x509.Certificate, path: Path, now: datetime) -> None:
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise TlsMaterialError(
            f"{path} is valid from {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} to"
            f" {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, not now"
        )

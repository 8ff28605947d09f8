"""Callers' tokens: JWTs signed with the bank's Ed25519 key, verified offline (design §11).

A token is ``{"alg": "EdDSA", "kid": ...}.{"sub", "role", "iat", "exp"}``, made and checked by
PyJWT. Verification accepts EdDSA only (``algorithms=["EdDSA"]``), so a token that says
``alg: none`` or ``HS256`` (an HMAC "signed" with the public key) is refused, and it picks
the key by ``kid`` from a verification set, so the signing key can be rotated while tokens
of the old key stay valid. Every refusal is ``Unauthenticated`` with one reason per case,
and no message repeats the token.

The time claims are checked here against one ``now`` (PyJWT reads the wall clock itself),
so that callers and tests decide the clock.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dbank.errors import Unauthenticated
from dbank.security._files import (
    RETIRED_TOKEN_KEYS,
    TOKEN_PUBLIC_KEY,
    TlsMaterialError,
    read_file,
)
from dbank.security._policy import Principal, Role

ALGORITHM = "EdDSA"
TOKEN_LEEWAY = timedelta(seconds=30)
"""How far the clocks of the issuer and of a branch may differ, either way."""
MAX_TOKEN_TTL = timedelta(days=366)
"""Tokens cannot be revoked one by one, so none lives longer than this."""
MAX_TOKEN_LENGTH = 4096
"""Longer strings are refused before any parsing; dbank's tokens are about 300 bytes."""

# The owner form of the ledger (account owners are subjects of customer tokens).
_SUBJECT = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_KID_HEX_DIGITS = 16
_ROLES = frozenset(role.value for role in Role)


def key_id(public_key: Ed25519PublicKey) -> str:
    """The ``kid`` of ``public_key``: the first 16 hex digits of SHA-256 of its 32 raw
    bytes. Stable: the same key always has the same id."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:_KID_HEX_DIGITS]


def load_public_key(pem: bytes, *, source: str) -> Ed25519PublicKey:
    """Parse a PEM SubjectPublicKeyInfo Ed25519 key; TlsMaterialError names ``source``."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise TlsMaterialError(f"{source} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise TlsMaterialError(f"{source} is not an Ed25519 public key")
    return key


def load_private_key(pem: bytes, *, source: str) -> Ed25519PrivateKey:
    """Parse a PEM PKCS8 Ed25519 private key; TlsMaterialError names ``source``."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise TlsMaterialError(f"{source} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise TlsMaterialError(f"{source} is not an Ed25519 private key")
    return key


def check_subject(subject: str) -> str:
    """Return ``subject`` if it is 1-64 characters of ``[A-Za-z0-9_.:-]`` (an owner)."""
    if not _SUBJECT.fullmatch(subject):
        raise ValueError(f"the subject must be 1-64 characters of [A-Za-z0-9_.:-], got {subject!r}")
    return subject


def issue_token(
    private_key_pem: bytes,
    *,
    subject: str,
    role: Role | str,
    ttl: timedelta,
    now: datetime,
) -> str:
    """Return a token for ``subject`` in ``role``, valid from ``now`` for ``ttl``.

    Raises:
        ValueError: a subject that is not an owner id, an unknown role, a ttl that is not
            between one second and MAX_TOKEN_TTL, or a naive ``now``.
        TlsMaterialError: ``private_key_pem`` is not an Ed25519 private key.
    """
    key = load_private_key(private_key_pem, source="the token signing key")
    check_subject(subject)
    role = Role(role)
    if not timedelta(seconds=1) <= ttl <= MAX_TOKEN_TTL:
        raise ValueError(f"the ttl must be between 1 second and {MAX_TOKEN_TTL.days} days")
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    issued = int(now.timestamp())
    claims = {
        "sub": subject,
        "role": role.value,
        "iat": issued,
        "exp": issued + int(ttl.total_seconds()),
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": key_id(key.public_key())})


def _refuse(reason: str, message: str) -> NoReturn:
    raise Unauthenticated(message, reason=reason)


MAX_REMEMBERED = 10_000
"""Tokens a verifier remembers as proven: about 3 MB of tokens as `dbank token` issues
them (~250 bytes), 40 MB if every one were of the longest length accepted."""


@dataclass(frozen=True, slots=True)
class _Proven:
    """A token whose signature and claims checked out: who it names, and when it is valid."""

    principal: Principal
    valid_from: int
    expires: int


class TokenVerifier:
    """Checks callers' tokens against a verification set of Ed25519 public keys.

    Its key set is fixed at construction; it is safe to share between tasks. Needs no
    network: a branch verifies while it is cut off from every other.

    A token whose signature and claims checked out once is remembered (up to
    ``MAX_REMEMBERED`` tokens): its signature cannot stop matching a key of this fixed set,
    so later calls with it only check its times again. Verifying the signature costs about
    130 us per call, the largest part of a secure branch's extra work per request.
    """

    def __init__(self, public_keys: Iterable[Ed25519PublicKey]) -> None:
        self._keys: Mapping[str, Ed25519PublicKey] = {key_id(k): k for k in public_keys}
        if not self._keys:
            raise ValueError("a token verifier needs at least one public key")
        self._proven: dict[str, _Proven] = {}

    @classmethod
    def from_directory(cls, directory: Path | str) -> TokenVerifier:
        """The verifier of a TLS directory: ``tokens.pub`` and every retired key kept by
        ``rotate_token_key`` (``tokens-<kid>.pub``).

        Raises:
            TlsMaterialError: ``tokens.pub`` is missing, or a key file is unreadable or
                not an Ed25519 public key.
        """
        directory = Path(directory)
        current = directory / TOKEN_PUBLIC_KEY
        how = f"make it with `dbank certs init {directory} --branches N`"
        paths = [current, *sorted(directory.glob(RETIRED_TOKEN_KEYS))]
        return cls(
            load_public_key(read_file(path, how_to_make=how), source=str(path)) for path in paths
        )

    @property
    def key_ids(self) -> frozenset[str]:
        """The ``kid`` of every key this verifier accepts."""
        return frozenset(self._keys)

    def verify(self, token: str | None, now: datetime | None = None) -> Principal:
        """Return the principal ``token`` proves, checked at ``now`` (default: the clock).

        Raises:
            Unauthenticated: with reason TOKEN_MISSING (None or empty), TOKEN_MALFORMED (not
                a JWT, or no ``kid``), TOKEN_BAD_SIGNATURE (not EdDSA, or the signature
                does not match the key its ``kid`` names), TOKEN_UNKNOWN_KEY (a ``kid``
                outside the set), TOKEN_EXPIRED, TOKEN_NOT_YET_VALID (``iat`` or ``nbf``
                ahead of ``now`` by more than TOKEN_LEEWAY), TOKEN_CLAIMS_INVALID (a
                missing or odd ``sub``, ``role``, ``iat`` or ``exp``, an unknown role, or a
                lifetime past MAX_TOKEN_TTL).
        """
        if now is not None and now.tzinfo is None:
            raise ValueError("now must carry a time zone")
        if not token:
            _refuse("TOKEN_MISSING", "the call carries no token (authorization: Bearer ...)")
        proven = self._proven.get(token)
        if proven is None:
            proven = self._prove(token)
            if len(self._proven) >= MAX_REMEMBERED:
                self._proven.clear()  # rare; a full forget is simpler than an LRU
            self._proven[token] = proven
        moment = (now or datetime.now(UTC)).timestamp()
        leeway = TOKEN_LEEWAY.total_seconds()
        if proven.expires <= moment - leeway:
            _refuse("TOKEN_EXPIRED", "the token has expired")
        if proven.valid_from > moment + leeway:
            _refuse("TOKEN_NOT_YET_VALID", "the token is not valid yet (issued in the future)")
        return proven.principal

    def _prove(self, token: str) -> _Proven:
        """Everything about ``token`` that does not depend on the time."""
        if len(token) > MAX_TOKEN_LENGTH:
            _refuse("TOKEN_MALFORMED", f"the token is longer than {MAX_TOKEN_LENGTH} bytes")
        key = self._key_for(token)
        claims = self._decode(token, key)
        issued, expires = _time_claim(claims, "iat"), _time_claim(claims, "exp")
        principal = _principal(claims)
        if issued < 0 or expires - issued > MAX_TOKEN_TTL.total_seconds():
            # Issued tokens never live longer; a longer one was not made by `dbank token`.
            _refuse("TOKEN_CLAIMS_INVALID", "the token's lifetime is longer than tokens may live")
        not_before = _time_claim(claims, "nbf") if "nbf" in claims else issued
        return _Proven(principal, max(issued, not_before), expires)

    def _key_for(self, token: str) -> Ed25519PublicKey:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            _refuse("TOKEN_MALFORMED", "the token is not a well-formed JWT")
        if header.get("alg") != ALGORITHM:
            _refuse("TOKEN_BAD_SIGNATURE", f"the token is not signed with {ALGORITHM}")
        kid = header.get("kid")
        if not isinstance(kid, str):
            _refuse("TOKEN_MALFORMED", "the token names no signing key (kid)")
        key = self._keys.get(kid)
        if key is None:
            _refuse("TOKEN_UNKNOWN_KEY", "the token is signed by a key this branch does not know")
        return key

    @staticmethod
    def _decode(token: str, key: Ed25519PublicKey) -> dict[str, Any]:
        options: Any = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}
        try:
            return jwt.decode(token, key, algorithms=[ALGORITHM], options=options)
        except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError):
            _refuse("TOKEN_BAD_SIGNATURE", "the token's signature does not match its key")
        except jwt.DecodeError:
            _refuse("TOKEN_MALFORMED", "the token is not a well-formed JWT")
        except jwt.InvalidTokenError:
            _refuse("TOKEN_CLAIMS_INVALID", "the token's claims are not valid")


def _time_claim(claims: Mapping[str, Any], name: str) -> int:
    value = claims.get(name)
    if type(value) is not int:  # bool is an int, and floats and strings are not claims here
        _refuse("TOKEN_CLAIMS_INVALID", f"the token's {name} claim is missing or not an integer")
    return value


def _principal(claims: Mapping[str, Any]) -> Principal:
    subject, role = claims.get("sub"), claims.get("role")
    if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject):
        _refuse("TOKEN_CLAIMS_INVALID", "the token's sub claim is missing or not a valid name")
    if not isinstance(role, str) or role not in _ROLES:
        _refuse("TOKEN_CLAIMS_INVALID", "the token's role claim is missing or unknown")
    return Principal(subject, Role(role))

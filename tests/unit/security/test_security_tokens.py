"""Callers' tokens: issued with EdDSA, verified offline, and each way a token can be wrong
refused with its own reason and without repeating the token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dbank.errors import Unauthenticated
from dbank.security import (
    MAX_TOKEN_TTL,
    TOKEN_LEEWAY,
    Principal,
    Role,
    TlsMaterialError,
    TokenVerifier,
    init_pki,
    issue_token,
    key_id,
    rotate_token_key,
)

NOW = datetime(2030, 6, 1, 12, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


BANK_KEY = Ed25519PrivateKey.generate()
STRANGER_KEY = Ed25519PrivateKey.generate()
KID = key_id(BANK_KEY.public_key())
VERIFIER = TokenVerifier([BANK_KEY.public_key()])


def _token(**overrides: Any) -> str:
    """A token of the bank's key, with claims changed by ``overrides`` (None: removed)."""
    issued = int(NOW.timestamp())
    claims: dict[str, Any] = {"sub": "alice", "role": "customer", "iat": issued}
    claims["exp"] = issued + 3600
    headers = {"kid": overrides.pop("kid", KID)}
    key = overrides.pop("key", BANK_KEY)
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm="EdDSA", headers=headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: object) -> str:
    return _b64(json.dumps(value).encode())


def _refused(token: str | None, reason: str, now: datetime = NOW) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as refused:
        VERIFIER.verify(token, now=now)
    assert refused.value.reason == reason
    for part in (token or "").split("."):
        if len(part) > 8:
            assert part not in refused.value.message
    return refused.value


def test_a_token_proves_its_subject_and_role() -> None:
    token = issue_token(_pem(BANK_KEY), subject="alice", role=Role.CUSTOMER, ttl=HOUR, now=NOW)
    assert VERIFIER.verify(token, now=NOW) == Principal("alice", Role.CUSTOMER)
    assert VERIFIER.verify(token, now=NOW + HOUR - timedelta(seconds=1)).role is Role.CUSTOMER


def test_the_token_carries_exactly_the_documented_claims() -> None:
    token = issue_token(_pem(BANK_KEY), subject="t-1", role="teller", ttl=8 * HOUR, now=NOW)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "kid": KID, "typ": "JWT"}
    claims = jwt.decode(
        token,
        BANK_KEY.public_key(),
        algorithms=["EdDSA"],
        options={
            "verify_exp": False,
            "verify_iat": False,
        },
    )
    issued = int(NOW.timestamp())
    assert claims == {"sub": "t-1", "role": "teller", "iat": issued, "exp": issued + 8 * 3600}


def test_the_key_id_is_short_and_stable() -> None:
    raw = BANK_KEY.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert hashlib.sha256(raw).hexdigest()[:16] == KID
    assert key_id(BANK_KEY.public_key()) == KID
    assert key_id(STRANGER_KEY.public_key()) != KID
    assert VERIFIER.key_ids == frozenset({KID})


@pytest.mark.parametrize("token", [None, ""])
def test_no_token(token: str | None) -> None:
    _refused(token, "TOKEN_MISSING")


@pytest.mark.parametrize(
    "token",
    [
        "abc",
        "a.b.c",
        "a.b",
        "Bearer x.y.z",
        f"{_b64(b'not json')}.{_segment({'sub': 'alice'})}.sig",
        f"{_segment({'alg': 'EdDSA', 'kid': 7})}.{_segment({'sub': 'alice'})}.sig",
        f"{_segment(['EdDSA'])}.{_segment({'sub': 'alice'})}.sig",
        "x" * 5000,
    ],
    ids=["no-dots", "junk", "two-parts", "bearer", "header-junk", "kid-int", "header-list", "long"],
)
def test_malformed(token: str) -> None:
    _refused(token, "TOKEN_MALFORMED")


def test_a_token_without_kid_is_malformed() -> None:
    token = jwt.encode({"sub": "alice"}, BANK_KEY, algorithm="EdDSA")
    _refused(token, "TOKEN_MALFORMED")


def test_a_payload_that_is_not_json_is_malformed() -> None:
    header = _segment({"alg": "EdDSA", "kid": KID, "typ": "JWT"})
    body = _b64(b"not json")
    signature = _b64(BANK_KEY.sign(f"{header}.{body}".encode()))
    _refused(f"{header}.{body}.{signature}", "TOKEN_MALFORMED")


def test_expired() -> None:
    token = issue_token(_pem(BANK_KEY), subject="alice", role="customer", ttl=HOUR, now=NOW)
    _refused(token, "TOKEN_EXPIRED", now=NOW + HOUR + TOKEN_LEEWAY)
    _refused(token, "TOKEN_EXPIRED", now=NOW + 2 * HOUR)
    # a branch clock a little behind or ahead of the issuer's is tolerated
    assert VERIFIER.verify(token, now=NOW + HOUR + TOKEN_LEEWAY - timedelta(seconds=1))


def test_not_yet_valid() -> None:
    token = issue_token(_pem(BANK_KEY), subject="alice", role="customer", ttl=HOUR, now=NOW)
    _refused(token, "TOKEN_NOT_YET_VALID", now=NOW - TOKEN_LEEWAY - timedelta(seconds=1))
    _refused(token, "TOKEN_NOT_YET_VALID", now=NOW - HOUR)
    assert VERIFIER.verify(token, now=NOW - TOKEN_LEEWAY)
    later = int((NOW + HOUR).timestamp())
    _refused(_token(nbf=later), "TOKEN_NOT_YET_VALID")


def test_a_key_outside_the_set_is_unknown() -> None:
    token = issue_token(_pem(STRANGER_KEY), subject="alice", role="admin", ttl=HOUR, now=NOW)
    _refused(token, "TOKEN_UNKNOWN_KEY")
    _refused(_token(kid="0123456789abcdef"), "TOKEN_UNKNOWN_KEY")


def test_another_key_claiming_a_known_kid_is_a_bad_signature() -> None:
    _refused(_token(key=STRANGER_KEY, role="admin"), "TOKEN_BAD_SIGNATURE")


def test_a_changed_claim_breaks_the_signature() -> None:
    header, _, signature = _token().split(".")
    issued = int(NOW.timestamp())
    body = _segment({"sub": "alice", "role": "admin", "iat": issued, "exp": issued + 3600})
    _refused(f"{header}.{body}.{signature}", "TOKEN_BAD_SIGNATURE")
    _refused(f"{header}.{body}.", "TOKEN_BAD_SIGNATURE")


def test_alg_none_is_refused() -> None:
    issued = int(NOW.timestamp())
    claims = {"sub": "mallory", "role": "admin", "iat": issued, "exp": issued + 3600}
    unsigned = f"{_segment({'alg': 'none', 'kid': KID, 'typ': 'JWT'})}.{_segment(claims)}."
    _refused(unsigned, "TOKEN_BAD_SIGNATURE")
    _refused(unsigned + "c2ln", "TOKEN_BAD_SIGNATURE")


def test_hs256_signed_with_the_public_key_is_refused() -> None:
    """The classic confusion: an HMAC keyed with the (public) verification key."""
    issued = int(NOW.timestamp())
    header = _segment({"alg": "HS256", "kid": KID, "typ": "JWT"})
    body = _segment({"sub": "mallory", "role": "admin", "iat": issued, "exp": issued + 3600})
    for secret in (_public_pem(BANK_KEY), BANK_KEY.public_key().public_bytes_raw()):
        mac = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
        _refused(f"{header}.{body}.{_b64(mac)}", "TOKEN_BAD_SIGNATURE")


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": None},
        {"sub": ""},
        {"sub": 5},
        {"sub": "alice bob"},
        {"sub": "a" * 65},
        {"sub": ["alice"]},
        {"role": None},
        {"role": "root"},
        {"role": "Admin"},
        {"role": 1},
        {"iat": None},
        {"exp": None},
        {"exp": "1900000000"},
        {"exp": 1900000000.5},
        {"iat": True},
        {"aud": "somebody"},
        # Longer-lived than any issued token, or issued before 1970: not made by the bank.
        {"exp": int(NOW.timestamp()) + 367 * 86400},
        {"exp": 2**70},
        {"iat": -1},
    ],
    ids=lambda c: "-".join(f"{k}={v!r}"[:20] for k, v in c.items()),
)
def test_claims_invalid(claims: dict[str, Any]) -> None:
    _refused(_token(**claims), "TOKEN_CLAIMS_INVALID")


def test_every_role_is_accepted() -> None:
    for role in Role:
        assert VERIFIER.verify(_token(role=role.value), now=NOW) == Principal("alice", role)


def test_refusals_are_unauthenticated_with_their_reason() -> None:
    refused = _refused(_token(key=STRANGER_KEY), "TOKEN_BAD_SIGNATURE")
    assert isinstance(refused, Unauthenticated)
    assert refused.message


def test_rotation_old_and_new_keys_both_verify(tmp_path: Path) -> None:
    init_pki(tmp_path, [])
    old = issue_token(
        (tmp_path / "tokens.key").read_bytes(), subject="alice", role="customer", ttl=HOUR, now=NOW
    )
    retired, current = rotate_token_key(tmp_path)
    new = issue_token(
        (tmp_path / "tokens.key").read_bytes(), subject="bob", role="teller", ttl=HOUR, now=NOW
    )
    verifier = TokenVerifier.from_directory(tmp_path)
    assert verifier.key_ids == {retired, current}
    assert verifier.verify(old, now=NOW) == Principal("alice", Role.CUSTOMER)
    assert verifier.verify(new, now=NOW) == Principal("bob", Role.TELLER)
    assert jwt.get_unverified_header(new)["kid"] == current
    # once the retired key is removed, its tokens are refused
    (tmp_path / f"tokens-{retired}.pub").unlink()
    with pytest.raises(Unauthenticated) as refused:
        TokenVerifier.from_directory(tmp_path).verify(old, now=NOW)
    assert refused.value.reason == "TOKEN_UNKNOWN_KEY"


def test_a_verifier_needs_its_public_key(tmp_path: Path) -> None:
    with pytest.raises(TlsMaterialError, match=r"tokens\.pub does not exist.*dbank certs init"):
        TokenVerifier.from_directory(tmp_path)
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    (tmp_path / "tokens.pub").write_bytes(
        ec_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(TlsMaterialError, match="not an Ed25519 public key"):
        TokenVerifier.from_directory(tmp_path)
    (tmp_path / "tokens.pub").write_bytes(b"junk")
    with pytest.raises(TlsMaterialError, match="not a PEM public key"):
        TokenVerifier.from_directory(tmp_path)
    with pytest.raises(ValueError, match="at least one"):
        TokenVerifier([])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"subject": "no spaces"}, "subject"),
        ({"subject": ""}, "subject"),
        ({"role": "root"}, "root"),
        ({"ttl": timedelta(0)}, "ttl"),
        ({"ttl": -HOUR}, "ttl"),
        ({"ttl": MAX_TOKEN_TTL + timedelta(seconds=1)}, "ttl"),
        ({"now": datetime(2030, 1, 1)}, "time zone"),
    ],
)
def test_issue_refuses_bad_arguments(change: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"subject": "alice", "role": "customer", "ttl": HOUR, "now": NOW}
    arguments.update(change)
    with pytest.raises(ValueError, match=message):
        issue_token(_pem(BANK_KEY), **arguments)


def test_issue_needs_an_ed25519_key() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pem = ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(TlsMaterialError, match="not an Ed25519 private key"):
        issue_token(pem, subject="alice", role="customer", ttl=HOUR, now=NOW)


def test_verify_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="time zone"):
        VERIFIER.verify(_token(), now=datetime(2030, 6, 1))


def test_verify_defaults_to_the_clock() -> None:
    now = datetime.now(UTC)
    token = issue_token(_pem(BANK_KEY), subject="alice", role="auditor", ttl=HOUR, now=now)
    assert VERIFIER.verify(token) == Principal("alice", Role.AUDITOR)


def test_a_remembered_token_still_expires() -> None:
    verifier = TokenVerifier([BANK_KEY.public_key()])
    token = _token()
    assert verifier.verify(token, now=NOW).subject == "alice"
    assert verifier.verify(token, now=NOW).subject == "alice"  # remembered
    with pytest.raises(Unauthenticated) as late:
        verifier.verify(token, now=NOW + timedelta(hours=2))
    assert late.value.reason == "TOKEN_EXPIRED"
    with pytest.raises(Unauthenticated) as early:
        verifier.verify(token, now=NOW - timedelta(hours=2))
    assert early.value.reason == "TOKEN_NOT_YET_VALID"

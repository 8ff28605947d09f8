"""A branch's identity: the URI SAN ``dbank://branch/N`` of its certificate (design §11).

What gRPC gives a servicer, ``context.auth_context()``, is a dict of property names to
lists of ``bytes``, filled by gRPC Core (``grpc_ssl_peer_to_auth_context``) from the peer
certificate that the TLS handshake verified against the server's root certificates. Seen
with grpcio 1.85 on a server made with ``ssl_server_credentials(..., require_client_auth=
True)``, for a client presenting ``branch-2.crt``:

- ``x509_pem_cert``: ``[PEM of the client's leaf certificate]`` (one entry);
- ``x509_subject_alternative_name``: every SAN as flat text, URIs, DNS names and IP
  addresses alike: ``[b"dbank://branch/2", b"localhost", b"127.0.0.1", b"::1"]``; it is
  also the peer identity (``peer_identity_key()``, ``peer_identities()``);
- ``peer_uri`` ``[b"dbank://branch/2"]``, ``peer_dns`` ``[b"localhost"]``, ``peer_ip``
  ``[b"127.0.0.1", b"::1"]``: the same SANs by type;
- ``x509_subject`` ``[b"CN=dbank branch 2,O=dbank"]``, ``x509_common_name``;
- ``transport_security_type`` ``[b"ssl"]``, ``security_level``
  ``[b"TSI_PRIVACY_AND_INTEGRITY"]``, ``ssl_tls_version`` ``[b"TLSv1.3"]``,
  ``ssl_session_reused``, ``ssl_negotiated_key_exchange_group``, and
  ``ssl_requested_server_name`` when the client sent SNI.

Without ``require_client_auth`` gRPC Python does not even ask for a client certificate
(there is no "request but do not require" mode), so the ``x509_*`` and ``peer_*`` keys are
absent whatever the client holds; a plaintext call has only ``transport_security_type``
``[b"insecure"]`` and ``security_level`` ``[b"TSI_SECURITY_NONE"]``. With it, a client
without a certificate, or with one of another CA, fails the handshake and never reaches a
servicer.

``branch_id_of_peer`` parses the PEM certificate and reads only its URI SANs, rather than
trust the flat SAN list, where a DNS SAN spelled ``dbank://branch/1`` would read the same
as the URI.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from cryptography import x509

MAX_BRANCH_ID = 2**32 - 1
"""Branch ids are ``uint32`` on the wire (``dbank.ledger.MAX_BRANCH_ID``; this package
stands apart from the ledger, and a test holds the two equal)."""

_BRANCH_URI = re.compile(r"dbank://branch/([1-9][0-9]{0,9})")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
PEM_CERT_PROPERTY = "x509_pem_cert"
"""The ``auth_context()`` key of the peer's leaf certificate, as gRPC Core names it."""


def branch_uri(branch_id: int) -> str:
    """The URI SAN that names branch ``branch_id`` in its certificate."""
    return f"dbank://branch/{check_branch_id(branch_id)}"


def check_branch_id(branch_id: int) -> int:
    """Return ``branch_id`` if it is an int from 1 to MAX_BRANCH_ID, else raise ValueError."""
    if type(branch_id) is not int or not 1 <= branch_id <= MAX_BRANCH_ID:
        raise ValueError(f"a branch id is an integer from 1 to {MAX_BRANCH_ID}, got {branch_id!r}")
    return branch_id


def branch_id_of_certificate(pem: bytes) -> int | None:
    """The branch a PEM certificate names, or None if it names none.

    None also for a certificate that cannot be parsed, a ``dbank:`` URI that is not exactly
    ``dbank://branch/N`` (N from 1 to MAX_BRANCH_ID, no sign or leading zero), and a
    certificate with more than one ``dbank:`` URI: an ambiguous identity is none.

    It does not check who signed the certificate: call it on what the TLS layer verified
    against the bank's CA (the peer certificate of a mutual-TLS call).
    """
    try:
        certificate = x509.load_pem_x509_certificate(pem)
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (ValueError, x509.ExtensionNotFound):
        return None
    uris = names.value.get_values_for_type(x509.UniformResourceIdentifier)
    ours = [uri for uri in uris if _is_dbank_uri(uri)]
    if len(ours) != 1:
        return None
    match = _BRANCH_URI.fullmatch(ours[0])
    if match is None:
        return None
    branch_id = int(match.group(1))
    return branch_id if branch_id <= MAX_BRANCH_ID else None


def branch_id_of_peer(auth_context: Mapping[str, Iterable[bytes]]) -> int | None:
    """The branch a gRPC peer proved to be, from ``ServicerContext.auth_context()``.

    None when the call has no verified client certificate, more than one leaf, or a
    certificate that names no branch (see ``branch_id_of_certificate``). Trust it only on a
    server whose credentials verify client certificates against the bank's CA.
    """
    certificates = list(auth_context.get(PEM_CERT_PROPERTY, ()))
    if len(certificates) != 1:
        return None
    return branch_id_of_certificate(certificates[0])


def _is_dbank_uri(uri: str) -> bool:
    scheme = _SCHEME.match(uri)
    return scheme is not None and scheme.group(1).lower() == "dbank"

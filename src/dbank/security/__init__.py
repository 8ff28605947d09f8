"""The bank's security layer, pure: its PKI, callers' tokens and the authorization policy
(design §11). No gRPC, no asyncio, no storage: the servers apply it at their edge."""

from dbank.security._caller import (
    CALLER,
    CALLER_AUTHORIZATION,
    caller_name,
    forwarded_metadata,
)
from dbank.security._files import KeyExists, PkiError, TlsMaterialError
from dbank.security._identity import (
    MAX_BRANCH_ID,
    branch_id_of_certificate,
    branch_id_of_peer,
    branch_uri,
)
from dbank.security._pki import (
    BRANCH_VALIDITY,
    CA_VALIDITY,
    BranchTls,
    add_branch,
    init_pki,
    load_branch_tls,
    load_ca,
    load_token_signing_key,
    rotate_token_key,
)
from dbank.security._policy import INSECURE_PRINCIPAL, Action, Principal, Role, may, require
from dbank.security._tokens import (
    MAX_TOKEN_TTL,
    TOKEN_LEEWAY,
    TokenVerifier,
    issue_token,
    key_id,
)

__all__ = [
    "BRANCH_VALIDITY",
    "CALLER",
    "CALLER_AUTHORIZATION",
    "CA_VALIDITY",
    "INSECURE_PRINCIPAL",
    "MAX_BRANCH_ID",
    "MAX_TOKEN_TTL",
    "TOKEN_LEEWAY",
    "Action",
    "BranchTls",
    "KeyExists",
    "PkiError",
    "Principal",
    "Role",
    "TlsMaterialError",
    "TokenVerifier",
    "add_branch",
    "branch_id_of_certificate",
    "branch_id_of_peer",
    "branch_uri",
    "caller_name",
    "forwarded_metadata",
    "init_pki",
    "issue_token",
    "key_id",
    "load_branch_tls",
    "load_ca",
    "load_token_signing_key",
    "may",
    "require",
    "rotate_token_key",
]

"""A throwaway PKI for a bank this machine hosts: ``dbank run``, ``dbank cluster``, the
demo and the tests run every branch with TLS and every caller with a token, on
certificates made for the occasion (``dbank.security.init_pki``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dbank.security import Role, init_pki, issue_token, load_ca, load_token_signing_key

TOKEN_TTL = dt.timedelta(days=1)
"""Long enough for any run; the keys are thrown away with the directory anyway."""


@dataclass(frozen=True, slots=True)
class LocalPki:
    """The TLS directory of a local bank and what its callers need from it."""

    tls_dir: Path
    ca: bytes
    signing_key: bytes

    @classmethod
    def make(cls, tls_dir: Path, branch_ids: Iterable[int]) -> LocalPki:
        """Make a CA, a certificate for each branch and a token key in ``tls_dir`` (new).

        Raises:
            PkiError: the directory cannot be written, or holds keys already.
        """
        init_pki(tls_dir, sorted(branch_ids))
        return cls.of(tls_dir)

    @classmethod
    def of(cls, tls_dir: Path) -> LocalPki:
        """The PKI that ``tls_dir`` holds already."""
        return cls(tls_dir, load_ca(tls_dir / "ca.crt"), load_token_signing_key(tls_dir))

    def token(self, subject: str, role: Role, ttl: dt.timedelta = TOKEN_TTL) -> str:
        now = dt.datetime.now(dt.UTC)
        return issue_token(self.signing_key, subject=subject, role=role, ttl=ttl, now=now)

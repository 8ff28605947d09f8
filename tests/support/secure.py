"""The test bank's security: one PKI for the whole test run, and dbank's helpers bound to it.

Every test bank runs with TLS and tokens unless the test is about ``--insecure``. ``PKI``
(the bank's CA, certificates for branches 1..20, the token key pair and an admin token) is
made in a temporary directory the first time a test needs it, once per test process, and
removed when the process exits. Tests take the helpers here in place of dbank's own, by
their import lines::

    from support.secure import BankClient, proxied_bank, start_branch

* ``BankClient``: dbank's client, over TLS with the test CA and the admin token unless
  given others (``dbank.client.BankClient`` itself for a plaintext client, or none);
* ``start_branch``, ``proxied_bank``, ``wait_serving``: secure branch processes;
* ``cli_env``: the environment of a ``dbank`` subprocess (``DBANK_TLS_DIR``,
  ``DBANK_TOKEN``);
* ``channel`` / ``aio_channel``: raw gRPC channels to a branch's customer port (TLS, the
  token as call credentials); ``PKI.peer_credentials(i)``: branch ``i``'s mutual TLS.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import grpc

from dbank import client, hosting
from dbank.hosting import BranchProcess, LocalPki, ProxiedBank
from dbank.security import Role, load_branch_tls

BRANCHES = range(1, 21)
"""The branch ids that have a certificate."""
ADMIN = "test-admin"
TOKEN_TTL = timedelta(hours=12)
"""Long enough for any test run."""


class BankPki:
    """The test bank's TLS directory and tokens (``dbank.hosting.LocalPki``), made on
    first use."""

    @cached_property
    def _local(self) -> LocalPki:
        root = Path(tempfile.mkdtemp(prefix="dbank-test-pki-"))
        atexit.register(shutil.rmtree, root, True)
        return LocalPki.make(root / "tls", BRANCHES)

    @property
    def tls_dir(self) -> Path:
        return self._local.tls_dir

    @property
    def ca(self) -> bytes:
        """The CA certificate (PEM) that proves a branch is the bank's."""
        return self._local.ca

    @cached_property
    def admin_token(self) -> str:
        return self.token(ADMIN, Role.ADMIN)

    def token(self, subject: str, role: Role, ttl: timedelta = TOKEN_TTL) -> str:
        """A token of this bank for ``subject`` in ``role``, valid from now."""
        return self._local.token(subject, role, ttl)

    def credentials(self, token: str | None = None) -> grpc.ChannelCredentials:
        """TLS to a branch's customer port, sending ``token`` (default: admin's) with each
        call, as ``authorization: Bearer``."""
        return grpc.composite_channel_credentials(
            grpc.ssl_channel_credentials(root_certificates=self.ca),
            grpc.access_token_call_credentials(token or self.admin_token),
        )

    def peer_credentials(self, branch_id: int) -> grpc.ChannelCredentials:
        """Mutual TLS to a branch's peer port, as branch ``branch_id``."""
        tls = load_branch_tls(self.tls_dir, branch_id)
        return grpc.ssl_channel_credentials(
            root_certificates=tls.ca_pem, private_key=tls.key_pem, certificate_chain=tls.cert_pem
        )


PKI = BankPki()


class BankClient(client.BankClient):
    """``dbank.client.BankClient`` reaching the test bank over TLS, with the admin token
    unless given another."""

    def __init__(
        self, target: str, *, tls: bytes | None = None, token: str | None = None, **options: Any
    ) -> None:
        super().__init__(target, tls=tls or PKI.ca, token=token or PKI.admin_token, **options)


def start_branch(
    branch_id: int,
    data_dir: Path,
    listen: str = "127.0.0.1:0",
    peers: dict[int, str] | None = None,
    store: str | None = None,
    *,
    peer_listen: str = "127.0.0.1:0",
) -> BranchProcess:
    """``dbank.hosting.start_branch`` with the test PKI: ``peers`` name the other branches'
    peer addresses (``BranchProcess.peer_address``)."""
    return hosting.start_branch(
        branch_id, data_dir, listen, peers, store, tls_dir=PKI.tls_dir, peer_listen=peer_listen
    )


def proxied_bank(
    root: Path, size: int = 3, stores: Mapping[int, str] | None = None
) -> AbstractContextManager[ProxiedBank]:
    """``dbank.hosting.proxied_bank`` with the test PKI."""
    return hosting.proxied_bank(root, size, stores, tls_dir=PKI.tls_dir)


def wait_serving(address: str, deadline: float = hosting.START_DEADLINE, service: str = "") -> None:
    """``dbank.hosting.wait_serving`` over TLS with the test CA."""
    hosting.wait_serving(address, deadline, service, ca=PKI.ca)


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a ``dbank`` subprocess talking to the test bank as its admin."""
    env = {k: v for k, v in os.environ.items() if k != "DBANK_INSECURE"}
    return {**env, "DBANK_TLS_DIR": str(PKI.tls_dir), "DBANK_TOKEN": PKI.admin_token, **extra}


def channel(address: str, token: str | None = None) -> grpc.Channel:
    """A raw gRPC channel to a branch's customer port (``PKI.credentials``)."""
    return grpc.secure_channel(address, PKI.credentials(token))


def aio_channel(address: str, token: str | None = None) -> grpc.aio.Channel:
    """The asyncio twin of ``channel``."""
    return grpc.aio.secure_channel(address, PKI.credentials(token))

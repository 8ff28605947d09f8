"""A secure branch's gRPC credentials, made from the bank's TLS directory.

Two ports (as etcd has a client port and a peer port): customers reach ``listen`` with
TLS and a token; branches reach ``peer_listen`` with mutual TLS, where the handshake
refuses a client without a certificate of the bank's CA. gRPC's Python API can either not
ask for a client certificate or require one, never ask and accept none, so one port cannot
serve both kinds of caller.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc

from dbank.branch import BranchConfig
from dbank.errors import Unauthenticated
from dbank.security import BranchTls, PkiError, TokenVerifier, load_branch_tls


@dataclass(frozen=True, slots=True)
class BranchCredentials:
    tls: BranchTls
    verifier: TokenVerifier

    @classmethod
    def load(
        cls, directory: Path, branch_id: int, verifier: TokenVerifier | None = None
    ) -> BranchCredentials:
        """``verifier``: the directory's token keys, if read already (branches of one
        directory can share one).

        Raises ``PkiError``: a file is missing, unreadable, or does not fit."""
        tls = load_branch_tls(directory, branch_id)
        return cls(tls, verifier or TokenVerifier.from_directory(directory))

    @classmethod
    def load_all(
        cls, configs: Iterable[BranchConfig], tokens: Iterable[str] = ()
    ) -> dict[int, BranchCredentials]:
        """The credentials of every secure branch of ``configs`` whose material loads,
        by branch id, each directory's token keys read once; a branch left out says what
        is wrong with its material when it starts. Each of ``tokens`` that proves valid is
        remembered by the verifiers as proven (``TokenVerifier.verify``); one that does
        not is left for the branches to refuse."""
        loaded: dict[int, BranchCredentials] = {}
        verifiers: dict[Path, TokenVerifier] = {}
        for config in configs:
            if config.tls_dir is None:
                continue
            with contextlib.suppress(PkiError):
                verifier = verifiers.get(config.tls_dir)
                if verifier is None:
                    verifier = verifiers[config.tls_dir] = TokenVerifier.from_directory(
                        config.tls_dir
                    )
                    for token in tokens:
                        with contextlib.suppress(Unauthenticated):
                            verifier.verify(token)
                loaded[config.branch_id] = cls.load(config.tls_dir, config.branch_id, verifier)
        return loaded

    def _pairs(self) -> list[tuple[bytes, bytes]]:
        return [(self.tls.key_pem, self.tls.cert_pem)]

    def public_credentials(self) -> grpc.ServerCredentials:
        """For customers: TLS with the branch's certificate; no client certificate."""
        return grpc.ssl_server_credentials(self._pairs())

    def peer_credentials(self) -> grpc.ServerCredentials:
        """For other branches: a client certificate of the bank's CA is required."""
        return grpc.ssl_server_credentials(
            self._pairs(), root_certificates=self.tls.ca_pem, require_client_auth=True
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """For dialing the peers: verify their certificate, present this branch's own."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.tls.ca_pem,
            private_key=self.tls.key_pem,
            certificate_chain=self.tls.cert_pem,
        )

"""``BranchCredentials.load_all``: what a parent process reads for the branches it forks."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.secure import PKI

from dbank.branch import BranchConfig
from dbank.errors import Unauthenticated
from dbank.hosting import LocalPki
from dbank.security import Role, load_branch_tls
from dbank.server import BranchCredentials


def test_every_secure_branch_gets_its_own_material_and_one_shared_verifier() -> None:
    configs = [
        BranchConfig(branch_id=1, tls_dir=PKI.tls_dir),
        BranchConfig(branch_id=2),  # --insecure: nothing to load
        BranchConfig(branch_id=3, tls_dir=PKI.tls_dir),
    ]
    loaded = BranchCredentials.load_all(configs)
    assert sorted(loaded) == [1, 3]
    for branch_id, credentials in loaded.items():
        assert credentials.tls == load_branch_tls(PKI.tls_dir, branch_id)
    assert loaded[1].verifier is loaded[3].verifier
    assert loaded[1].verifier.key_ids == BranchCredentials.load(PKI.tls_dir, 1).verifier.key_ids


def test_a_branch_whose_material_does_not_load_is_left_to_say_so_itself(
    tmp_path: Path,
) -> None:
    # Branch 999 has no certificate in the test PKI; branch 1 still loads.
    configs = [
        BranchConfig(branch_id=999, tls_dir=PKI.tls_dir),
        BranchConfig(branch_id=1, tls_dir=PKI.tls_dir),
        BranchConfig(branch_id=2, tls_dir=tmp_path / "missing"),
    ]
    assert sorted(BranchCredentials.load_all(configs)) == [1]


def test_tokens_proven_before_the_fork_stay_valid_and_a_forged_one_stays_refused(
    tmp_path: Path,
) -> None:
    good = PKI.token("ann", Role.CUSTOMER)
    stranger = LocalPki.make(tmp_path / "tls", [1])
    forged = stranger.token("ann", Role.ADMIN)  # another bank's key
    configs = [BranchConfig(branch_id=1, tls_dir=PKI.tls_dir)]
    loaded = BranchCredentials.load_all(configs, [good, forged, "not a token"])
    verifier = loaded[1].verifier
    assert verifier.verify(good).role is Role.CUSTOMER
    with pytest.raises(Unauthenticated):
        verifier.verify(forged)

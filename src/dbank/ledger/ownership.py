"""Which branch owns an account id: the one that alone opens it and posts its interest."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def owner_branch(account_id: str, branch_ids: Iterable[int]) -> int:
    """Hash ``account_id`` over the sorted branch ids; every branch computes the same owner.

    Raises:
        ValueError: if ``branch_ids`` is empty.
    """
    ordered = sorted(set(branch_ids))
    if not ordered:
        raise ValueError("no branches")
    digest = hashlib.sha256(account_id.encode()).digest()
    return ordered[int.from_bytes(digest[:8], "big") % len(ordered)]

"""How amounts are split among the branches of a bank (design §2): an opening balance into
escrow shares, and the room under 2^63 - 1 into credit limits.

A branch's **credit limit** bounds what its own ops may add to any one account, net of what
they take out (``LedgerState.credits``). The limits of a bank's branches sum to exactly
2^63 - 1, so however the branches' ops interleave, no replica's balance can pass it.
"""

from __future__ import annotations

from collections.abc import Iterable

from dbank.money import MAX_AMOUNT


def escrow_shares(total: int, branch_ids: Iterable[int]) -> dict[int, int]:
    """``total`` split evenly over the branches, the remainder one each to the lowest ids."""
    ids = sorted(set(branch_ids))
    share, rest = divmod(total, len(ids))
    return {branch_id: share + 1 if rank < rest else share for rank, branch_id in enumerate(ids)}


def credit_limit(branch_id: int, branch_ids: Iterable[int]) -> int:
    """The most that the ops of ``branch_id`` may add to an account, net, in a bank of
    ``branch_ids``: its share of 2^63 - 1, split like an opening balance. Split the same
    way, a genesis op's share of any balance up to 2^63 - 1 is within its branch's limit.

    Raises:
        ValueError: ``branch_id`` is not one of ``branch_ids``.
    """
    limits = escrow_shares(MAX_AMOUNT, branch_ids)
    if branch_id not in limits:
        raise ValueError(f"branch {branch_id} is not one of {sorted(limits)}")
    return limits[branch_id]

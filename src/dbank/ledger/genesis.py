"""The genesis op: a bank's first op, opening an account with its balance already shared
out in escrow among the branches (design §2.2).

Every branch of the bank is given the same genesis op and applies it before anything
else; the digest of its bytes names the bank, and branches whose digests differ refuse to
replicate with each other.
"""

from __future__ import annotations

from collections.abc import Iterable

from dbank.ledger.codec import encode_op, op_digest
from dbank.ledger.ops import AccountType, Genesis, Op
from dbank.ledger.ownership import owner_branch
from dbank.ledger.shares import escrow_shares
from dbank.ledger.state import GENESIS_ID
from dbank.ledger.version_vector import VersionVector


def genesis_op(
    *,
    account_id: str,
    currency: str,
    owner: str,
    balance: int,
    branch_ids: Iterable[int],
    type: AccountType = AccountType.CHECKING,
) -> Op:
    """The genesis op of a bank of ``branch_ids`` whose one account opens with ``balance``
    minor units, shared out by ``escrow_shares``. Depends only on its arguments (its hlc
    is 0), so every branch built from the same file gets the same bytes."""
    ids = sorted(set(branch_ids))
    shares = tuple((b, amount) for b, amount in escrow_shares(balance, ids).items() if amount > 0)
    body = Genesis(account_id, type, currency, owner, owner_branch(account_id, ids), shares)
    return Op(GENESIS_ID, VersionVector(), 0, "", currency, body)


def genesis_digest(op: Op) -> str:
    """The SHA-256 of the op's canonical bytes, in hex: what branches compare in Hello."""
    return op_digest(encode_op(op))

"""The genesis op: the same bytes from the same file, applied first, never twice."""

from __future__ import annotations

import pytest

from dbank.ledger import (
    AccountType,
    Deposit,
    Genesis,
    InvariantViolation,
    LedgerState,
    Op,
    OpId,
    VersionVector,
    escrow_shares,
    genesis_digest,
    genesis_op,
)
from dbank.ledger.codec import decode_op, encode_op
from dbank.ledger.genesis import GENESIS_ID
from dbank.ledger.ownership import owner_branch


def bank(balance: int = 400, branches: tuple[int, ...] = (1, 2, 3)) -> Op:
    return genesis_op(
        account_id="acct", currency="JPY", owner="customers", balance=balance, branch_ids=branches
    )


def test_shares_split_evenly_with_the_remainder_to_the_lowest_ids() -> None:
    assert escrow_shares(10, [7, 3, 5]) == {3: 4, 5: 3, 7: 3}
    assert escrow_shares(2, [1, 2, 3]) == {1: 1, 2: 1, 3: 0}


def test_the_same_file_gives_the_same_bytes_and_digest() -> None:
    assert encode_op(bank()) == encode_op(bank(branches=(3, 1, 2)))
    assert genesis_digest(bank()) == genesis_digest(bank(branches=(3, 2, 1)))
    assert genesis_digest(bank()) != genesis_digest(bank(balance=401))
    assert genesis_digest(bank()) != genesis_digest(bank(branches=(1, 2)))


def test_it_round_trips_through_the_codec() -> None:
    op = bank(balance=7, branches=(2, 9))
    assert decode_op(encode_op(op)) == op
    assert op.id == GENESIS_ID
    assert isinstance(op.body, Genesis)
    assert op.body.shares == ((2, 4), (9, 3))


def test_applied_it_opens_the_account_with_every_share_in_escrow() -> None:
    state = LedgerState()
    assert state.apply(bank(balance=10))
    assert state.balance("acct") == 10
    assert [state.rights_of("acct", b) for b in (1, 2, 3)] == [4, 3, 3]
    record = state.account("acct")
    assert (record.type, record.currency) == (AccountType.CHECKING, "JPY")
    assert record.owner_branch == owner_branch("acct", [1, 2, 3])
    assert state.version_vector() == VersionVector({0: 1})
    assert not state.apply(bank(balance=10))  # exactly once


def test_a_zero_balance_opens_the_account_with_no_shares() -> None:
    state = LedgerState()
    state.apply(bank(balance=0))
    assert state.balance("acct") == 0
    assert bank(balance=0).body == Genesis(
        "acct", AccountType.CHECKING, "JPY", "customers", owner_branch("acct", [1, 2, 3]), ()
    )


@pytest.mark.parametrize(
    "op",
    [
        # Not the bank's first op.
        Op(OpId(1, 1), VersionVector(), 0, "", "JPY", bank().body),
        # Shares out of order, or for branch 0, or of nothing.
        Op(
            GENESIS_ID,
            VersionVector(),
            0,
            "",
            "JPY",
            Genesis("acct", AccountType.CHECKING, "JPY", "c", 1, ((2, 1), (1, 1))),
        ),
        Op(
            GENESIS_ID,
            VersionVector(),
            0,
            "",
            "JPY",
            Genesis("acct", AccountType.CHECKING, "JPY", "c", 1, ((0, 1),)),
        ),
        Op(
            GENESIS_ID,
            VersionVector(),
            0,
            "",
            "JPY",
            Genesis("acct", AccountType.CHECKING, "JPY", "c", 1, ((1, 0),)),
        ),
    ],
)
def test_a_malformed_genesis_is_refused_and_changes_nothing(op: Op) -> None:
    state = LedgerState()
    with pytest.raises(InvariantViolation):
        state.apply(op)
    assert state.accounts == {}
    assert state.version_vector() == VersionVector()


def test_the_genesis_account_takes_ordinary_ops_afterwards() -> None:
    state = LedgerState()
    state.apply(bank(balance=9))
    deposit = Op(OpId(2, 1), VersionVector({0: 1}), 5, "r1", "JPY", Deposit("acct", 4))
    state.apply(deposit)
    assert state.rights_of("acct", 2) == 7
    assert state.balance("acct") == 13

"""Net credits and credit limits (design §2.1): what each branch's own ops have added to an
account, kept by every replica, and the bound on it with which no replica's balance can
pass 2^63 - 1, however the branches' credits interleave (the properties are in
``test_ledger_properties.py``)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ledger_support import Ticker, apply_all, check_invariants, open_account, originate, snapshot

from dbank.ledger import (
    AccountType,
    Accrual,
    BalanceOverflow,
    Command,
    Deposit,
    DepositCommand,
    Grant,
    Interest,
    InterestCommand,
    LedgerState,
    Op,
    OpenAccountCommand,
    Transfer,
    TransferCommand,
    Withdrawal,
    WithdrawCommand,
    credit_limit,
    escrow_shares,
    genesis_op,
    net_credits,
    plan,
)
from dbank.money import MAX_AMOUNT

bank_ids = st.sets(st.integers(1, 10**6), min_size=1, max_size=60)
TWO = (1, 2)
LIMIT_1, LIMIT_2 = 2**62, 2**62 - 1
EPOCH = dt.date(1970, 1, 1)  # the day of the tests' HLCs


# The limits -----------------------------------------------------------------------------------


@given(bank_ids)
def test_a_banks_limits_share_out_exactly_the_max(ids: set[int]) -> None:
    assert sum(credit_limit(b, ids) for b in ids) == MAX_AMOUNT


@given(bank_ids, st.integers(0, MAX_AMOUNT))
def test_every_genesis_share_is_within_its_branchs_limit(ids: set[int], total: int) -> None:
    for branch, share in escrow_shares(total, ids).items():
        assert share <= credit_limit(branch, ids)


def test_limits_split_like_escrow() -> None:
    assert [credit_limit(b, TWO) for b in TWO] == [LIMIT_1, LIMIT_2]
    assert credit_limit(7, [7]) == MAX_AMOUNT  # a bank of one branch: no change
    with pytest.raises(ValueError, match="branch 3"):
        credit_limit(3, TWO)


# What each op counts in ---------------------------------------------------------------------


def test_each_op_counts_in_its_origins_net_credit_and_a_grant_in_none() -> None:
    tick = Ticker()
    genesis = genesis_op(
        account_id="g",
        currency="USD",
        owner="o",
        balance=10,
        branch_ids=(1, 2, 3),
        type=AccountType.SAVINGS,
    )
    state = LedgerState()
    ops: list[Op] = [genesis]
    apply_all(state, ops)
    ops.append(open_account(state, 2, "c", "USD", tick()))
    for branch, body in [
        (1, Grant("g", 4, to_branch=2)),
        (2, Withdrawal("g", 7)),  # its own 3 and the 4 granted
        (3, Transfer("g", "c", 3)),
        (2, Deposit("g", 5)),
        (1, Interest("g", 2, EPOCH, "1", 10)),
    ]:
        ops.append(originate(state, branch, "USD", body, tick()))
    assert {k: v for k, v in state.credits.items() if v} == {
        ("g", 1): 4 + 2,
        ("g", 2): 3 - 7 + 5,
        ("c", 3): 3,
    }
    check_invariants(state)  # every balance is its branches' net credits' sum
    assert net_credits(reversed(ops)) == dict(state.credits)


# The planner keeps each branch within its limit ---------------------------------------------


def _two_branch_bank() -> tuple[LedgerState, Ticker]:
    """A replica of a bank of two branches: savings ``a`` and ``b``, and 10 of ``b`` in
    each branch's escrow."""
    tick = Ticker()
    state = LedgerState()
    for account in ("a", "b"):
        body = OpenAccountCommand(account, AccountType.SAVINGS, "USD", "o", "r")
        originate(state, 1, *plan(state, body, branch=1, credit_limit=LIMIT_1), tick())
    for branch in TWO:
        originate(state, branch, "USD", Deposit("b", 10), tick())
    return state, tick


def _at_2(state: LedgerState, command: Command, tick: Ticker) -> Op:
    return originate(state, 2, *plan(state, command, branch=2, credit_limit=LIMIT_2), tick())


@pytest.mark.parametrize(
    "command",
    [
        DepositCommand("a", 1, "r"),
        TransferCommand("b", "a", 1, "r"),
        InterestCommand("a", "1", EPOCH, "r", Accrual(None, 1, LIMIT_2)),
    ],
)
def test_a_credit_past_the_branchs_limit_is_refused_and_changes_nothing(
    command: Command,
) -> None:
    state, tick = _two_branch_bank()
    _at_2(state, DepositCommand("a", LIMIT_2, "r"), tick)
    before = snapshot(state)
    with pytest.raises(BalanceOverflow) as refused:
        plan(state, command, branch=2, credit_limit=LIMIT_2)
    assert refused.value.reason == "BALANCE_OVERFLOW"
    assert refused.value.metadata == {"account_id": "a"}
    assert f"at most {LIMIT_2}" in refused.value.message
    assert snapshot(state) == before
    # Far from 2^63 - 1 here: the rest of the room is branch 1's.
    assert state.balance("a") == LIMIT_2
    assert plan(state, command, branch=1, credit_limit=LIMIT_1)


def test_the_limit_bounds_the_net_credit_not_the_gross() -> None:
    state, tick = _two_branch_bank()
    _at_2(state, DepositCommand("a", LIMIT_2, "r"), tick)
    _at_2(state, TransferCommand("a", "b", 6, "r"), tick)  # room for 6 more in a
    _at_2(state, DepositCommand("a", 6, "r"), tick)
    with pytest.raises(BalanceOverflow):
        plan(state, DepositCommand("a", 1, "r"), branch=2, credit_limit=LIMIT_2)
    # Escrow granted to branch 2 and spent there leaves it that much more room.
    originate(state, 1, "USD", Deposit("a", 50), tick())
    originate(state, 1, "USD", Grant("a", 50, to_branch=2), tick())
    _at_2(state, WithdrawCommand("a", 50, "r"), tick)
    _at_2(state, DepositCommand("a", 50, "r"), tick)
    assert state.credit_of("a", 2) == LIMIT_2
    check_invariants(state, {1: LIMIT_1, 2: LIMIT_2})


def test_a_posting_of_no_interest_is_never_refused() -> None:
    state, tick = _two_branch_bank()
    _at_2(state, DepositCommand("a", LIMIT_2, "r"), tick)
    op = _at_2(state, InterestCommand("a", "0", EPOCH, "r", Accrual(None, 0, LIMIT_2)), tick)
    assert state.postings["a"].op_id == op.id

"""LedgerState.apply: exactly once, in causal order, never past an invariant; overlays."""

from __future__ import annotations

import pytest
from ledger_support import (
    Ticker,
    check_invariants,
    make_op,
    open_account,
    originate,
    snapshot,
)

from dbank.ledger import (
    AccountNotFound,
    AccountType,
    Deposit,
    Grant,
    InvariantViolation,
    LedgerState,
    Op,
    OpBody,
    OpenAccount,
    OpId,
    Transfer,
    VersionVector,
    Withdrawal,
)
from dbank.money import MAX_AMOUNT


@pytest.fixture
def tick() -> Ticker:
    return Ticker()


@pytest.fixture
def state(tick: Ticker) -> LedgerState:
    """Accounts ``a`` and ``b`` (USD) and ``y`` (JPY), opened at branch 1; ``a`` holds 100
    at branch 1 and 50 at branch 2 (deposited there after it saw the opening)."""
    s = LedgerState()
    open_account(s, 1, "a", "USD", tick())
    open_account(s, 1, "b", "USD", tick())
    open_account(s, 1, "y", "JPY", tick())
    originate(s, 1, "USD", Deposit("a", 100), tick())
    originate(s, 2, "USD", Deposit("a", 50), tick())
    return s


def test_fixture_state(state: LedgerState) -> None:
    assert state.balance("a") == 150
    assert state.rights_of("a", 1) == 100
    assert state.rights_of("a", 2) == 50
    assert state.version_vector() == VersionVector({1: 4, 2: 1})
    record = state.account("a")
    assert (record.currency, record.owner_branch, record.type) == ("USD", 1, AccountType.CHECKING)
    check_invariants(state)


def test_unknown_account_is_not_found(state: LedgerState) -> None:
    with pytest.raises(AccountNotFound) as info:
        state.account("nope")
    assert info.value.metadata == {"account_id": "nope"}
    assert state.balance("nope") == 0


def test_each_op_kind_moves_rights(state: LedgerState, tick: Ticker) -> None:
    originate(state, 1, "USD", Withdrawal("a", 30), tick())
    assert (state.rights_of("a", 1), state.balance("a")) == (70, 120)
    originate(state, 2, "USD", Transfer("a", "b", 20), tick())
    assert (state.rights_of("a", 2), state.rights_of("b", 2)) == (30, 20)
    assert (state.balance("a"), state.balance("b")) == (100, 20)
    originate(state, 1, "USD", Grant("a", 70, to_branch=3), tick())
    assert (state.rights_of("a", 1), state.rights_of("a", 3)) == (0, 70)
    assert state.balance("a") == 100
    check_invariants(state)


# Exactly once ---------------------------------------------------------------------------


def test_replaying_an_op_returns_false_and_changes_nothing(
    state: LedgerState, tick: Ticker
) -> None:
    op = originate(state, 1, "USD", Deposit("b", 7), tick())
    before = snapshot(state)
    assert state.apply(op) is False
    assert snapshot(state) == before
    assert state.has_applied(op)


def test_replaying_an_old_op_changes_nothing(state: LedgerState, tick: Ticker) -> None:
    first = originate(state, 3, "USD", Deposit("b", 7), tick())
    originate(state, 3, "USD", Withdrawal("b", 7), tick())
    before = snapshot(state)
    assert state.apply(first) is False
    assert snapshot(state) == before


# Causal order ---------------------------------------------------------------------------


def test_op_before_its_deps_is_refused(state: LedgerState, tick: Ticker) -> None:
    fresh = LedgerState()
    ahead = LedgerState()
    open_account(ahead, 1, "a", "USD", tick())
    op = originate(ahead, 2, "USD", Deposit("a", 5), tick())  # deps {1: 1}
    assert not fresh.is_ready(op)
    with pytest.raises(InvariantViolation):
        fresh.apply(op)
    assert snapshot(fresh) == snapshot(LedgerState())


def test_op_after_a_gap_in_its_origin_is_refused(state: LedgerState, tick: Ticker) -> None:
    other = LedgerState()
    open_account(other, 1, "a", "USD", tick())
    skipped = make_op(other, 1, "USD", Deposit("a", 1), tick())
    other.apply(skipped)
    later = make_op(other, 1, "USD", Deposit("a", 2), tick())  # 1:3, deps {1: 2}
    replica = LedgerState()
    open_account(replica, 1, "a", "USD", tick())  # has 1:1 only
    before = snapshot(replica)
    with pytest.raises(InvariantViolation):
        replica.apply(later)
    assert snapshot(replica) == before


def test_op_whose_deps_miss_its_own_origin_is_refused(state: LedgerState, tick: Ticker) -> None:
    # 1:5 must carry deps[1] == 4 (I2); one that claims less is malformed.
    good = make_op(state, 1, "USD", Deposit("a", 1), tick())
    bad = Op(good.id, VersionVector({2: 1}), good.hlc, "r", "USD", good.body)
    assert not state.is_ready(bad)
    before = snapshot(state)
    with pytest.raises(InvariantViolation):
        state.apply(bad)
    assert snapshot(state) == before
    assert state.apply(good) is True


def test_op_with_deps_beyond_the_replica_is_refused(state: LedgerState, tick: Ticker) -> None:
    good = make_op(state, 2, "USD", Deposit("a", 1), tick())
    bad = Op(good.id, good.deps.merge({3: 1}), good.hlc, "r", "USD", good.body)
    before = snapshot(state)
    with pytest.raises(InvariantViolation):
        state.apply(bad)
    assert snapshot(state) == before


# I1 and the bounds ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("branch", "body"),
    [
        # Branch 2 holds 50 of a's 150: it may not spend 51, though the balance covers it.
        (2, Withdrawal("a", 51)),
        (2, Transfer("a", "b", 51)),
        (2, Grant("a", 51, to_branch=1)),
        (1, Withdrawal("a", 101)),
        # Branch 3 holds nothing.
        (3, Withdrawal("a", 1)),
        (3, Grant("a", 1, to_branch=1)),
        (1, Withdrawal("b", 1)),
        # Past 2^63 - 1: the share and the balance.
        (1, Deposit("a", MAX_AMOUNT)),
        (3, Deposit("a", MAX_AMOUNT - 149)),
    ],
)
def test_an_op_that_breaks_a_bound_is_refused_whole(
    state: LedgerState, tick: Ticker, branch: int, body: OpBody
) -> None:
    op = make_op(state, branch, "USD", body, tick())
    before = snapshot(state)
    with pytest.raises(InvariantViolation):
        state.apply(op)
    assert snapshot(state) == before


def test_deposit_up_to_the_limit_is_allowed(state: LedgerState, tick: Ticker) -> None:
    originate(state, 3, "USD", Deposit("a", MAX_AMOUNT - 150), tick())
    assert state.balance("a") == MAX_AMOUNT
    check_invariants(state)
    before = snapshot(state)
    with pytest.raises(InvariantViolation):
        state.apply(make_op(state, 1, "USD", Deposit("a", 1), tick()))
    assert snapshot(state) == before


def test_transfer_into_a_full_account_is_refused(state: LedgerState, tick: Ticker) -> None:
    originate(state, 1, "USD", Deposit("b", MAX_AMOUNT), tick())
    before = snapshot(state)
    with pytest.raises(InvariantViolation):
        state.apply(make_op(state, 1, "USD", Transfer("a", "b", 1), tick()))
    assert snapshot(state) == before


@pytest.mark.parametrize(
    ("currency", "body"),
    [
        ("USD", Deposit("a", 0)),
        ("USD", Deposit("a", -5)),
        ("USD", Withdrawal("a", -5)),  # would raise the share
        ("USD", Grant("a", -5, to_branch=2)),  # would take branch 2's share
        ("USD", Transfer("a", "b", 0)),
        ("USD", Deposit("ghost", 5)),
        ("USD", Transfer("a", "ghost", 5)),
        ("JPY", Deposit("a", 5)),  # a holds USD
        ("USD", Transfer("a", "y", 5)),  # y holds JPY
        ("USD", OpenAccount("a", AccountType.SAVINGS, "USD", "someone")),
    ],
)
def test_malformed_ops_are_refused_whole(
    state: LedgerState, tick: Ticker, currency: str, body: OpBody
) -> None:
    op = make_op(state, 1, currency, body, tick())
    before = snapshot(state)
    with pytest.raises(InvariantViolation):
        state.apply(op)
    assert snapshot(state) == before


def test_refused_op_can_be_followed_by_a_good_one(state: LedgerState, tick: Ticker) -> None:
    bad = make_op(state, 2, "USD", Withdrawal("a", 51), tick())
    with pytest.raises(InvariantViolation):
        state.apply(bad)
    good = make_op(state, 2, "USD", Withdrawal("a", 50), tick())
    assert good.id == bad.id
    assert state.apply(good) is True
    assert state.rights_of("a", 2) == 0


def test_state_built_from_rights_recomputes_balances() -> None:
    s = LedgerState(rights={("a", 1): 5, ("a", 2): 7, ("b", 1): 1})
    assert (s.balance("a"), s.balance("b"), s.balance("c")) == (12, 1, 0)


# Overlays --------------------------------------------------------------------------------


def test_overlay_changes_are_invisible_until_absorbed(state: LedgerState, tick: Ticker) -> None:
    before = snapshot(state)
    child = state.overlay()
    assert snapshot(child) == before  # reads fall through

    open_account(child, 1, "c", "USD", tick())
    originate(child, 2, "USD", Transfer("a", "c", 30), tick())
    originate(child, 1, "USD", Grant("a", 40, to_branch=3), tick())
    originate(child, 1, "JPY", Deposit("y", 9), tick())

    assert snapshot(state) == before
    assert "c" not in state.accounts
    assert state.balance("a") == 150
    assert child.balance("a") == 120
    assert child.version_vector() == VersionVector({1: 7, 2: 2})
    assert state.version_vector() == VersionVector({1: 4, 2: 1})

    delta = child.delta()
    assert dict(delta.accounts) == {"c": child.account("c")}
    assert dict(delta.rights) == {
        ("a", 2): 20,
        ("c", 2): 30,
        ("a", 1): 60,
        ("a", 3): 40,
        ("y", 1): 9,
    }
    assert dict(delta.applied) == {1: 7, 2: 2}
    check_invariants(child)

    expected = snapshot(child)
    state.absorb(child)
    assert snapshot(state) == expected
    check_invariants(state)


def test_empty_overlay_has_an_empty_delta(state: LedgerState) -> None:
    child = state.overlay()
    delta = child.delta()
    changed = (delta.accounts, delta.rights, delta.applied, delta.postings)
    assert [dict(part) for part in changed] == [{}, {}, {}, {}]
    before = snapshot(state)
    state.absorb(child)
    assert snapshot(state) == before


def test_refused_op_in_an_overlay_leaves_no_delta(state: LedgerState, tick: Ticker) -> None:
    child = state.overlay()
    with pytest.raises(InvariantViolation):
        child.apply(make_op(child, 2, "USD", Withdrawal("a", 51), tick()))
    delta = child.delta()
    changed = (delta.accounts, delta.rights, delta.applied, delta.postings)
    assert [dict(part) for part in changed] == [{}, {}, {}, {}]


def test_discarded_overlay_leaves_the_parent_alone(state: LedgerState, tick: Ticker) -> None:
    before = snapshot(state)
    child = state.overlay()
    originate(child, 1, "USD", Withdrawal("a", 100), tick())
    del child
    assert snapshot(state) == before
    # The same op id is free again in the parent.
    op = make_op(state, 1, "USD", Deposit("a", 1), tick())
    assert op.id == OpId(1, 5)


def test_nested_overlays(state: LedgerState, tick: Ticker) -> None:
    child = state.overlay()
    originate(child, 1, "USD", Deposit("b", 5), tick())
    grandchild = child.overlay()
    originate(grandchild, 1, "USD", Deposit("b", 6), tick())
    assert (state.balance("b"), child.balance("b"), grandchild.balance("b")) == (0, 5, 11)
    assert dict(grandchild.delta().rights) == {("b", 1): 11}
    child.absorb(grandchild)
    assert child.balance("b") == 11
    assert dict(child.delta().rights) == {("b", 1): 11}
    state.absorb(child)
    assert state.balance("b") == 11
    assert state.version_vector()[1] == 6


def test_delta_of_a_plain_state_is_an_error(state: LedgerState) -> None:
    with pytest.raises(TypeError):
        state.delta()

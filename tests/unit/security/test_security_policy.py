"""The authorization policy: the whole role x action x account table, and refusals that never
tell whether an account exists."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dbank.errors import PermissionDenied
from dbank.security import INSECURE_PRINCIPAL, Action, Principal, Role, may, require

ALICE = "alice"
OWN, OTHER, UNKNOWN = "own", "other", "unknown"
_OWNER = {OWN: ALICE, OTHER: "bob", UNKNOWN: None}

A = Action
EVERY = set(Action)
# The table of design §11, written out rather than derived.
ALLOWED: dict[Role, dict[str, set[Action]]] = {
    Role.CUSTOMER: {
        OWN: {A.OPEN_ACCOUNT, A.READ, A.DEPOSIT, A.WITHDRAW, A.TRANSFER},
        OTHER: set(),
        UNKNOWN: set(),
    },
    Role.TELLER: {
        OWN: {A.OPEN_ACCOUNT, A.READ, A.DEPOSIT, A.WITHDRAW, A.TRANSFER},
        OTHER: {A.OPEN_ACCOUNT, A.READ, A.DEPOSIT, A.WITHDRAW, A.TRANSFER},
        UNKNOWN: {A.OPEN_ACCOUNT, A.READ, A.DEPOSIT, A.WITHDRAW, A.TRANSFER},
    },
    Role.AUDITOR: {OWN: {A.READ}, OTHER: {A.READ}, UNKNOWN: {A.READ}},
    Role.ADMIN: {OWN: EVERY, OTHER: EVERY, UNKNOWN: EVERY},
}


@pytest.mark.parametrize(
    ("role", "action", "account"),
    list(itertools.product(Role, Action, (OWN, OTHER, UNKNOWN))),
    ids=lambda v: str(v),
)
def test_the_whole_table(role: Role, action: Action, account: str) -> None:
    principal = Principal(ALICE, role)
    expected = action in ALLOWED[role][account]
    assert may(principal, action, owner=_OWNER[account]) is expected
    if expected:
        require(principal, action, owner=_OWNER[account])
    else:
        with pytest.raises(PermissionDenied) as refused:
            require(principal, action, owner=_OWNER[account])
        assert refused.value.reason == "PERMISSION_DENIED"


@pytest.mark.parametrize("action", list(Action))
def test_refusals_of_someone_elses_and_of_no_account_read_the_same(action: Action) -> None:
    """No existence oracle: the message depends on the caller and the action only."""
    customer = Principal(ALICE, Role.CUSTOMER)
    with pytest.raises(PermissionDenied) as other:
        require(customer, action, owner="bob")
    with pytest.raises(PermissionDenied) as unknown:
        require(customer, action, owner=None)
    assert other.value.message == unknown.value.message
    assert "bob" not in other.value.message
    assert (other.value.reason, other.value.metadata) == (unknown.value.reason, {})


def test_a_customer_opens_accounts_for_itself_only() -> None:
    customer = Principal(ALICE, Role.CUSTOMER)
    assert may(customer, Action.OPEN_ACCOUNT, owner=ALICE)
    assert not may(customer, Action.OPEN_ACCOUNT, owner="bob")
    assert may(Principal("t", Role.TELLER), Action.OPEN_ACCOUNT, owner="bob")
    assert not may(Principal("a", Role.AUDITOR), Action.OPEN_ACCOUNT, owner="a")


def test_interest_is_for_admins_only() -> None:
    for role in Role:
        allowed = may(Principal(ALICE, role), Action.INTEREST, owner=ALICE)
        assert allowed is (role is Role.ADMIN)


def test_an_insecure_branch_lets_everyone_do_everything() -> None:
    assert INSECURE_PRINCIPAL.role is Role.ADMIN
    for action, owner in itertools.product(Action, (None, "bob", INSECURE_PRINCIPAL.subject)):
        assert may(INSECURE_PRINCIPAL, action, owner=owner)


def test_roles_are_the_token_role_strings() -> None:
    assert [r.value for r in Role] == ["customer", "teller", "auditor", "admin"]
    assert Role("teller") is Role.TELLER


def test_principals_are_values() -> None:
    assert Principal(ALICE, Role.CUSTOMER) == Principal(ALICE, Role.CUSTOMER)
    assert len({Principal(ALICE, Role.CUSTOMER), Principal(ALICE, Role.CUSTOMER)}) == 1
    with pytest.raises(AttributeError):
        Principal(ALICE, Role.CUSTOMER).role = Role.ADMIN  # type: ignore[misc]


@given(
    subject=st.text(min_size=1, max_size=8),
    owner=st.none() | st.text(max_size=8),
    role=st.sampled_from(Role),
    action=st.sampled_from(Action),
)
def test_may_depends_only_on_role_action_and_ownership(
    subject: str, owner: str | None, role: Role, action: Action
) -> None:
    principal = Principal(subject, role)
    relation = OWN if owner == subject else UNKNOWN if owner is None else OTHER
    assert may(principal, action, owner=owner) is (action in ALLOWED[role][relation])

"""History entries, page tokens and statements in the pure ledger."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_support import originate

from dbank.ledger import (
    AccountType,
    Deposit,
    EntryKind,
    Grant,
    Interest,
    InvalidArgument,
    LedgerState,
    Op,
    OpenAccount,
    PageToken,
    Transfer,
    VersionVector,
    Withdrawal,
    history_accounts,
)
from dbank.ledger.clock import day_start_hlc
from dbank.ledger.history import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    bounded_page_size,
    change_of,
    day_position,
    entries,
    position,
)
from dbank.ledger.statement import MAX_STATEMENT_OPS, build_statement, check_range, check_size

SETTINGS = settings(max_examples=200, deadline=None)


def _day(n: int) -> int:
    """An HLC at noon of the n-th day of February 2024."""
    return day_start_hlc(dt.date(2024, 2, n)) + (43_200_000 << 16)


def _ledger() -> tuple[LedgerState, list[Op]]:
    state = LedgerState()
    ops = [
        originate(state, 1, "USD", OpenAccount("a", AccountType.SAVINGS, "USD", "o"), _day(1)),
        originate(state, 1, "USD", OpenAccount("b", AccountType.CHECKING, "USD", "o"), _day(1) + 1),
        originate(state, 1, "USD", Deposit("a", 10_000), _day(2)),
        originate(state, 1, "USD", Transfer("a", "b", 2_500), _day(3)),
        originate(state, 1, "USD", Grant("a", 1_000, 2), _day(4)),
        originate(state, 1, "USD", Withdrawal("a", 500), _day(5)),
        originate(state, 1, "USD", Interest("a", 7, dt.date(2024, 2, 5), "1", 7_000), _day(6)),
        originate(state, 1, "USD", Transfer("b", "a", 100), _day(7)),
    ]
    return state, ops


def test_history_holds_every_op_that_opens_or_changes_the_balance_not_grants() -> None:
    _, ops = _ledger()
    assert [history_accounts(op) for op in ops] == [
        ("a",), ("b",), ("a",), ("a", "b"), (), ("a",), ("a",), ("b", "a"),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="grant"):
        change_of(ops[4], "a")


def test_entries_carry_kind_change_counterparty_and_running_balance() -> None:
    state, ops = _ledger()
    mine = [op for op in ops if "a" in history_accounts(op)]
    listed = entries(mine, "a", 0)
    assert [(e.kind, e.change, e.balance, e.counterparty) for e in listed] == [
        (EntryKind.OPEN, 0, 0, ""),
        (EntryKind.DEPOSIT, 10_000, 10_000, ""),
        (EntryKind.TRANSFER_OUT, -2_500, 7_500, "b"),
        (EntryKind.WITHDRAWAL, -500, 7_000, ""),
        (EntryKind.INTEREST, 7, 7_007, ""),
        (EntryKind.TRANSFER_IN, 100, 7_107, "b"),
    ]
    assert listed[-1].balance == state.balance("a")
    assert [e.day.day for e in listed] == [1, 2, 3, 5, 6, 7]
    assert [e.request_id for e in listed] == [op.request_id for op in mine]


def test_day_position_is_before_every_op_of_the_day_and_after_earlier_ones() -> None:
    _, ops = _ledger()
    start = day_position(dt.date(2024, 2, 3))
    assert [op for op in ops if position(op) > start] == ops[3:]


@pytest.mark.parametrize(
    ("asked", "size"), [(0, DEFAULT_PAGE_SIZE), (1, 1), (1000, 1000), (10**6, MAX_PAGE_SIZE)]
)
def test_page_size_follows_aip_158(asked: int, size: int) -> None:
    assert bounded_page_size(asked) == size


def test_a_negative_page_size_is_refused() -> None:
    with pytest.raises(InvalidArgument) as error:
        bounded_page_size(-1)
    assert (error.value.reason, error.value.metadata["field"]) == ("INVALID_PAGE_SIZE", "page_size")


@SETTINGS
@given(
    account=st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True),
    vector=st.dictionaries(st.integers(1, 2**32 - 1), st.integers(1, 2**63 - 1), max_size=8),
    after=st.tuples(
        st.integers(0, 2**63 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**63 - 1)
    ),
    balance=st.integers(0, 2**63 - 1),
)
def test_a_page_token_round_trips(
    account: str, vector: dict[int, int], after: tuple[int, int, int], balance: int
) -> None:
    token = PageToken(account, VersionVector(vector), after, balance)
    text = token.encode()
    assert text.isascii()
    assert PageToken.decode(text, account) == token


def _refused(text: str, account: str = "a") -> None:
    with pytest.raises(InvalidArgument) as error:
        PageToken.decode(text, account)
    assert (error.value.reason, error.value.metadata["field"]) == (
        "INVALID_PAGE_TOKEN",
        "page_token",
    )


@pytest.mark.parametrize("text", ["x", "not a token", "====", "eyJhIjoxfQ", "0" * 200, "€"])
def test_a_token_this_code_did_not_make_is_refused(text: str) -> None:
    _refused(text)


def test_a_changed_token_or_one_of_another_listing_is_refused() -> None:
    text = PageToken("a", VersionVector({1: 5}), (10, 1, 3), 77).encode()
    _refused(text, "b")
    for i in range(len(text)):
        changed = text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1 :]
        _refused(changed)


def test_a_statement_is_opening_plus_entries() -> None:
    state, ops = _ledger()
    since = [op for op in ops if "a" in history_accounts(op) and op.hlc >= _day(3) - 10**9]
    statement = build_statement(
        "a",
        "USD",
        dt.date(2024, 2, 3),
        dt.date(2024, 2, 6),
        balance_now=state.balance("a"),
        since_first_day=since,
    )
    assert statement.opening_balance == 10_000
    assert [e.kind for e in statement.entries] == [
        EntryKind.TRANSFER_OUT,
        EntryKind.WITHDRAWAL,
        EntryKind.INTEREST,
    ]
    assert statement.interest == 7
    assert statement.closing_balance == 7_007
    assert statement.closing_balance == statement.opening_balance + sum(
        e.change for e in statement.entries
    )
    quiet = build_statement(
        "a", "USD", dt.date(2024, 3, 1), dt.date(2024, 3, 9), balance_now=7_107, since_first_day=[]
    )
    assert (quiet.opening_balance, quiet.entries, quiet.closing_balance) == (7_107, (), 7_107)


def test_a_statement_range_must_be_ordered_and_bounded() -> None:
    check_range(dt.date(2024, 2, 1), dt.date(2024, 2, 1))
    with pytest.raises(InvalidArgument) as error:
        check_range(dt.date(2024, 2, 2), dt.date(2024, 2, 1))
    assert error.value.reason == "INVALID_DATE_RANGE"
    check_size(MAX_STATEMENT_OPS)
    with pytest.raises(InvalidArgument) as error:
        check_size(MAX_STATEMENT_OPS + 1)
    assert error.value.reason == "RANGE_TOO_LARGE"

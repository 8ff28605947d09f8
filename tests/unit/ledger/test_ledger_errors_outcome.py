"""The error tree and stored outcomes: a stored failure comes back as the same error."""

from __future__ import annotations

import pytest

from dbank.errors import ERROR_CLASSES, error_class_for_reason, error_class_named
from dbank.ledger import (
    Aborted,
    AccountNotFound,
    BranchesUnreachable,
    DayNotClosed,
    DbankError,
    DeadlineExceeded,
    EscrowShortfall,
    InsufficientFunds,
    Internal,
    InvalidArgument,
    OpId,
    Outcome,
    RequestBranchUnreachable,
    RequestInProgress,
    SessionNotCovered,
    Unavailable,
)


def test_reasons_are_unique_upper_snake_case() -> None:
    reasons = [cls.reason for cls in ERROR_CLASSES]
    assert len(set(reasons)) == len(reasons)
    for reason in reasons:
        assert reason.replace("_", "").isalpha(), reason
        assert reason.isupper(), reason


def test_only_retryable_errors_are_transient() -> None:
    transient = {cls for cls in ERROR_CLASSES if cls.transient}
    assert transient == {
        Aborted,
        RequestInProgress,
        Unavailable,
        BranchesUnreachable,
        SessionNotCovered,
        DayNotClosed,
        RequestBranchUnreachable,
        DeadlineExceeded,
    }
    assert EscrowShortfall.transient
    assert issubclass(EscrowShortfall, Aborted)


def test_lookup_by_name_and_reason() -> None:
    for cls in ERROR_CLASSES:
        assert error_class_named(cls.__name__) is cls
        assert error_class_for_reason(cls.reason, Internal) is cls
    assert error_class_named("NoSuchError") is Internal
    assert error_class_for_reason("TOO_MANY_DECIMALS", InvalidArgument) is InvalidArgument


def test_error_carries_message_reason_and_string_metadata() -> None:
    error = InvalidArgument("bad", reason="TOO_MANY_DECIMALS", field="amount", count=3)  # type: ignore[arg-type]
    assert str(error) == "bad"
    assert error.reason == "TOO_MANY_DECIMALS"
    assert error.metadata == {"field": "amount", "count": "3"}
    assert InvalidArgument.reason == "INVALID_ARGUMENT"  # the class is untouched
    assert "TOO_MANY_DECIMALS" in repr(error)


@pytest.mark.parametrize("cls", ERROR_CLASSES)
def test_every_definite_error_survives_an_outcome(cls: type[DbankError]) -> None:
    error = cls("it went wrong", account_id="a", field="f")
    outcome = Outcome.failure("Deposit|a|1", error)
    assert outcome.op_id is None
    assert outcome.error_type == cls.__name__
    again = outcome.error()
    assert type(again) is cls
    assert isinstance(again, DbankError)
    assert (again.message, again.reason, again.metadata) == (
        "it went wrong",
        cls.reason,
        {"account_id": "a", "field": "f"},
    )


def test_an_outcome_keeps_an_overridden_reason() -> None:
    error = InvalidArgument("x", reason="SAME_ACCOUNT", field="to_account_id")
    again = Outcome.failure("fp", error).error()
    assert again is not None
    assert again.reason == "SAME_ACCOUNT"


def test_success_outcome() -> None:
    outcome = Outcome("Deposit|a|1", OpId(1, 2), (("a", 7),))
    assert outcome.error() is None
    assert outcome.balance("a") == 7
    with pytest.raises(KeyError):
        outcome.balance("b")


def test_not_found_metadata_names_the_account() -> None:
    error = AccountNotFound("no account 'x'", account_id="x")
    assert Outcome.failure("fp", error).error_metadata == (("account_id", "x"),)
    assert InsufficientFunds.reason == "INSUFFICIENT_FUNDS"

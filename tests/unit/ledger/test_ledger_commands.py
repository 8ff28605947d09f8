"""Commands are validated when made: reason codes and the offending field."""

from __future__ import annotations

from typing import Any

import pytest

from dbank.ledger import (
    AccountType,
    DepositCommand,
    InvalidArgument,
    OpenAccountCommand,
    TransferCommand,
    WithdrawCommand,
)
from dbank.money import MAX_AMOUNT

BAD_IDS = ["", "a" * 65, "with space", " lead", "trail ", "tab\there", "é", "a/b", "a|b", "a\n"]
GOOD_IDS = ["a", "A" * 64, "acct_1.x:y-z", "0", "-", "..."]
BAD_REQUEST_IDS = ["", "r" * 65, "é" * 33]  # 0, 65 and 66 bytes
GOOD_REQUEST_IDS = ["r", "r" * 64, "é" * 32, "with space and / slash"]  # é is 2 bytes
BAD_AMOUNTS: list[Any] = [0, -1, -MAX_AMOUNT, MAX_AMOUNT + 1, 2**64]


def open_cmd(**changes: Any) -> OpenAccountCommand:
    fields = {
        "account_id": "acct",
        "type": AccountType.CHECKING,
        "currency": "USD",
        "owner": "alice",
        "request_id": "r1",
    }
    return OpenAccountCommand(**(fields | changes))


def deposit(**changes: Any) -> DepositCommand:
    return DepositCommand(**({"account_id": "acct", "amount": 5, "request_id": "r1"} | changes))


def withdraw(**changes: Any) -> WithdrawCommand:
    return WithdrawCommand(**({"account_id": "acct", "amount": 5, "request_id": "r1"} | changes))


def transfer(**changes: Any) -> TransferCommand:
    fields = {"from_account_id": "a", "to_account_id": "b", "amount": 5, "request_id": "r1"}
    return TransferCommand(**(fields | changes))


MAKERS = [open_cmd, deposit, withdraw, transfer]
ID_FIELDS = [
    (open_cmd, "account_id", "INVALID_ACCOUNT_ID"),
    (open_cmd, "owner", "INVALID_OWNER"),
    (deposit, "account_id", "INVALID_ACCOUNT_ID"),
    (withdraw, "account_id", "INVALID_ACCOUNT_ID"),
    (transfer, "from_account_id", "INVALID_ACCOUNT_ID"),
    (transfer, "to_account_id", "INVALID_ACCOUNT_ID"),
]


def check_refused(error: pytest.ExceptionInfo[InvalidArgument], reason: str, field: str) -> None:
    assert error.value.reason == reason
    assert error.value.metadata["field"] == field
    assert not error.value.transient


@pytest.mark.parametrize(("make", "field", "reason"), ID_FIELDS)
@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_ids_are_refused(make: Any, field: str, reason: str, bad: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        make(**{field: bad})
    check_refused(error, reason, field)


@pytest.mark.parametrize(("make", "field", "reason"), ID_FIELDS)
@pytest.mark.parametrize("good", GOOD_IDS)
def test_good_ids_are_accepted(make: Any, field: str, reason: str, good: str) -> None:
    if make is transfer:
        other = "to_account_id" if field == "from_account_id" else "from_account_id"
        command = make(**{field: good, other: good + "x" if len(good) < 64 else "x"})
    else:
        command = make(**{field: good})
    assert getattr(command, field) == good


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize("bad", BAD_REQUEST_IDS)
def test_bad_request_ids_are_refused(make: Any, bad: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        make(request_id=bad)
    check_refused(error, "INVALID_REQUEST_ID", "request_id")


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize("good", GOOD_REQUEST_IDS)
def test_request_ids_of_1_to_64_bytes_are_accepted(make: Any, good: str) -> None:
    assert make(request_id=good).request_id == good


@pytest.mark.parametrize("make", [deposit, withdraw, transfer])
@pytest.mark.parametrize("bad", BAD_AMOUNTS)
def test_bad_amounts_are_refused(make: Any, bad: int) -> None:
    with pytest.raises(InvalidArgument) as error:
        make(amount=bad)
    check_refused(error, "INVALID_AMOUNT", "amount")


@pytest.mark.parametrize("make", [deposit, withdraw, transfer])
@pytest.mark.parametrize("bad", [True, 1.0, "5", None])
def test_amounts_must_be_ints(make: Any, bad: Any) -> None:
    with pytest.raises(InvalidArgument) as error:
        make(amount=bad)
    assert error.value.metadata["field"] == "amount"


@pytest.mark.parametrize("make", [deposit, withdraw, transfer])
@pytest.mark.parametrize("good", [1, MAX_AMOUNT])
def test_amounts_from_1_to_the_limit_are_accepted(make: Any, good: int) -> None:
    assert make(amount=good).amount == good


def test_same_account_transfer_is_refused() -> None:
    with pytest.raises(InvalidArgument) as error:
        transfer(from_account_id="a", to_account_id="a")
    check_refused(error, "SAME_ACCOUNT", "to_account_id")


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize("bad", ["XXX", "usd", "US", "USDD", "€"])
def test_unknown_currencies_are_refused(make: Any, bad: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        make(currency=bad)
    check_refused(error, "UNKNOWN_CURRENCY", "currency")


@pytest.mark.parametrize("make", [deposit, withdraw, transfer])
@pytest.mark.parametrize("good", ["", "USD", "JPY", "KWD", "CLF"])
def test_writes_may_name_a_currency_or_not(make: Any, good: str) -> None:
    assert make(currency=good).currency == good


def test_idempotency_keys_scope_by_the_first_account() -> None:
    assert open_cmd().key == ("acct", "r1")
    assert deposit().key == ("acct", "r1")
    assert withdraw().key == ("acct", "r1")
    assert transfer().key == ("a", "r1")


def test_fingerprints_hold_the_defining_parameters_only() -> None:
    assert deposit().fingerprint == deposit(request_id="other", currency="USD").fingerprint
    assert deposit().fingerprint != deposit(amount=6).fingerprint
    assert deposit().fingerprint != withdraw().fingerprint
    assert transfer().fingerprint != transfer(to_account_id="c").fingerprint
    assert transfer().fingerprint != transfer(amount=6).fingerprint
    assert open_cmd().fingerprint != open_cmd(type=AccountType.SAVINGS).fingerprint
    assert open_cmd().fingerprint != open_cmd(currency="JPY").fingerprint
    assert open_cmd().fingerprint != open_cmd(owner="bob").fingerprint
    assert open_cmd().fingerprint == open_cmd(request_id="r2").fingerprint
    every = [open_cmd(), deposit(), withdraw(), transfer()]
    assert len({c.fingerprint for c in every}) == 4


def test_commands_are_frozen() -> None:
    command = deposit()
    with pytest.raises(AttributeError):
        command.amount = 10**6  # type: ignore[misc]

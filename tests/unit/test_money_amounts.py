"""Exact money: decimal strings to minor units and back, per currency exponent."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dbank.ledger import InvalidArgument
from dbank.money import (
    CURRENCIES,
    DEFAULT_CURRENCY,
    MAX_AMOUNT,
    Currency,
    check_amount,
    currency,
    format_amount,
    parse_amount,
)

USD, JPY, KWD, CLF = (currency(c) for c in ("USD", "JPY", "KWD", "CLF"))
SETTINGS = settings(max_examples=200, deadline=None)


def test_exponents() -> None:
    assert [c.exponent for c in (USD, JPY, KWD, CLF)] == [2, 0, 3, 4]
    assert currency("EUR") == Currency("EUR", 2)
    assert MAX_AMOUNT == 2**63 - 1


def test_every_code_is_three_capitals_with_a_known_exponent() -> None:
    assert len(CURRENCIES) > 150
    for code, cur in CURRENCIES.items():
        assert cur.code == code
        assert len(code) == 3
        assert code.isascii()
        assert code.isupper()
        assert cur.exponent in (0, 2, 3, 4)


def test_empty_code_means_the_default() -> None:
    assert DEFAULT_CURRENCY == "USD"
    assert currency("") == USD


@pytest.mark.parametrize("code", ["XYZ", "usd", "Usd", "US", "USDX", " USD", "EURO", "€"])
def test_unknown_currency(code: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        currency(code)
    assert error.value.reason == "UNKNOWN_CURRENCY"
    assert error.value.metadata == {"field": "currency"}


@pytest.mark.parametrize(
    ("text", "cur", "minor"),
    [
        ("12.34", USD, 1234),
        ("12.3", USD, 1230),
        ("12", USD, 1200),
        ("0.01", USD, 1),
        ("007.50", USD, 750),
        ("  5.00\n", USD, 500),
        ("1", JPY, 1),
        ("1000000", JPY, 1_000_000),
        ("1.234", KWD, 1234),
        ("1.2", KWD, 1200),
        ("0.001", KWD, 1),
        ("0.0001", CLF, 1),
        ("3.1415", CLF, 31415),
        ("92233720368547758.07", USD, MAX_AMOUNT),
        (str(MAX_AMOUNT), JPY, MAX_AMOUNT),
        ("922337203685477.5807", CLF, MAX_AMOUNT),
    ],
)
def test_parse_examples(text: str, cur: Currency, minor: int) -> None:
    assert parse_amount(text, cur) == minor


@pytest.mark.parametrize(
    ("minor", "cur", "text"),
    [
        (1234, USD, "12.34"),
        (1, USD, "0.01"),
        (100, USD, "1.00"),
        (0, USD, "0.00"),
        (-5, USD, "-0.05"),
        (-1234, USD, "-12.34"),
        (7, JPY, "7"),
        (-7, JPY, "-7"),
        (1, KWD, "0.001"),
        (1, CLF, "0.0001"),
        (MAX_AMOUNT, USD, "92233720368547758.07"),
        (MAX_AMOUNT, JPY, "9223372036854775807"),
    ],
)
def test_format_examples(minor: int, cur: Currency, text: str) -> None:
    assert format_amount(minor, cur) == text


@SETTINGS
@given(st.integers(1, MAX_AMOUNT), st.sampled_from([USD, JPY, KWD, CLF]))
def test_format_then_parse_is_exact(minor: int, cur: Currency) -> None:
    text = format_amount(minor, cur)
    assert parse_amount(text, cur) == minor
    _, _, fraction = text.partition(".")
    assert len(fraction) == cur.exponent


@SETTINGS
@given(
    st.one_of(st.integers(0, 1_000), st.integers(0, 10**20)),
    st.sampled_from([USD, JPY, KWD, CLF]),
    st.data(),
)
def test_parse_is_exact(whole: int, cur: Currency, data: st.DataObject) -> None:
    digits = data.draw(st.text("0123456789", min_size=0, max_size=cur.exponent))
    text = f"{whole}.{digits}" if digits else str(whole)
    expected = whole * 10**cur.exponent + int(digits.ljust(cur.exponent, "0") or "0")
    if not 0 < expected <= MAX_AMOUNT:
        with pytest.raises(InvalidArgument) as error:
            parse_amount(text, cur)
        assert error.value.reason == "INVALID_AMOUNT"
        return
    minor = parse_amount(text, cur)
    assert minor == expected
    assert parse_amount(format_amount(minor, cur), cur) == minor


@pytest.mark.parametrize(
    ("text", "cur"),
    [
        ("1.234", USD),
        ("0.001", USD),
        ("1.230", USD),  # exact, but more decimals than USD has
        ("1.5", JPY),
        ("1.0", JPY),
        ("1.2345", KWD),
        ("1.23456", CLF),
    ],
)
def test_too_many_decimals_is_an_error_not_a_rounding(text: str, cur: Currency) -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_amount(text, cur)
    assert error.value.reason == "TOO_MANY_DECIMALS"
    assert error.value.metadata == {"field": "amount"}


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "abc",
        "-1",
        "-0.01",
        "+1",
        "1.",
        ".5",
        "1e3",
        "1E3",
        "1,000",
        "1 000",
        "1_000",
        "0x10",
        "NaN",
        "inf",
        "12.34.56",
        "\u0661\u0662",  # Arabic-Indic digits
        "\uff11\uff12",  # full-width digits
        "0",
        "0.00",
        "000",
        "92233720368547758.08",  # 2^63 cents
        "100000000000000000000",
    ],
)
def test_invalid_amounts(text: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_amount(text, USD)
    assert error.value.reason == "INVALID_AMOUNT"
    assert error.value.metadata == {"field": "amount"}


@pytest.mark.parametrize(
    ("text", "cur"),
    [(str(MAX_AMOUNT + 1), JPY), ("922337203685477.5808", CLF), ("9223372036854775.808", KWD)],
)
def test_one_past_the_limit_is_invalid(text: str, cur: Currency) -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_amount(text, cur)
    assert error.value.reason == "INVALID_AMOUNT"


def test_field_name_is_carried() -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_amount("x", USD, field="opening_balance")
    assert error.value.metadata == {"field": "opening_balance"}


def test_absurdly_long_numbers_are_invalid_amounts() -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_amount("9" * 5_000, USD)
    assert error.value.reason == "INVALID_AMOUNT"


@pytest.mark.parametrize("amount", [1, 2, MAX_AMOUNT])
def test_check_amount_accepts(amount: int) -> None:
    assert check_amount(amount) == amount


@pytest.mark.parametrize("amount", [0, -1, MAX_AMOUNT + 1, -(2**63)])
def test_check_amount_refuses_out_of_range(amount: int) -> None:
    with pytest.raises(InvalidArgument) as error:
        check_amount(amount, field="x")
    assert error.value.reason == "INVALID_AMOUNT"
    assert error.value.metadata == {"field": "x"}


@pytest.mark.parametrize("amount", [True, False, 1.0, "1", None])
def test_check_amount_refuses_non_ints(amount: Any) -> None:
    with pytest.raises(InvalidArgument) as error:
        check_amount(amount)
    assert error.value.metadata == {"field": "amount"}

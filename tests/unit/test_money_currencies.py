"""The ISO 4217 table: each currency's minor-unit exponent, and exact amounts in every one."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dbank.money import CURRENCIES, MAX_AMOUNT, Currency, currency, format_amount, parse_amount

EXPONENTS = {
    0: ["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV",
        "XAF", "XOF", "XPF"],
    2: ["USD", "EUR", "GBP", "CHF", "CNY", "INR", "BRL", "MXN", "ZAR", "SEK", "HUF", "IDR"],
    3: ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"],
    4: ["CLF", "UYW"],
}  # fmt: skip


@pytest.mark.parametrize(
    ("code", "exponent"), [(code, e) for e, codes in EXPONENTS.items() for code in codes]
)
def test_minor_unit_exponents_follow_iso_4217(code: str, exponent: int) -> None:
    assert currency(code) == Currency(code, exponent)


@pytest.mark.parametrize("code", ["XAU", "XDR", "XXX", "HRK", "EEK"])
def test_codes_without_a_minor_unit_or_withdrawn_are_unknown(code: str) -> None:
    assert code not in CURRENCIES


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(CURRENCIES)), st.integers(1, MAX_AMOUNT))
def test_every_currency_prints_and_parses_exactly(code: str, minor: int) -> None:
    cur = currency(code)
    text = format_amount(minor, cur)
    assert parse_amount(text, cur) == minor
    whole, _, fraction = text.partition(".")
    assert len(fraction) == cur.exponent
    assert int(whole + fraction) == minor

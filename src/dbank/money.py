"""Exact money: ISO 4217 currencies and amounts in minor units.

An amount is an ``int`` count of the currency's minor units (cents for USD, yen for JPY,
fils for KWD). Decimal strings such as ``"12.34"`` are parsed exactly; a string with more
decimals than the currency has is an error, never a rounding. No float is ever involved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dbank.errors import InvalidArgument, shown

MAX_AMOUNT = 2**63 - 1
"""The largest amount, balance or escrow share: the int64 range of the wire and storage."""

DEFAULT_CURRENCY = "USD"

# Active ISO 4217 codes by minor-unit exponent (ISO 4217 amendment list, 2025).
_CODES_BY_EXPONENT = {
    0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF",
    2: (
        "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN "
        "BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN "
        "ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES "
        "KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK "
        "MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR "
        "SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD "
        "TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL"
    ),
    3: "BHD IQD JOD KWD LYD OMR TND",
    4: "CLF UYW",
}


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency: its code and the number of digits of its minor unit."""

    code: str
    exponent: int


CURRENCIES: dict[str, Currency] = {
    code: Currency(code, exponent)
    for exponent, codes in _CODES_BY_EXPONENT.items()
    for code in codes.split()
}

_DECIMAL = re.compile(r"(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?")
# More digits than any int64 count of minor units can have, with room for leading zeros;
# longer strings are refused before int() sees them.
_MAX_DECIMAL_CHARS = 64


def currency(code: str) -> Currency:
    """Return the currency for an ISO 4217 code (``""`` means USD).

    Raises:
        InvalidArgument: ``UNKNOWN_CURRENCY`` if the code is not an active ISO 4217 code.
    """
    found = CURRENCIES.get(code or DEFAULT_CURRENCY)
    if found is None:
        raise InvalidArgument(
            f"unknown currency {shown(code)}: expected an ISO 4217 code such as 'USD'",
            reason="UNKNOWN_CURRENCY",
            field="currency",
        )
    return found


def check_amount(amount: int, *, field: str = "amount") -> int:
    """Return ``amount`` if it is a valid amount of minor units: 1 to 2^63 - 1.

    Raises:
        InvalidArgument: ``INVALID_AMOUNT`` otherwise.
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidArgument(f"{field} must be an integer count of minor units", field=field)
    if amount <= 0:
        raise InvalidArgument(
            f"{field} must be positive, got {amount}", reason="INVALID_AMOUNT", field=field
        )
    if amount > MAX_AMOUNT:
        raise InvalidArgument(
            f"{field} must be at most {MAX_AMOUNT} minor units, got {amount}",
            reason="INVALID_AMOUNT",
            field=field,
        )
    return amount


def parse_amount(text: str, cur: Currency, *, field: str = "amount") -> int:
    """Parse a decimal string such as ``"12.34"`` into minor units of ``cur``, exactly.

    Raises:
        InvalidArgument: ``INVALID_AMOUNT`` for anything but a positive decimal number
            within range, ``TOO_MANY_DECIMALS`` for more decimals than the currency has.
    """
    text = text.strip()
    match = _DECIMAL.fullmatch(text) if len(text) <= _MAX_DECIMAL_CHARS else None
    if match is None:
        raise InvalidArgument(
            f"{field} must be a positive decimal number such as '12.34', got {shown(text)}",
            reason="INVALID_AMOUNT",
            field=field,
        )
    fraction = match["fraction"] or ""
    if len(fraction) > cur.exponent:
        raise InvalidArgument(
            f"{field} {text!r} has {len(fraction)} decimals; {cur.code} has {cur.exponent}",
            reason="TOO_MANY_DECIMALS",
            field=field,
        )
    minor = int(match["whole"]) * 10**cur.exponent + int(fraction.ljust(cur.exponent, "0") or 0)
    return check_amount(minor, field=field)


def format_amount(minor: int, cur: Currency) -> str:
    """Format minor units of ``cur`` as an exact decimal string (``1234`` USD → ``"12.34"``)."""
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**cur.exponent)
    if cur.exponent == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:0{cur.exponent}d}"

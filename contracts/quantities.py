"""Quantities and money: integers of the smallest unit inside, decimal strings on the wire.

A quantity with more decimals than its instrument allows, a negative, a zero or a non-number is
refused, never rounded. Money is in fen; the one rounding (amount = price × quantity) is
half-up to the fen, explicitly.
"""

import re
from decimal import ROUND_HALF_UP, Decimal

from contracts.errors import Refused

_DECIMAL = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?")
MAX_UNITS = 2**62
FEN = Decimal("0.01")
PRICE_DECIMALS = 4


def parse_units(value: object, decimals: int, *, field: str) -> int:
    """``"12.345"`` with 3 decimals → 12345. Refuses anything that is not a positive decimal
    string with at most ``decimals`` digits after the point."""
    if not isinstance(value, str):
        raise Refused("INVALID_QUANTITY", f"{field} must be a decimal string such as \"12.5\", not {value!r}")
    match = _DECIMAL.fullmatch(value)
    if not match:
        raise Refused("INVALID_QUANTITY", f"{field} {value!r} is not a non-negative decimal number")
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > decimals:
        raise Refused("INVALID_QUANTITY",
                      f"{field} {value!r} has {len(fraction)} decimals; at most {decimals} are allowed")
    units = int(whole) * 10**decimals + int(fraction.ljust(decimals, "0") or 0)
    if units == 0:
        raise Refused("INVALID_QUANTITY", f"{field} must be greater than zero")
    if units >= MAX_UNITS:
        raise Refused("INVALID_QUANTITY", f"{field} {value!r} is too large")
    return units


def format_units(units: int, decimals: int) -> str:
    """12345 with 3 decimals → ``"12.345"``; always exactly ``decimals`` digits after the point."""
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), 10**decimals)
    return f"{sign}{whole}.{fraction:0{decimals}d}" if decimals else f"{sign}{whole}"


def parse_price(value: object, *, field: str = "price") -> Decimal:
    """A price in 元 per display unit: a positive decimal string with at most 4 decimals."""
    units = parse_units(value, PRICE_DECIMALS, field=field)
    return Decimal(units).scaleb(-PRICE_DECIMALS)


def trade_amount(price: Decimal, quantity_units: int, decimals: int) -> int:
    """price × quantity in fen, rounded half-up to the fen; refused if the ledger cannot keep it."""
    quantity = Decimal(quantity_units).scaleb(-decimals)
    fen = (price * quantity).scaleb(2).to_integral_value(rounding=ROUND_HALF_UP)
    if fen >= MAX_UNITS:
        raise Refused("INVALID_QUANTITY", "price × quantity is more than the ledger keeps")
    return int(fen)

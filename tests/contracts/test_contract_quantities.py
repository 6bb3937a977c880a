"""Quantities and money (contracts/quantities.py), with hand-computed answers.

Wire quantities are decimal strings with at most the instrument's decimals; anything else is
refused with INVALID_QUANTITY, never rounded. The one rounding is amount = price × quantity,
half-up to the fen.
"""

from decimal import Decimal

import pytest
from contract_book import CQ_C, PDR_SC, SC_A, SC_B, WR_SC

from contracts.errors import Refused
from contracts.quantities import MAX_UNITS, format_units, parse_price, parse_units, trade_amount


@pytest.mark.parametrize(("text", "decimals", "units"), [
    ("0.001", 3, 1),
    ("1", 3, 1000),
    ("1.5", 3, 1500),
    ("12.345", 3, 12345),
    ("1.000", 3, 1000),
    ("10", 0, 10),
    ("0.01", 2, 1),
    ("100.10", 2, 10010),
    ("4611686018427387903", 0, MAX_UNITS - 1),
])
def test_parse_units_known_answers(text, decimals, units):
    assert parse_units(text, decimals, field="quantity") == units


@pytest.mark.parametrize(("value", "decimals"), [
    ("1.0001", 3),        # one decimal too many: refused, not rounded
    ("1.0000", 3),        # even when the extra digit is a zero
    ("0.5", 0),
    ("0", 3),
    ("0.000", 3),
    ("-1", 3),
    ("+1", 3),
    ("1e3", 3),
    ("1E3", 3),
    (" 1", 3),
    ("1 ", 3),
    ("01", 3),
    ("00.5", 3),
    ("1.", 3),
    (".5", 3),
    ("", 3),
    ("abc", 3),
    ("1,000", 3),
    ("NaN", 3),
    ("Infinity", 3),
    ("１", 3),            # a full-width digit
    ("4611686018427387904", 0),   # 2**62: too large
    (1, 3),               # a JSON number, not a string
    (1.5, 3),
    (None, 3),
    (True, 3),
])
def test_parse_units_refusals(value, decimals):
    with pytest.raises(Refused) as refused:
        parse_units(value, decimals, field="quantity")
    assert refused.value.code == "INVALID_QUANTITY"


@pytest.mark.parametrize(("units", "decimals", "text"), [
    (1, 3, "0.001"),
    (12345, 3, "12.345"),
    (1000, 3, "1.000"),
    (0, 3, "0.000"),
    (-1, 2, "-0.01"),
    (-129623, 2, "-1296.23"),
    (12345, 0, "12345"),
    (0, 0, "0"),
])
def test_format_units_known_answers(units, decimals, text):
    assert format_units(units, decimals) == text


@pytest.mark.parametrize("decimals", [0, 2, 3])
@pytest.mark.parametrize("units", [1, 9, 10, 999, 1000, 1001, 123456789])
def test_format_then_parse_round_trips(units, decimals):
    assert parse_units(format_units(units, decimals), decimals, field="quantity") == units


@pytest.mark.parametrize(("text", "price"), [
    ("123.45", Decimal("123.45")),
    ("0.0001", Decimal("0.0001")),
    ("0.0050", Decimal("0.005")),
    ("100", Decimal("100")),
])
def test_parse_price_known_answers(text, price):
    assert parse_price(text) == price


@pytest.mark.parametrize("value", ["0.00001", "0", "-1", "1e2", "", 100, "12.3456 "])
def test_parse_price_refusals(value):
    with pytest.raises(Refused) as refused:
        parse_price(value)
    assert refused.value.code == "INVALID_QUANTITY"


@pytest.mark.parametrize(("price", "units", "decimals", "fen"), [
    ("0.0050", 1, 0, 1),              # 0.005 → 0.01 (half-up)
    ("0.0049", 1, 0, 0),              # 0.0049 → 0.00
    ("0.0051", 1, 0, 1),
    ("0.0150", 1, 0, 2),              # 0.015 → 0.02 (half-up, not half-even)
    ("0.0250", 1, 0, 3),              # 0.025 → 0.03 (half-even would give 0.02)
    ("123.45", 10500, 3, 129623),     # 10.5 t × 123.45 = 1296.225 → 1296.23
    ("100", 20000, 3, 200000),        # 20 t × 100 = 2000.00
    ("0.0001", 1, 3, 0),              # 0.001 t × 0.0001 = 0.0000001 → 0.00
    ("3.3333", 3, 0, 1000),           # 9.9999 → 10.00
    ("2.5", 1, 3, 0),                 # 0.001 × 2.5 = 0.0025 → 0.00
    ("5", 1, 3, 1),                   # 0.001 × 5 = 0.005 → 0.01
    ("99.99", 1, 2, 100),             # 0.01 × 99.99 = 0.9999 → 1.00
    ("0.0001", 4611686018427387903, 0, 46116860184273879),   # the largest quantity: 461168601842738.7903 → …8.79
])
def test_trade_amount_half_up_to_the_fen(price, units, decimals, fen):
    assert trade_amount(parse_price(price), units, decimals) == fen


def test_the_wire_refuses_what_the_parser_refuses(standard_book):
    """Through the ops: more decimals than the instrument allows is a refusal, never a rounding."""
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "0.001"})
    assert book.total(SC_A, PDR_SC) == 1
    for bad in ("1.0001", "0", "-1", "1e3", " 1", "01", "", 1):
        refusal = book.refused("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": bad})
        # "" fails the schema's length check first; everything else is the parser's refusal
        assert refusal.code == ("INVALID_OP" if bad in ("", 1) else "INVALID_QUANTITY"), bad
        assert refusal.op == 0
    # WR has no decimals at all
    assert book.refused("sc-sthj", {"op": "issue", "asset": WR_SC, "to": SC_A,
                                    "quantity": "1.5"}).code == "INVALID_QUANTITY"
    # CNY: at most 2 decimals
    assert book.refused("cq-exchange", {"op": "cny.deposit", "account": CQ_C,
                                        "amount": "0.001"}).code == "INVALID_QUANTITY"
    # prices: at most 4 decimals
    book.do("sc-exchange", {"op": "cny.deposit", "account": SC_B, "amount": "100"})
    assert book.refused("sc-exchange", {"op": "trade", "asset": PDR_SC, "quantity": "0.001",
                                        "price": "1.00001", "seller": SC_A, "buyer": SC_B}).code == "INVALID_QUANTITY"
    assert book.total(SC_A, PDR_SC) == 1

"""ledger.encoding: RFC 8785 (JCS) canonical JSON and strict RFC 4648 §4 base64.

Known answers: RFC 8785 §3.2.2–§3.2.4 and Appendix B, cyberphone/json-canonicalization's
testdata, and RFC 4648 §10 (see vectors/README.md).
"""

import json
import math
import struct
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.encoding import b64decode, b64encode, canonical

JCS = Path(__file__).parent / "vectors" / "jcs"
APPENDIX_B = json.loads((JCS / "rfc8785_appendix_b_numbers.json").read_text())["rows"]


def ieee754(hex_bits: str) -> float:
    return struct.unpack(">d", bytes.fromhex(hex_bits))[0]


# --- RFC 8785 -------------------------------------------------------------------------------------

def test_rfc8785_sample_canonicalises_to_the_published_bytes():
    value = json.loads((JCS / "rfc8785_sample_input.json").read_text())
    assert canonical(value) == bytes.fromhex((JCS / "rfc8785_sample_output.hex").read_text())


def test_rfc8785_sorting_example_orders_keys_by_utf16_code_units():
    value = json.loads((JCS / "rfc8785_sorting_input.json").read_text())
    expected_order = json.loads((JCS / "rfc8785_sorting_expected_order.json").read_text())
    assert list(json.loads(canonical(value)).values()) == expected_order


def test_utf16_order_differs_from_code_point_order_above_the_bmp():
    # U+1F600 is D83D DE00 in UTF-16, so it sorts before U+FB33 although its code point is larger.
    assert canonical({"\ufb33": 1, "\U0001F600": 2}) == '{"\U0001F600":2,"\ufb33":1}'.encode()


@pytest.mark.parametrize(
    "row", [r for r in APPENDIX_B if r["json"] is not None], ids=lambda r: f"{r['ieee754_hex']}={r['json']}")
def test_rfc8785_appendix_b_number_serialisation(row):
    assert canonical(ieee754(row["ieee754_hex"])) == row["json"].encode()


@pytest.mark.parametrize(
    "row", [r for r in APPENDIX_B if r["json"] is None], ids=lambda r: r["comment"].split()[0])
def test_rfc8785_appendix_b_values_outside_json_are_refused(row):
    value = ieee754(row["ieee754_hex"])
    assert math.isnan(value) or math.isinf(value)
    with pytest.raises(ValueError):
        canonical(value)


def test_negative_infinity_is_refused():
    with pytest.raises(ValueError):
        canonical(-math.inf)


@pytest.mark.parametrize("name", sorted(p.name for p in (JCS / "cyberphone" / "input").glob("*.json")))
def test_cyberphone_reference_testdata(name):
    value = json.loads((JCS / "cyberphone" / "input" / name).read_bytes())
    assert canonical(value) == (JCS / "cyberphone" / "output" / name).read_bytes()


def test_strings_are_not_unicode_normalised():
    composed = "\u1e0d\u0307"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    assert canonical(decomposed) == ('"' + decomposed + '"').encode()


def test_lone_surrogates_are_refused():
    with pytest.raises(ValueError):
        canonical({"key": "\udead"})


def test_safe_integers_are_written_exactly():
    assert canonical([9007199254740991, -9007199254740991, 0, 41]) == b"[9007199254740991,-9007199254740991,0,41]"


@pytest.mark.parametrize("value", [2**53, -(2**53), 2**64], ids=["2**53", "-2**53", "2**64"])
def test_integers_beyond_the_safe_range_are_refused(value):
    with pytest.raises(ValueError):
        canonical(value)


def test_decimal_strings_pass_through_untouched():
    assert canonical({"qty": "12.345", "price": "0.10"}) == b'{"price":"0.10","qty":"12.345"}'


def test_no_whitespace_is_emitted():
    assert canonical({"a": [1, {"b": None}], "c": True}) == b'{"a":[1,{"b":null}],"c":true}'


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_canonical_output_is_json_that_reads_back_the_same_value(value):
    assert json.loads(canonical(value)) == value


@given(json_values)
def test_canonical_output_is_a_fixed_point(value):
    assert canonical(json.loads(canonical(value))) == canonical(value)


@given(st.dictionaries(st.text(), st.integers(min_value=0, max_value=9), min_size=2, max_size=6))
def test_keys_are_sorted_by_utf16_code_units(value):
    keys = list(json.loads(canonical(value)))
    assert keys == sorted(value, key=lambda k: k.encode("utf-16-be"))


# --- RFC 4648 §4 base64 -----------------------------------------------------------------------------

RFC4648_SECTION_10 = [
    (b"", ""), (b"f", "Zg=="), (b"fo", "Zm8="), (b"foo", "Zm9v"),
    (b"foob", "Zm9vYg=="), (b"fooba", "Zm9vYmE="), (b"foobar", "Zm9vYmFy"),
]


@pytest.mark.parametrize("data, text", RFC4648_SECTION_10, ids=[t or "empty" for _, t in RFC4648_SECTION_10])
def test_b64encode_rfc4648_vectors(data, text):
    assert b64encode(data) == text


@pytest.mark.parametrize("data, text", RFC4648_SECTION_10, ids=[t or "empty" for _, t in RFC4648_SECTION_10])
def test_b64decode_rfc4648_vectors(data, text):
    assert b64decode(text) == data


def test_b64_uses_the_standard_alphabet():
    assert b64encode(b"\xfb\xff") == "+/8="
    assert b64decode("+/8=") == b"\xfb\xff"


@pytest.mark.parametrize("text", [
    "Zg", "Zm8", "Zg=", "Zm9vYg=",       # padding missing or short
    "-_8=",                              # URL-safe alphabet
    "Zm9v\n", " Zm9v", "Zm 9v", "Zm9v!",  # stray characters
    "Zg==Zg==",                          # data after padding
    "Zm9v\u00e9",                         # not ASCII
])
def test_b64decode_rejects_anything_but_strict_standard_base64(text):
    with pytest.raises(ValueError):
        b64decode(text)


@pytest.mark.parametrize("value", [b"Zm9v", None, 42], ids=["bytes", "none", "int"])
def test_b64decode_accepts_only_str(value):
    with pytest.raises(ValueError, match="expected a base64 string"):
        b64decode(value)


@given(st.binary(max_size=100))
def test_b64_round_trips(data):
    assert b64decode(b64encode(data)) == data


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.text() | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.sampled_from([2**53 - 1, -(2**53 - 1), 2**53, 10**15, 10**16, 0.0, -0.0, 1e21, 5e-324]),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=5),
    max_leaves=25)


def _outcome(encode, value):
    try:
        return encode(value)
    except Exception as error:  # the type of refusal must agree too
        return type(error)


@given(JSON_VALUES)
def test_the_fast_path_writes_exactly_what_rfc8785_writes(value):
    """canonical() uses the standard library's encoder where it agrees with JCS; whatever the
    value (characters of every plane in keys and strings, integers beyond 2**53, floats), the
    bytes — or the refusal — are the reference implementation's."""
    import rfc8785

    assert _outcome(canonical, value) == _outcome(rfc8785.dumps, value)


@pytest.mark.parametrize("value", [
    {"\U0001F600": 1, "\uFB33": 2},          # JCS orders by UTF-16 code units, Python by code points
    {"a": 9007199254740992},                 # beyond the safe integers: refused by JCS
    {"a": 1.0}, [1e21], {1: "x"}, ("t", 1),  # floats, a non-string key, a tuple
    {"c": "\x00\x1f\x7f\u2028\"\\"},         # escapes
])
def test_values_where_the_standard_library_is_not_jcs_still_get_jcs(value):
    import rfc8785

    assert _outcome(canonical, value) == _outcome(rfc8785.dumps, value)

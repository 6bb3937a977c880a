"""Canonical bytes and the text encodings the log's external formats use.

Everything the log hashes or signs is RFC 8785 (JCS) canonical JSON; every binary value on the
wire is RFC 4648 §4 base64 with padding.
"""

import base64
import binascii
import json
import re
from typing import Any

import rfc8785

_NOT_PLAIN = re.compile(rb"[\xf0-\xf7]|[0-9]{16}")
"""A 4-byte UTF-8 sequence (a character beyond the BMP), or sixteen digits in a row (perhaps an
integer beyond ±(2**53 − 1), the most JCS numbers hold exactly)."""


class _NotPlain(Exception):
    """The value holds something for which the standard library's JSON is not JCS."""


def canonical(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 encoding of a JSON value."""
    return _plain_canonical(value) or rfc8785.dumps(value)


def _plain_canonical(value: Any) -> bytes | None:
    """JCS by the standard library's C encoder, for the values where the two agree; else None.

    For strings, integers within ±(2**53 − 1), booleans, null, lists and objects with string
    keys, ``json.dumps`` with sorted keys, no spaces and ``ensure_ascii=False`` writes exactly
    JCS: the same escapes (``\\b \\t \\n \\f \\r``, other controls as lowercase
    ``\\u00xx``) and the same key order, as long as no character lies beyond the BMP (JCS sorts
    keys by UTF-16 code units, Python by code points). Anything else — floats, integers of
    sixteen digits or more, non-string keys, tuples, characters beyond the BMP, lone surrogates —
    is left to ``rfc8785``, three times slower. Reading the bytes back must give the value itself
    (which is how non-string keys and tuples are caught).
    """
    try:
        data = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode("utf-8")
    except (TypeError, ValueError):
        return None
    if _NOT_PLAIN.search(data):
        return None
    try:
        if json.loads(data, parse_float=_refuse) != value:
            return None
    except _NotPlain:
        return None
    return data


def _refuse(text: str) -> Any:
    raise _NotPlain(text)


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    """Decode strict RFC 4648 §4 base64 (padding required, no stray characters).

    Raises ``ValueError`` on anything else.
    """
    if not isinstance(text, str):
        raise ValueError("expected a base64 string")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"not valid base64: {exc}") from None
    if b64encode(data) != text:
        raise ValueError("not canonical base64: the unused bits of the last character must be zero")
    return data

"""Canonical bytes and the text encodings the log's external formats use.

Everything the log hashes or signs is RFC 8785 (JCS) canonical JSON; every binary value on the
wire is RFC 4648 §4 base64 with padding.
"""

import base64
import binascii
from typing import Any

import rfc8785


def canonical(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 encoding of a JSON value."""
    return rfc8785.dumps(value)


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

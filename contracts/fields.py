"""marshmallow fields shared by the operations' schemas. Unknown fields are refused everywhere."""

import re

from marshmallow import RAISE, Schema, fields, validate

PROVINCE = re.compile(r"[A-Z]{2}")
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def whole(pattern: str | re.Pattern, error: str) -> validate.Regexp:
    """A validator matching the whole string, ASCII only (marshmallow's Regexp matches a prefix)."""
    source = pattern.pattern if isinstance(pattern, re.Pattern) else pattern
    return validate.Regexp(re.compile(rf"(?:{source})\Z", re.ASCII), error=error)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class OpSchema(StrictSchema):
    op = fields.String(required=True)


def province(**kwargs) -> fields.String:
    return fields.String(validate=whole(PROVINCE, "a province is two capital letters"), **kwargs)


PRINTABLE = r"[^\x00-\x1f\x7f]+"


def text(max_length: int = 200, **kwargs) -> fields.String:
    """Free text: no control characters (a NUL cannot even be stored by PostgreSQL)."""
    return fields.String(validate=[validate.Length(min=1, max=max_length),
                                   whole(PRINTABLE, "control characters are not allowed")], **kwargs)


def ref(**kwargs) -> fields.String:
    """An id of an account, asset, hold or trade: checked against the ledger by the handler."""
    return fields.String(validate=[validate.Length(min=1, max=120),
                                   whole(PRINTABLE, "control characters are not allowed")], **kwargs)


def decimal_string(**kwargs) -> fields.String:
    """A quantity or price as a decimal string; parsed with the instrument's decimals later."""
    return fields.String(validate=validate.Length(min=1, max=40), **kwargs)

"""Keyset pagination: ``?limit=`` and an opaque ``?cursor=``; answers ``{"items", "next"}``.

A cursor is the sort key of the last item served, as base64url JSON. It is opaque to clients,
but never trusted: :func:`decode_cursor` checks it has exactly the shape of the endpoint's key
(so a cursor from another endpoint, or a forged one, is a 400 and never reaches the database as
a value of the wrong type). Pages are read with one row more than asked, so ``next`` is null
exactly on the last page, and walking the pages serves every item once even while the ledger
grows (new rows sort after the keys already served, or are simply picked up on a later page).
"""

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Select, and_, or_
from sqlmodel import Session

from api.problems import Problem

MAX_INT = 2**63 - 1
MAX_TEXT = 200


def encode_cursor(key: Sequence[Any]) -> str:
    raw = json.dumps(list(key), separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, shape: Sequence[type]) -> tuple:
    """The key in ``cursor``, checked against ``shape`` (a type per key column), or a 400."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw.decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        key = None
    if not (isinstance(key, list) and len(key) == len(shape)
            and all(_fits(value, kind) for value, kind in zip(key, shape))):
        raise Problem(400, "INVALID_PARAMETER", "cursor is not one this list gave out; start again without it",
                      errors={"cursor": ["not a cursor of this list"]})
    return tuple(key)


def _fits(value: Any, kind: type) -> bool:
    if kind is int:
        return type(value) is int and -MAX_INT <= value <= MAX_INT
    if kind is str:
        return isinstance(value, str) and len(value) <= MAX_TEXT and "\x00" not in value
    return False


def after(columns: Sequence[Any], key: Sequence[Any]):
    """Rows strictly after ``key`` in the order of ``columns`` (ascending):
    ``c1 > k1 OR (c1 = k1 AND c2 > k2) OR …``, portable to SQLite and PostgreSQL."""
    clauses = []
    for i, column in enumerate(columns):
        equal = [columns[j] == key[j] for j in range(i)]
        clauses.append(and_(*equal, column > key[i]))
    return or_(*clauses)


def page(session: Session, statement: Select, *, order: Sequence[Any], shape: Sequence[type],
         query: dict, key: Callable[[Any], Sequence[Any]], render: Callable[[list], list[dict]]) -> dict:
    """One page of ``statement`` ordered by ``order``; ``key(row)`` is a row's value of ``order``,
    ``render(rows)`` turns the page's rows into items (all at once, so it can batch look-ups)."""
    limit = query["limit"]
    if query.get("cursor"):
        statement = statement.where(after(order, decode_cursor(query["cursor"], shape)))
    rows = session.execute(statement.order_by(*order).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": render(rows), "next": encode_cursor(key(rows[-1])) if more else None}

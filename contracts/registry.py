"""The table of operations: each op's name, the roles that may use it, its schema, its handler."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema

ROLES = ("admin", "issuer", "operator", "finance", "monitor", "auditor")
LEDGER_ROLE = "ledger"
"""The pseudo-role of the ledger's own entries (actor ``ledger``, signed with the log key)."""


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    roles: frozenset[str]
    schema: type[Schema]
    handler: Callable[..., dict[str, Any]]
    loader: Schema
    """One instance of ``schema``, made once: loading does not change it."""


OPERATIONS: dict[str, Operation] = {}


def operation(name: str, *, roles: tuple[str, ...], schema: type[Schema]):
    """Register ``handler(ctx, op) -> result`` as the op ``name``."""

    def register(handler):
        if name in OPERATIONS:
            raise ValueError(f"operation {name} registered twice")
        OPERATIONS[name] = Operation(name=name, roles=frozenset(roles), schema=schema, handler=handler,
                                     loader=schema())
        return handler

    return register

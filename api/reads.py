"""What the read blueprints (:mod:`api.registry`, :mod:`api.compensation`) share: a blueprint
that asks every request for a principal's token and validates query parameters strictly, and the
few records both serve."""

import json

from flask_smorest import Blueprint
from sqlalchemy import select
from sqlmodel import Session

from api.problems import Problem
from api.registry.scope import Scope
from contracts.quantities import format_units
from ledger.models import LogEntry
from ledger.projections import Obligation

CNY_DECIMALS = 2
_ERROR_NAMES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND"}


def _authenticate() -> None:
    """Every read needs a valid token: a 401 before anything else is looked at."""
    Scope.current()


class ReadBlueprint(Blueprint):
    """A blueprint of reads: a 401 problem without a principal's valid token, before any
    parameter is looked at; unknown or malformed query parameters are 400 problems."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.before_request(_authenticate)

    def query(self, schema):
        """Query parameters: unknown ones are refused, every error is a 400 problem."""
        return self.arguments(schema, location="query", unknown="raise", error_status_code=400)

    def errors(self, *statuses: int):
        """Document the problems a view may answer, by status."""
        def decorate(view):
            for status in statuses:
                view = self.alt_response(status, response=_ERROR_NAMES[status])(view)
            return view
        return decorate


def known_id(value: str, code: str, what: str) -> str:
    """A path id that cannot be in the ledger (too long, control characters) is simply unknown;
    it never reaches the database (PostgreSQL refuses NUL characters in text)."""
    if len(value) > 120 or not value.isprintable():
        raise Problem(404, code, f"there is no {what} {value[:120]!r}")
    return value


def entry_facts(session: Session, seqs) -> dict[int, dict]:
    """Time, actor and op names of entries, read from their leaves: one query per page."""
    wanted = sorted(set(seqs))
    if not wanted:
        return {}
    facts = {}
    for seq, leaf in session.execute(select(LogEntry.seq, LogEntry.leaf).where(LogEntry.seq.in_(wanted))):
        entry = json.loads(bytes(leaf))
        ops = entry.get("command", {}).get("ops", [])
        facts[seq] = {"time": entry.get("time"), "actor": entry.get("command", {}).get("actor"),
                      "ops": [op.get("op") if isinstance(op, dict) else None for op in ops]}
    return facts


def obligation_item(obligation: Obligation) -> dict:
    return {"id": obligation.id, "pool": obligation.pool, "debtor": obligation.debtor,
            "creditor": obligation.creditor, "amount": format_units(obligation.amount, CNY_DECIMALS),
            "source_seq": obligation.source_seq, "created_at": getattr(obligation, "created_at", None) or None,
            "status": obligation.status, "clearing": obligation.clearing}

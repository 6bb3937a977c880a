"""Appending settlement statements: the same inputs append nothing; changed inputs append a
statement that supersedes the last one, and only the difference becomes new obligations."""

import json
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlmodel import Session

from contracts.agreements import active_version, current_submissions, latest_statement, statement_count
from contracts.commands import Outcome, submit_ledger
from ledger.projections import Agreement
from ledger.store import LogWriter
from settlement.periods import next_period, period_bounds, period_of, reference_period
from settlement.statement import compute_statement, net_transfers


def build_statement(session: Session, agreement: Agreement, period: str) -> dict:
    """The statement of a period from the agreement and the newest monitoring submissions."""
    document = json.loads(agreement.document)
    sections = [s["id"] for s in document["sections"]]
    reference = period_bounds(reference_period(period, agreement.period), agreement.period)
    current = period_bounds(period, agreement.period)
    found = {s.id: s for bounds in (reference, current) for s in current_submissions(session, sections, *bounds)}
    submissions = sorted(found.values(), key=lambda s: (s.seq, s.id))
    bodies = [{"section": s.section, "samples": json.loads(s.samples)} for s in submissions]
    statement = compute_statement(document, bodies, period)
    statement["digest"] = agreement.digest
    statement["submissions"] = [s.seq for s in submissions]
    return statement


def difference(new: list[dict], old: list[dict], parties: list[str]) -> list[dict]:
    """What the new transfers add to the old ones, netted per pair of parties."""
    payments = [(t["from"], t["to"], Decimal(t["amount"])) for t in new]
    payments += [(t["to"], t["from"], Decimal(t["amount"])) for t in old]
    return net_transfers(payments, parties)


def settle(writer: LogWriter, agreement_id: str, period: str) -> Outcome | None:
    """Append the statement of ``period`` unless the latest one already says the same."""
    agreement = active_version(writer.session, agreement_id, period)
    statement = build_statement(writer.session, agreement, period)
    latest = latest_statement(writer.session, agreement.id, period)
    if latest is not None and json.loads(latest.body) == statement:
        return None
    parties = [p["id"] for p in json.loads(agreement.document)["parties"]]
    old = json.loads(latest.body)["transfers"] if latest else []
    count = statement_count(writer.session, agreement.id, period)
    op = {"op": "settlement.statement", "agreement": agreement.id, "version": agreement.version,
          "period": period, "supersedes": latest.id if latest else None, "statement": statement,
          "obligations": difference(statement["transfers"], old, parties)}
    return submit_ledger(writer, f"settlement:{agreement.id}:{period}:{count}", [op])


def due_periods(session: Session, today: date, grace_days: int) -> list[tuple[str, str]]:
    """(agreement, period) pairs whose period ended at least ``grace_days`` before ``today``,
    within an active agreement's term."""
    due = []
    for agreement in session.exec(select(Agreement).where(Agreement.status == "active")
                                  .order_by(Agreement.id, Agreement.version)).scalars():
        period = period_of(date.fromisoformat(agreement.term_from), agreement.period)
        term_end = date.fromisoformat(agreement.term_to)
        while True:
            first, last = period_bounds(period, agreement.period)
            if first > term_end or last + timedelta(days=grace_days) >= today:
                break
            if (agreement.id, period) not in due:
                due.append((agreement.id, period))
            period = next_period(period, agreement.period)
    return due


def settle_requested(writer: LogWriter, outcome: Outcome) -> list[Outcome]:
    """Append the statements a just-appended command asked for with ``settlement.request``."""
    if outcome.replayed:
        return []
    appended = []
    for op in outcome.entry["command"]["ops"]:
        if op["op"] == "settlement.request":
            statement = settle(writer, op["agreement"], op["period"])
            if statement is not None:
                appended.append(statement)
    return appended

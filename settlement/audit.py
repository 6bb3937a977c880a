"""The auditor's replay of the domain: every entry applied with the same contracts the server
runs, and everything the ledger computed — settlement statements, the obligations they add,
clearing runs — recomputed from the state before it and compared, byte for byte."""

import json

from sqlmodel import Session

from contracts.agreements import active_version, latest_statement
from contracts.clearing import open_obligations
from contracts.commands import apply_entry
from ledger.encoding import canonical
from ledger.entry import LEDGER_ACTOR, Entry
from ledger.errors import VerificationError
from ledger.models import LogKey
from ledger.projections import PROJECTIONS
from settlement.netting import net
from settlement.service import build_statement, difference

AUDITED_TABLES = (LogKey, *PROJECTIONS)
"""What a replay rebuilds and compares: the log keys and every projection."""


def apply_audited(session: Session, entry: Entry) -> None:
    if entry.actor == LEDGER_ACTOR:
        for op in entry.command["ops"]:
            if op.get("op") == "settlement.statement":
                _check_statement(session, entry, op)
            elif op.get("op") == "clearing.run":
                _check_clearing(session, entry, op)
    apply_entry(session, entry)


def _check_statement(session: Session, entry: Entry, op: dict) -> None:
    agreement = active_version(session, op["agreement"], op["period"])
    expected = build_statement(session, agreement, op["period"])
    if canonical(expected) != canonical(op["statement"]):
        raise VerificationError(f"entry {entry.seq}: the statement of {op['agreement']} {op['period']} "
                                "does not follow from the agreement and the monitoring entries before it")
    latest = latest_statement(session, agreement.id, op["period"])
    parties = [p["id"] for p in json.loads(agreement.document)["parties"]]
    owed = difference(expected["transfers"], json.loads(latest.body)["transfers"] if latest else [], parties)
    if canonical(owed) != canonical(op["obligations"]):
        raise VerificationError(f"entry {entry.seq}: the obligations of {op['agreement']} {op['period']} "
                                "are not the difference from the statement it supersedes")


def _check_clearing(session: Session, entry: Entry, op: dict) -> None:
    obligations = open_obligations(session, op["pool"], op["cutoff"])
    if [o.id for o in obligations] != op["obligations"]:
        raise VerificationError(f"entry {entry.seq}: clearing run of {op['pool']} up to {op['cutoff']} "
                                "does not cover exactly the open obligations")
    netting = net((o.debtor, o.creditor, o.amount) for o in obligations)
    gross = [{"from": a, "to": b, "amount": x} for (a, b), x in netting.gross.items()]
    payments = [{"from": a, "to": b, "amount": x} for a, b, x in netting.payments]
    if canonical(gross) != canonical(op["gross"]) or canonical(payments) != canonical(op["payments"]):
        raise VerificationError(f"entry {entry.seq}: clearing run of {op['pool']}: the netting is not of its obligations")

"""Compensation agreements, monitoring data and settlement statements as operations.

Lifecycle: a finance principal of one party proposes (its proposal is its party's signature);
a finance principal of every other party signs the document's digest; the last signature makes
it active, provided every party has a finance principal and its account is open. Statements are
computed by ``settlement`` and appended by the ledger; each of their transfers becomes an
obligation between the parties' accounts in the ``compensation`` pool.
"""

import hashlib
import json
import re
from datetime import date

from marshmallow import ValidationError, fields, validate
from sqlalchemy import func, select
from sqlmodel import Session

from contracts.agreement_document import INDICATORS, load_agreement, validation_message
from contracts.context import Context, canonical_json
from contracts.errors import Refused
from contracts.fields import OpSchema, StrictSchema, ref, whole
from contracts.quantities import parse_units
from contracts.registry import LEDGER_ROLE, operation
from ledger.encoding import b64encode, canonical
from ledger.projections import (Account, Agreement, AgreementSignature, MonitoringSubmission, Obligation,
                                Principal, Statement)

CONCENTRATION = re.compile(r"(0|[1-9][0-9]{0,5})(\.[0-9]{1,6})?")
PERIOD = re.compile(r"[0-9]{4}(-(0[1-9]|1[0-2]))?")


def document_digest(document: dict) -> str:
    """base64 SHA-256 of JCS(document): what every other party signs."""
    return b64encode(hashlib.sha256(canonical(document)).digest())


def parties_of(agreement: Agreement) -> list[dict]:
    return json.loads(agreement.document)["parties"]


# -- agreements ----------------------------------------------------------------------------


class Propose(OpSchema):
    document = fields.Dict(required=True)


@operation("agreement.propose", roles=("finance",), schema=Propose)
def propose(ctx: Context, op: dict) -> dict:
    document = op["document"]
    try:
        loaded = load_agreement(document)
    except ValidationError as error:
        raise Refused("INVALID_AGREEMENT", validation_message(error), errors=error.normalized_messages()) from None
    key = (loaded["id"], loaded["version"])
    if ctx.session.get(Agreement, key) is not None:
        raise Refused("AGREEMENT_EXISTS", f"agreement {key[0]} version {key[1]} is proposed already")
    if loaded["version"] > 1 and ctx.session.get(Agreement, (key[0], key[1] - 1)) is None:
        raise Refused("INVALID_AGREEMENT", f"version: version {key[1] - 1} of {key[0]} does not exist")
    party = ctx.principal.province
    if party not in [p["id"] for p in loaded["parties"]]:
        raise Refused("FORBIDDEN_PROVINCE", f"{ctx.actor} ({party}) is not a party to {key[0]}")
    digest = document_digest(document)
    ctx.session.add(Agreement(id=key[0], version=key[1], document=canonical_json(document), digest=digest,
                              period=loaded["period"], term_from=loaded["term"]["start"].isoformat(),
                              term_to=loaded["term"]["end"].isoformat(), proposed_by=ctx.actor,
                              proposed_seq=ctx.seq))
    ctx.session.add(AgreementSignature(agreement=key[0], version=key[1], party=party, principal=ctx.actor,
                                       seq=ctx.seq))
    ctx.session.flush()
    return {"agreement": key[0], "version": key[1], "digest": digest, "status": _maybe_activate(ctx, *key)}


class Sign(OpSchema):
    agreement = ref(required=True)
    version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    digest = fields.String(required=True, validate=validate.Length(equal=44))


@operation("agreement.sign", roles=("finance",), schema=Sign)
def sign(ctx: Context, op: dict) -> dict:
    agreement = ctx.session.get(Agreement, (op["agreement"], op["version"]))
    if agreement is None:
        raise Refused("UNKNOWN_AGREEMENT", f"there is no agreement {op['agreement']} version {op['version']}")
    if op["digest"] != agreement.digest:
        raise Refused("DIGEST_MISMATCH", f"the document of {agreement.id} v{agreement.version} has digest "
                                         f"{agreement.digest}, not {op['digest']}")
    party = ctx.principal.province
    if party not in [p["id"] for p in parties_of(agreement)]:
        raise Refused("FORBIDDEN_PROVINCE", f"{ctx.actor} ({party}) is not a party to {agreement.id}")
    if ctx.session.get(AgreementSignature, (agreement.id, agreement.version, party)) is not None:
        raise Refused("ALREADY_SIGNED", f"{party} has signed {agreement.id} v{agreement.version} already")
    ctx.session.add(AgreementSignature(agreement=agreement.id, version=agreement.version, party=party,
                                       principal=ctx.actor, seq=ctx.seq))
    ctx.session.flush()
    return {"agreement": agreement.id, "version": agreement.version,
            "status": _maybe_activate(ctx, agreement.id, agreement.version)}


def _maybe_activate(ctx: Context, agreement_id: str, version: int) -> str:
    agreement = ctx.session.get(Agreement, (agreement_id, version))
    parties = parties_of(agreement)
    signed = set(ctx.session.exec(select(AgreementSignature.party).where(
        AgreementSignature.agreement == agreement_id, AgreementSignature.version == version)).scalars())
    if {p["id"] for p in parties} - signed:
        return agreement.status
    for party in parties:
        has_finance = ctx.session.exec(select(Principal.name).where(
            Principal.role == "finance", Principal.province == party["id"])).first()
        if not has_finance:
            raise Refused("NO_FINANCE_PRINCIPAL", f"party {party['id']} has no finance principal")
        if ctx.session.get(Account, party["account"]) is None:
            raise Refused("UNKNOWN_ACCOUNT", f"party {party['id']}'s account {party['account']} is not open")
    agreement.status, agreement.activated_seq = "active", ctx.seq
    ctx.session.add(agreement)
    return "active"


# -- monitoring ------------------------------------------------------------------------------


class Sample(StrictSchema):
    date = fields.Date(required=True)
    values = fields.Dict(keys=fields.String(validate=validate.OneOf(INDICATORS)),
                         values=fields.String(validate=whole(
                             CONCENTRATION, "a concentration in mg/L is a non-negative decimal string")),
                         required=True, validate=validate.Length(min=1))


class Submit(OpSchema):
    section = ref(required=True)
    samples = fields.List(fields.Nested(Sample), required=True, validate=validate.Length(min=1, max=1000))


class Correct(Submit):
    section = ref(load_default=None)
    submission = ref(required=True)


def section_parties(session: Session, section: str) -> set[str] | None:
    """The parties on either side of a section in any agreement that names it."""
    parties = None
    for document in session.exec(select(Agreement.document)).scalars():
        for item in json.loads(document)["sections"]:
            if item["id"] == section:
                parties = (parties or set()) | set(item["upstream"]) | set(item["downstream"])
    return parties


def _record_samples(ctx: Context, section: str, raw_samples: list, loaded: list, corrects: str | None) -> MonitoringSubmission:
    parties = section_parties(ctx.session, section)
    if parties is None:
        raise Refused("UNKNOWN_SECTION", f"no agreement names a section {section!r}")
    if ctx.principal.province not in parties:
        raise Refused("FORBIDDEN_PROVINCE", f"{ctx.actor} ({ctx.principal.province}) does not monitor {section}")
    dates = sorted(s["date"] for s in loaded)
    submission = MonitoringSubmission(id=ctx.new_id("M"), section=section, submitted_by=ctx.actor, seq=ctx.seq,
                                      samples=canonical_json(raw_samples), first_date=dates[0].isoformat(),
                                      last_date=dates[-1].isoformat(), corrects=corrects)
    ctx.session.add(submission)
    return submission


@operation("monitoring.submit", roles=("monitor",), schema=Submit)
def submit_samples(ctx: Context, op: dict) -> dict:
    raw = [{"date": s["date"].isoformat(), "values": s["values"]} for s in op["samples"]]
    submission = _record_samples(ctx, op["section"], raw, op["samples"], None)
    return {"submission": submission.id, "section": submission.section, "samples": len(raw)}


@operation("monitoring.correct", roles=("monitor",), schema=Correct)
def correct_samples(ctx: Context, op: dict) -> dict:
    old = ctx.session.get(MonitoringSubmission, op["submission"])
    if old is None:
        raise Refused("UNKNOWN_SUBMISSION", f"there is no submission {op['submission']!r}")
    if old.superseded_by is not None:
        raise Refused("ALREADY_CORRECTED", f"{old.id} was replaced by {old.superseded_by}; correct that one")
    if op["section"] not in (None, old.section):
        raise Refused("INVALID_OP", f"section: {old.id} is of section {old.section}")
    raw = [{"date": s["date"].isoformat(), "values": s["values"]} for s in op["samples"]]
    submission = _record_samples(ctx, old.section, raw, op["samples"], old.id)
    old.superseded_by = submission.id
    ctx.session.add(old)
    return {"submission": submission.id, "corrects": old.id, "section": old.section}


# -- settlement ------------------------------------------------------------------------------


class Request(OpSchema):
    agreement = ref(required=True)
    period = fields.String(required=True, validate=whole(PERIOD, "a period is YYYY or YYYY-MM"))


@operation("settlement.request", roles=("finance",), schema=Request)
def request_settlement(ctx: Context, op: dict) -> dict:
    """Ask for a statement now, early or again; the ledger appends it right after this entry."""
    agreement = active_version(ctx.session, op["agreement"], op["period"])
    if ctx.principal.province not in [p["id"] for p in parties_of(agreement)]:
        raise Refused("FORBIDDEN_PROVINCE", f"{ctx.actor} is not a party to {agreement.id}")
    return {"agreement": agreement.id, "version": agreement.version, "period": op["period"]}


def active_version(session: Session, agreement_id: str, period: str) -> Agreement:
    """The version that governs a period: the one an earlier statement used, else the newest
    active version whose term contains the period's first day."""
    earlier = session.exec(select(Statement.version).where(
        Statement.agreement == agreement_id, Statement.period == period).limit(1)).scalars().first()
    if earlier is not None:
        return session.get(Agreement, (agreement_id, earlier))
    start = f"{period}-01-01" if len(period) == 4 else f"{period}-01"
    version = session.exec(select(Agreement).where(
        Agreement.id == agreement_id, Agreement.status == "active", Agreement.term_from <= start,
        Agreement.term_to >= start).order_by(Agreement.version.desc()).limit(1)).scalars().first()
    if version is None:
        raise Refused("NO_ACTIVE_AGREEMENT", f"no active version of {agreement_id} covers {period}")
    return version


class Transfer(StrictSchema):
    source = fields.String(required=True, data_key="from")
    to = fields.String(required=True)
    amount = fields.String(required=True)


class StatementOp(OpSchema):
    agreement = ref(required=True)
    version = fields.Integer(required=True, strict=True)
    period = fields.String(required=True)
    supersedes = ref(load_default=None)
    statement = fields.Dict(required=True)
    obligations = fields.List(fields.Nested(Transfer), required=True)


@operation("settlement.statement", roles=(LEDGER_ROLE,), schema=StatementOp)
def record_statement(ctx: Context, op: dict) -> dict:
    """Record a computed statement and the obligations that are new with it."""
    agreement = ctx.session.get(Agreement, (op["agreement"], op["version"]))
    if agreement is None or agreement.status != "active":
        raise Refused("NO_ACTIVE_AGREEMENT", f"{op['agreement']} v{op['version']} is not active")
    latest = latest_statement(ctx.session, agreement.id, op["period"])
    if (latest.id if latest else None) != op["supersedes"]:
        raise Refused("STALE_STATEMENT", f"the latest statement of {agreement.id} {op['period']} is "
                                         f"{latest.id if latest else 'none'}")
    statement = Statement(id=ctx.new_id("S"), agreement=agreement.id, version=agreement.version,
                          period=op["period"], seq=ctx.seq, body=canonical_json(op["statement"]),
                          supersedes=op["supersedes"])
    ctx.session.add(statement)
    if latest is not None:
        latest.superseded_by = statement.id
        ctx.session.add(latest)
    accounts = {p["id"]: p["account"] for p in parties_of(agreement)}
    created = []
    for index, transfer in enumerate(op["obligations"]):
        amount = parse_units(transfer["amount"], 2, field="amount")
        obligation = Obligation(id=f"{ctx.new_id('O')}-{index}", pool="compensation",
                                debtor=accounts[transfer["source"]], creditor=accounts[transfer["to"]],
                                amount=amount, source_seq=ctx.seq, created_at=ctx.time)
        ctx.session.add(obligation)
        created.append(obligation.id)
    return {"statement": statement.id, "obligations": created}


def latest_statement(session: Session, agreement_id: str, period: str) -> Statement | None:
    return session.exec(select(Statement).where(
        Statement.agreement == agreement_id, Statement.period == period, Statement.superseded_by.is_(None))
    ).scalars().first()


def current_submissions(session: Session, sections: list[str], first: date, last: date) -> list[MonitoringSubmission]:
    """The newest version of every submission of these sections with samples in [first, last]."""
    rows = session.exec(select(MonitoringSubmission).where(
        MonitoringSubmission.section.in_(sections), MonitoringSubmission.superseded_by.is_(None),
        MonitoringSubmission.first_date <= last.isoformat(), MonitoringSubmission.last_date >= first.isoformat())
        .order_by(MonitoringSubmission.seq))
    return list(rows.scalars())


def statement_count(session: Session, agreement_id: str, period: str) -> int:
    return session.exec(select(func.count()).select_from(Statement).where(
        Statement.agreement == agreement_id, Statement.period == period)).scalar_one()

"""Clearing between provinces: runs that net a pool's obligations, and the parties'
confirmations that settle each net payment.

A run (appended by the ledger) names every obligation it covers, the gross totals each way and
the net payments; an obligation is cleared at most once. Each payment waits for
``clearing.confirm`` by its payer's and its payee's principals — exchanges (operators) for the
``trade`` pool, finance bureaus for ``compensation``. The last confirmation of a payment moves
the CNY; when every payment of a run is settled, so are its obligations.
"""

import json

from marshmallow import fields, validate
from sqlalchemy import select
from sqlmodel import Session

from contracts.context import Context, canonical_json
from contracts.errors import Refused
from contracts.fields import OpSchema, StrictSchema, ref
from contracts.instruments import CNY
from contracts.principals import home_account_id
from contracts.registry import LEDGER_ROLE, operation
from ledger.entry import parse_time
from ledger.projections import ClearingPayment, ClearingRun, Obligation

POOLS = {"trade": "operator", "compensation": "finance"}
"""Each pool and the role that confirms its payments."""


class Payment(StrictSchema):
    source = fields.String(required=True, data_key="from")
    to = fields.String(required=True)
    amount = fields.Integer(required=True, strict=True, validate=validate.Range(min=1),
                            metadata={"description": "fen"})


class Run(OpSchema):
    pool = fields.String(required=True, validate=validate.OneOf(sorted(POOLS)))
    cutoff = fields.String(required=True, validate=validate.Length(equal=27))
    obligations = fields.List(ref(), required=True, validate=validate.Length(min=1))
    gross = fields.List(fields.Nested(Payment), required=True)
    payments = fields.List(fields.Nested(Payment), required=True)


@operation("clearing.run", roles=(LEDGER_ROLE,), schema=Run)
def run(ctx: Context, op: dict) -> dict:
    """Record a clearing run; every obligation it names must be open, of its pool, and created
    no later than its cut-off."""
    cutoff = parse_time(op["cutoff"])
    for obligation_id in op["obligations"]:
        obligation = ctx.session.get(Obligation, obligation_id)
        if obligation is None:
            raise Refused("UNKNOWN_OBLIGATION", f"there is no obligation {obligation_id!r}")
        if obligation.status != "open":
            raise Refused("ALREADY_CLEARED", f"obligation {obligation_id} was cleared by {obligation.clearing}")
        if obligation.pool != op["pool"] or parse_time(obligation.created_at) > cutoff:
            raise Refused("INVALID_OP", f"obligation {obligation_id} is not of pool {op['pool']} up to {op['cutoff']}")
    record = ClearingRun(id=ctx.new_id("C"), pool=op["pool"], cutoff=op["cutoff"], seq=ctx.seq, time=ctx.time,
                         body=canonical_json({"obligations": op["obligations"],
                                              "gross": [_wire(g) for g in op["gross"]],
                                              "payments": [_wire(p) for p in op["payments"]]}))
    ctx.session.add(record)
    for obligation_id in op["obligations"]:
        obligation = ctx.session.get(Obligation, obligation_id)
        obligation.status, obligation.clearing = "cleared", record.id
        ctx.session.add(obligation)
    payments = []
    for index, payment in enumerate(op["payments"]):
        for account_id in (payment["source"], payment["to"]):
            ctx.account(account_id)
        item = ClearingPayment(id=f"{record.id}-{index}", run=record.id, payer=payment["source"],
                               payee=payment["to"], amount=payment["amount"])
        ctx.session.add(item)
        payments.append(item.id)
    if not payments:
        _settle_run(ctx, record)
    return {"clearing": record.id, "payments": payments}


def _wire(item: dict) -> dict:
    return {"from": item["source"], "to": item["to"], "amount": item["amount"]}


class Confirm(OpSchema):
    payment = ref(required=True)


@operation("clearing.confirm", roles=("operator", "finance"), schema=Confirm)
def confirm(ctx: Context, op: dict) -> dict:
    payment = ctx.session.get(ClearingPayment, op["payment"])
    if payment is None:
        raise Refused("UNKNOWN_PAYMENT", f"there is no clearing payment {op['payment']!r}")
    if payment.settled_seq is not None:
        raise Refused("ALREADY_SETTLED", f"payment {payment.id} was settled at seq {payment.settled_seq}")
    record = ctx.session.get(ClearingRun, payment.run)
    if ctx.role != POOLS[record.pool]:
        raise Refused("FORBIDDEN_ROLE", f"payments of the {record.pool} pool are confirmed by {POOLS[record.pool]}s")
    payer, payee = ctx.account(payment.payer), ctx.account(payment.payee)
    own = home_account_id(ctx.principal)
    sides = [side for side, account in (("payer", payer), ("payee", payee))
             if account.province == ctx.principal.province and (ctx.role != "operator" or account.id == own)]
    if not sides:
        raise Refused("FORBIDDEN_PROVINCE", f"{ctx.actor} is on neither side of payment {payment.id}"
                                            + (" (an exchange confirms for its own account)" if ctx.role == "operator" else ""))
    side = next((s for s in sides if getattr(payment, f"{s}_confirmed_by") is None), None)
    if side is None:
        raise Refused("ALREADY_CONFIRMED", f"{ctx.principal.province} has confirmed payment {payment.id} already")
    setattr(payment, f"{side}_confirmed_by", ctx.actor)
    ctx.session.add(payment)
    result = {"payment": payment.id, "confirmed": side, "settled": False}
    if payment.payer_confirmed_by and payment.payee_confirmed_by:
        ctx.move(ctx.asset(CNY), payment.amount, payer, payee, kind="clearing")
        payment.settled_seq = ctx.seq
        result["settled"] = True
        open_payments = ctx.session.exec(select(ClearingPayment.id).where(
            ClearingPayment.run == record.id, ClearingPayment.settled_seq.is_(None),
            ClearingPayment.id != payment.id)).first()
        if open_payments is None:
            _settle_run(ctx, record)
            result["run_settled"] = record.id
    return result


def _settle_run(ctx: Context, record: ClearingRun) -> None:
    record.status, record.settled_seq = "settled", ctx.seq
    ctx.session.add(record)
    for obligation_id in json.loads(record.body)["obligations"]:
        obligation = ctx.session.get(Obligation, obligation_id)
        obligation.status = "settled"
        ctx.session.add(obligation)


def open_obligations(session: Session, pool: str, cutoff: str) -> list[Obligation]:
    rows = session.exec(select(Obligation).where(
        Obligation.pool == pool, Obligation.status == "open", Obligation.created_at <= cutoff)
        .order_by(Obligation.source_seq, Obligation.id))
    return list(rows.scalars())


def overdue_runs(session: Session, before: str) -> list[ClearingRun]:
    """Runs appended before ``before`` (RFC 3339) whose payments are not all confirmed."""
    rows = session.exec(select(ClearingRun).where(ClearingRun.status == "pending", ClearingRun.time < before)
                        .order_by(ClearingRun.seq))
    return list(rows.scalars())

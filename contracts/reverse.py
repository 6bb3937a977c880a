"""Reversal: an admin corrects a mistake with a new entry that posts the exact opposite.

Nothing is deleted. An entry is reversed at most once; entries whose units reached a sink or
that created obligations cannot be reversed (a sink never gives back, an obligation is settled
by clearing).
"""

from marshmallow import fields, validate
from sqlalchemy import select

from contracts.context import Context
from contracts.errors import Refused
from contracts.fields import OpSchema, text
from contracts.registry import operation
from ledger.projections import Account, Asset, Obligation, Posting, Reversal, SerialMove


class Reverse(OpSchema):
    seq = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    reason = text(max_length=500, required=True)


@operation("reverse", roles=("admin",), schema=Reverse)
def reverse(ctx: Context, op: dict) -> dict:
    target = op["seq"]
    if target >= ctx.seq:
        raise Refused("UNKNOWN_ENTRY", f"there is no entry {target} before this one")
    if (done := ctx.session.get(Reversal, target)) is not None:
        raise Refused("ALREADY_REVERSED", f"entry {target} was reversed by entry {done.by_seq}")
    postings = ctx.session.exec(select(Posting).where(Posting.seq == target).order_by(Posting.n)).scalars().all()
    if not postings:
        raise Refused("NOTHING_TO_REVERSE", f"entry {target} moved nothing")
    accounts = {p.account: ctx.session.get(Account, p.account) for p in postings}
    if any(a.kind == "SINK" for a in accounts.values()):
        raise Refused("IRREVERSIBLE", f"entry {target} moved units into a sink, which never gives them back")
    if ctx.session.exec(select(Obligation.id).where(Obligation.source_seq == target)).first():
        raise Refused("IRREVERSIBLE", f"entry {target} created obligations; clearing settles them")
    moves = ctx.session.exec(select(SerialMove).where(SerialMove.seq == target)
                             .order_by(SerialMove.n.desc())).scalars().all()
    assets = {p.asset: ctx.session.get(Asset, p.asset) for p in postings}
    for move in moves:
        ctx.move_serials(assets[move.asset], move.start, move.end,
                         accounts[move.to_account], accounts[move.from_account], "reverse")
    for posting in postings:
        ctx.post(accounts[posting.account], assets[posting.asset], -posting.amount)
    ctx.session.add(Reversal(reversed_seq=target, by_seq=ctx.seq))
    return {"reversed": target}


"""碳惠天府 and 碳惠通 credits: retirement (注销) with purpose and beneficiary, and serial traces.

Every tonne has a serial number; a serial is retired at most once, whichever programme retires
it (川渝互认): retired serials sit in a ``SINK`` account, and nothing ever leaves a sink.
"""

from marshmallow import fields, validate
from sqlalchemy import select
from sqlmodel import Session

from contracts.context import Context, require_lifecycle
from contracts.fields import OpSchema, decimal_string, ref, text
from contracts.quantities import parse_units
from contracts.registry import operation
from contracts.rights import parse_serials, require_holder
from ledger.projections import SerialMove


class Retire(OpSchema):
    account = ref(required=True)
    asset = ref(required=True)
    quantity = decimal_string(required=True)
    purpose = text(max_length=500, required=True, metadata={"description": "e.g. 大型活动碳中和"})
    beneficiary = text(max_length=200, required=True)
    serials = fields.List(ref(), validate=validate.Length(min=1, max=100), load_default=None)


@operation("retire", roles=("operator",), schema=Retire)
def retire(ctx: Context, op: dict) -> dict:
    asset = ctx.asset(op["asset"])
    require_lifecycle(asset, "retire")
    account = ctx.account(op["account"])
    ctx.require_province(account)
    require_holder(account)
    units = parse_units(op["quantity"], asset.decimals, field="quantity")
    sink = ctx.sink(account.province, "retired")
    serials = ctx.move(asset, units, account, sink, kind="retire", serials=parse_serials(asset, op["serials"]))
    return {"to": sink.id, "serials": serials, "purpose": op["purpose"], "beneficiary": op["beneficiary"]}


def serial_trace(session: Session, asset: str, serial: int) -> list[SerialMove]:
    """Every move of the block holding ``serial``, from issuance on, in log order."""
    rows = session.exec(select(SerialMove).where(
        SerialMove.asset == asset, SerialMove.start <= serial, SerialMove.end >= serial)
        .order_by(SerialMove.seq, SerialMove.n))
    return list(rows.scalars())

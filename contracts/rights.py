"""The lifecycle every right shares: define, issue, transfer, surrender, pledge, expire."""

import json

from marshmallow import fields, validate
from sqlalchemy import select

from contracts.context import Context, canonical_json, require_lifecycle
from contracts.errors import Refused
from contracts.fields import OpSchema, decimal_string, ref, text
from contracts.instruments import INSTRUMENTS
from contracts.principals import home_account_id, instruments_of
from contracts.quantities import parse_units
from contracts.registry import LEDGER_ROLE, operation
from contracts.trades import lapse_trades
from ledger.projections import Asset, Balance, Hold

class AssetDefine(OpSchema):
    instrument = fields.String(required=True, validate=validate.OneOf([c for c in INSTRUMENTS if c != "CNY"]))
    attributes = fields.Dict(keys=fields.String(), required=True)


@operation("asset.define", roles=("issuer",), schema=AssetDefine)
def define_asset(ctx: Context, op: dict) -> dict:
    instrument = INSTRUMENTS[op["instrument"]]
    if instrument.code not in instruments_of(ctx.principal):
        raise Refused("FORBIDDEN_INSTRUMENT", f"{ctx.actor} does not issue {instrument.code}")
    errors = instrument.attributes().validate(op["attributes"])
    if errors:
        raise Refused("INVALID_OP", "the attributes are not valid: " + json.dumps(errors, ensure_ascii=False),
                      errors={"attributes": errors})
    attributes = instrument.attributes().load(op["attributes"])
    asset_id = instrument.asset_id(ctx.principal.province, attributes)
    if ctx.session.get(Asset, asset_id) is not None:
        raise Refused("ASSET_EXISTS", f"asset {asset_id} is defined already")
    ctx.session.add(Asset(id=asset_id, instrument=instrument.code,
                          province=instrument.home_province or ctx.principal.province,
                          attributes=canonical_json(op["attributes"]), decimals=instrument.decimals,
                          issuer=ctx.actor, defined_seq=ctx.seq, expires_on=instrument.expires_on(attributes)))
    return {"asset": asset_id}


class Issue(OpSchema):
    asset = ref(required=True)
    to = ref(required=True)
    quantity = decimal_string(required=True)


@operation("issue", roles=("issuer",), schema=Issue)
def issue(ctx: Context, op: dict) -> dict:
    asset = ctx.asset(op["asset"])
    require_lifecycle(asset, "issue")
    if asset.issuer != ctx.actor:
        raise Refused("FORBIDDEN_INSTRUMENT", f"{asset.id} is issued by {asset.issuer}, not {ctx.actor}")
    holder = ctx.account(op["to"])
    ctx.require_province(holder)
    if holder.kind not in ("ENT", "IND"):
        raise Refused("INVALID_ACCOUNT", f"rights are issued to enterprises and individuals, not {holder.kind}")
    units = parse_units(op["quantity"], asset.decimals, field="quantity")
    serials = ctx.issue(asset, units, ctx.account(home_account_id(ctx.principal)), holder)
    return {"asset": asset.id, "serials": serials}


def require_holder(account) -> None:
    """Only enterprises and individuals hold rights that move: units leave an issuing account
    only by issuance, an exchange's or a bureau's only as CNY."""
    if account.kind == "SINK":
        raise Refused("SINK_RECEIVES_ONLY", f"nothing ever leaves {account.id}")
    if account.kind not in ("ENT", "IND"):
        raise Refused("INVALID_ACCOUNT", f"{account.id} is an {account.kind} account; units move from "
                                         "enterprises and individuals")


def parse_serials(asset, blocks: list[str] | None) -> list[tuple[int, int]] | None:
    """``["<asset>-<start>-<end>", …]`` → [(start, end), …]."""
    if blocks is None:
        return None
    parsed = []
    for block in blocks:
        prefix, _, span = block.removeprefix(asset.id + "-").partition("-")
        if not block.startswith(asset.id + "-") or not (prefix.isdigit() and span.isdigit()):
            raise Refused("INVALID_SERIALS", f"{block!r} is not a serial block of {asset.id} (<asset>-<start>-<end>)")
        start, end = int(prefix), int(span)
        if not 1 <= start <= end:
            raise Refused("INVALID_SERIALS", f"{block!r} is an empty block")
        parsed.append((start, end))
    return parsed


class Transfer(OpSchema):
    asset = ref(required=True)
    source = ref(required=True, data_key="from")
    to = ref(required=True)
    quantity = decimal_string(required=True)
    serials = fields.List(ref(), validate=validate.Length(min=1, max=100), load_default=None)


@operation("transfer", roles=("operator",), schema=Transfer)
def transfer(ctx: Context, op: dict) -> dict:
    asset = ctx.asset(op["asset"])
    require_lifecycle(asset, "transfer")
    source, target = ctx.account(op["source"]), ctx.account(op["to"])
    ctx.require_province(source)
    require_holder(source)
    if target.kind not in ("ENT", "IND"):
        raise Refused("INVALID_ACCOUNT", f"transfers go to enterprises and individuals, not {target.kind}")
    units = parse_units(op["quantity"], asset.decimals, field="quantity")
    return {"serials": ctx.move(asset, units, source, target, kind="transfer", serials=parse_serials(asset, op["serials"]))}


class Surrender(OpSchema):
    account = ref(required=True)
    asset = ref(required=True)
    quantity = decimal_string(required=True)
    compliance_year = fields.Integer(required=True, strict=True, validate=validate.Range(2000, 2100))
    serials = fields.List(ref(), validate=validate.Length(min=1, max=100), load_default=None)


@operation("surrender", roles=("operator", "issuer"), schema=Surrender)
def surrender(ctx: Context, op: dict) -> dict:
    """清缴: units go to the province's ``SINK:surrendered`` for a compliance year."""
    asset = ctx.asset(op["asset"])
    require_lifecycle(asset, "surrender")
    account = ctx.account(op["account"])
    ctx.require_province(account)
    require_holder(account)
    if ctx.role == "issuer" and asset.instrument not in instruments_of(ctx.principal):
        raise Refused("FORBIDDEN_INSTRUMENT", f"{ctx.actor} does not issue {asset.instrument}")
    if asset.instrument == "EUR":
        year = json.loads(asset.attributes)["compliance_year"]
        if op["compliance_year"] != year:
            raise Refused("WRONG_COMPLIANCE_YEAR", f"{asset.id} is surrendered for {year} only")
    units = parse_units(op["quantity"], asset.decimals, field="quantity")
    sink = ctx.sink(account.province, "surrendered")
    serials = ctx.move(asset, units, account, sink, kind="surrender", serials=parse_serials(asset, op["serials"]))
    return {"to": sink.id, "serials": serials}


class Pledge(OpSchema):
    account = ref(required=True)
    asset = ref(required=True)
    quantity = decimal_string(required=True)
    pledgee = text(required=True, metadata={"description": "质权人, e.g. the lending bank"})
    reference = text(load_default=None, metadata={"description": "the pledge contract's number"})


@operation("pledge", roles=("operator",), schema=Pledge)
def pledge(ctx: Context, op: dict) -> dict:
    """质押: the quantity stays with the holder but cannot move until released."""
    asset = ctx.asset(op["asset"])
    require_lifecycle(asset, "pledge")
    account = ctx.account(op["account"])
    ctx.require_province(account)
    units = parse_units(op["quantity"], asset.decimals, field="quantity")
    hold = ctx.hold("pledge", account, asset, units, {"pledgee": op["pledgee"], "reference": op["reference"]})
    return {"pledge": hold.id}


class HoldRelease(OpSchema):
    pledge = ref(required=True)


@operation("pledge.release", roles=("operator",), schema=HoldRelease)
def release_pledge(ctx: Context, op: dict) -> dict:
    hold = ctx.hold_record(op["pledge"], "pledge")
    ctx.require_province(ctx.account(hold.account))
    ctx.release(hold)
    return {"pledge": hold.id}


class Expire(OpSchema):
    asset = ref(required=True)


@operation("expire", roles=(LEDGER_ROLE,), schema=Expire)
def expire(ctx: Context, op: dict) -> dict:
    """At the end of its validity every unit of an asset goes to its holder province's
    ``SINK:expired``; freezes and pledges on it lapse."""
    asset = ctx.asset(op["asset"])
    require_lifecycle(asset, "expire")
    if asset.expires_on is None or ctx.local_date <= asset.expires_on:
        raise Refused("NOT_EXPIRED", f"{asset.id} is valid until {asset.expires_on} (Asia/Shanghai)")
    lapsed = lapse_trades(ctx, asset.id)
    for hold in ctx.session.exec(select(Hold).where(Hold.asset == asset.id, Hold.released_seq.is_(None))).scalars():
        ctx.release(hold)
    moved = []
    holdings = ctx.session.exec(select(Balance).where(Balance.asset == asset.id, Balance.total > 0)
                                .order_by(Balance.account)).scalars().all()
    for balance in holdings:
        holder = ctx.account(balance.account)
        if holder.kind == "SINK":
            continue
        units = balance.total
        ctx.post(holder, asset, -units, lapse=True)
        ctx.post(ctx.sink(holder.province, "expired"), asset, units)
        moved.append(holder.id)
    asset.expired_seq = ctx.seq
    ctx.session.add(asset)
    return {"asset": asset.id, "holders": moved, "trades": lapsed}


def assets_due_to_expire(session, local_date: str) -> list[str]:
    """Assets whose last valid day is before ``local_date`` (Asia/Shanghai) and not yet expired."""
    rows = session.exec(select(Asset.id).where(Asset.expires_on < local_date, Asset.expired_seq.is_(None))
                        .order_by(Asset.id))
    return list(rows.scalars())

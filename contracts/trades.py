"""Trades: rights from seller to buyer against CNY from buyer to seller.

Within one province a trade settles at once. Across provinces it is pending: the seller's rights
and the buyer's CNY are held until the other province's exchange confirms (or either cancels, or
the hold expires). On confirmation the buyer pays its exchange, the seller's exchange pays the
seller, and the buyer's exchange owes the seller's exchange the amount: an obligation in the
``trade`` pool, cleared between the provinces later.
"""

from datetime import timedelta

from marshmallow import fields, validate
from sqlalchemy import select

from contracts.context import Context, require_lifecycle
from contracts.errors import Refused
from contracts.fields import OpSchema, decimal_string, ref
from contracts.instruments import CNY
from contracts.principals import home_account_id
from contracts.quantities import format_units, parse_price, parse_units, trade_amount
from contracts.registry import LEDGER_ROLE, operation
from ledger.entry import format_time, parse_time
from ledger.projections import Hold, Obligation, Trade

DEFAULT_HOLD_HOURS = 72


class TradeOp(OpSchema):
    asset = ref(required=True)
    quantity = decimal_string(required=True)
    price = decimal_string(required=True, metadata={"description": "元 per display unit, at most 4 decimals"})
    seller = ref(required=True)
    buyer = ref(required=True)
    hold_hours = fields.Integer(strict=True, validate=validate.Range(1, 720), load_default=DEFAULT_HOLD_HOURS,
                                metadata={"description": "how long a cross-province trade waits for confirmation"})


@operation("trade", roles=("operator",), schema=TradeOp)
def trade(ctx: Context, op: dict) -> dict:
    asset = ctx.asset(op["asset"])
    require_lifecycle(asset, "trade")
    if asset.instrument == CNY:
        raise Refused("NOT_ALLOWED_FOR_INSTRUMENT", "CNY is the payment leg of a trade, not its subject")
    seller, buyer = ctx.account(op["seller"]), ctx.account(op["buyer"])
    for party in (seller, buyer):
        if party.kind not in ("ENT", "IND"):
            raise Refused("INVALID_ACCOUNT", f"{party.id}: enterprises and individuals trade, not {party.kind}")
    if seller.id == buyer.id:
        raise Refused("SAME_ACCOUNT", "seller and buyer are the same account")
    mine = ctx.principal.province
    if mine not in (seller.province, buyer.province):
        raise Refused("FORBIDDEN_PROVINCE", f"{ctx.actor} ({mine}) is the exchange of neither party")
    units = parse_units(op["quantity"], asset.decimals, field="quantity")
    price = parse_price(op["price"])
    cny = ctx.asset(CNY)
    amount = trade_amount(price, units, asset.decimals)
    exchange = home_account_id(ctx.principal)
    record = Trade(id=ctx.new_id("T"), seq=ctx.seq, asset=asset.id, quantity=units, price=op["price"],
                   amount=amount, seller=seller.id, buyer=buyer.id,
                   seller_exchange=exchange if seller.province == mine else None,
                   buyer_exchange=exchange if buyer.province == mine else None, status="pending")
    result = {"trade": record.id, "amount": format_units(amount, 2)}
    if seller.province == buyer.province:
        result["serials"] = ctx.move(asset, units, seller, buyer, kind="trade")
        ctx.move(cny, amount, buyer, seller, kind="trade")
        record.status, record.closed_seq = "settled", ctx.seq
    else:
        ctx.hold("trade", seller, asset, units, {"trade": record.id}, hold_id=f"{record.id}/seller")
        ctx.hold("trade", buyer, cny, amount, {"trade": record.id}, hold_id=f"{record.id}/buyer")
        record.expires_at = format_time(ctx.moment + timedelta(hours=op["hold_hours"]))
        result["expires_at"] = record.expires_at
    ctx.session.add(record)
    result["status"] = record.status
    return result


class TradeRef(OpSchema):
    trade = ref(required=True)


def _pending(ctx: Context, trade_id: str) -> Trade:
    record = ctx.session.get(Trade, trade_id)
    if record is None:
        raise Refused("UNKNOWN_TRADE", f"there is no trade {trade_id!r}")
    if record.status != "pending":
        raise Refused("TRADE_NOT_PENDING", f"trade {trade_id} is {record.status}")
    return record


def _release_holds(ctx: Context, record: Trade) -> None:
    for side in ("seller", "buyer"):
        ctx.release(ctx.session.get(Hold, f"{record.id}/{side}"))


def _close(ctx: Context, record: Trade, status: str) -> dict:
    record.status, record.closed_seq = status, ctx.seq
    ctx.session.add(record)
    return {"trade": record.id, "status": status}


@operation("trade.confirm", roles=("operator",), schema=TradeRef)
def confirm(ctx: Context, op: dict) -> dict:
    record = _pending(ctx, op["trade"])
    seller, buyer = ctx.account(record.seller), ctx.account(record.buyer)
    side = "seller" if record.seller_exchange is None else "buyer"
    party = seller if side == "seller" else buyer
    if ctx.principal.province != party.province:
        raise Refused("FORBIDDEN_PROVINCE", f"trade {record.id} waits for the {side}'s exchange in {party.province}")
    if ctx.time >= record.expires_at:
        raise Refused("HOLD_EXPIRED", f"trade {record.id} expired at {record.expires_at}")
    setattr(record, f"{side}_exchange", home_account_id(ctx.principal))
    _release_holds(ctx, record)
    asset, cny = ctx.asset(record.asset), ctx.asset(CNY)
    serials = ctx.move(asset, record.quantity, seller, buyer, kind="trade")
    seller_exchange, buyer_exchange = ctx.account(record.seller_exchange), ctx.account(record.buyer_exchange)
    ctx.move(cny, record.amount, buyer, buyer_exchange, kind="trade")
    ctx.move(cny, record.amount, seller_exchange, seller, kind="trade")
    result = {**_close(ctx, record, "confirmed"), "serials": serials}
    if record.amount > 0:  # a trade that rounds to 0.00 元 owes nothing
        obligation = Obligation(id=ctx.new_id("O"), pool="trade", debtor=buyer_exchange.id,
                                creditor=seller_exchange.id, amount=record.amount, source_seq=ctx.seq,
                                created_at=ctx.time)
        ctx.session.add(obligation)
        result["obligation"] = obligation.id
    return result


@operation("trade.cancel", roles=("operator",), schema=TradeRef)
def cancel(ctx: Context, op: dict) -> dict:
    record = _pending(ctx, op["trade"])
    provinces = {ctx.account(record.seller).province, ctx.account(record.buyer).province}
    if ctx.principal.province not in provinces:
        raise Refused("FORBIDDEN_PROVINCE", f"{ctx.actor} is the exchange of neither party to {record.id}")
    _release_holds(ctx, record)
    return _close(ctx, record, "cancelled")


@operation("trade.expire", roles=(LEDGER_ROLE,), schema=TradeRef)
def expire_trade(ctx: Context, op: dict) -> dict:
    record = _pending(ctx, op["trade"])
    if parse_time(ctx.time) < parse_time(record.expires_at):
        raise Refused("NOT_EXPIRED", f"trade {record.id} is held until {record.expires_at}")
    _release_holds(ctx, record)
    return _close(ctx, record, "expired")


def lapse_trades(ctx: Context, asset_id: str) -> list[str]:
    """Close the pending trades of an asset that is expiring: both holds are released."""
    pending = ctx.session.exec(select(Trade).where(Trade.asset == asset_id, Trade.status == "pending")
                               .order_by(Trade.seq)).scalars().all()
    for record in pending:
        _release_holds(ctx, record)
        _close(ctx, record, "expired")
    return [record.id for record in pending]


def trades_due_to_expire(session, time: str) -> list[str]:
    rows = session.exec(select(Trade.id).where(Trade.status == "pending", Trade.expires_at <= time)
                        .order_by(Trade.seq))
    return list(rows.scalars())

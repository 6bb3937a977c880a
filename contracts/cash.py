"""CNY: deposits into and withdrawals from an exchange's clearing account.

An exchange's ``EXC`` account may go negative: it owes its depositors what they deposited.
"""

from contracts.context import Context
from contracts.errors import Refused
from contracts.fields import OpSchema, decimal_string, ref
from contracts.instruments import CNY
from contracts.principals import home_account_id
from contracts.quantities import parse_units
from contracts.registry import operation


class CashMovement(OpSchema):
    account = ref(required=True)
    amount = decimal_string(required=True, metadata={"description": "元, at most 2 decimals"})


def _exchange_and_holder(ctx: Context, account_id: str):
    holder = ctx.account(account_id)
    ctx.require_province(holder)
    if holder.kind not in ("ENT", "IND"):
        raise Refused("INVALID_ACCOUNT", f"CNY is deposited for enterprises and individuals, not {holder.kind}")
    return ctx.account(home_account_id(ctx.principal)), holder


@operation("cny.deposit", roles=("operator",), schema=CashMovement)
def deposit(ctx: Context, op: dict) -> dict:
    exchange, holder = _exchange_and_holder(ctx, op["account"])
    cny = ctx.asset(CNY)
    ctx.move(cny, parse_units(op["amount"], cny.decimals, field="amount"), exchange, holder, kind="deposit")
    return {"account": holder.id}


@operation("cny.withdraw", roles=("operator",), schema=CashMovement)
def withdraw(ctx: Context, op: dict) -> dict:
    exchange, holder = _exchange_and_holder(ctx, op["account"])
    cny = ctx.asset(CNY)
    ctx.move(cny, parse_units(op["amount"], cny.decimals, field="amount"), holder, exchange, kind="withdraw")
    return {"account": holder.id}

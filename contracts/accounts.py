"""Accounts: ``<PROVINCE>:<KIND>:<local id>``, their kinds, opening them, freezing them."""

import re

from marshmallow import ValidationError, fields, validates_schema

from contracts.context import Context, canonical_json, require_lifecycle
from contracts.errors import Refused
from contracts.fields import OpSchema, decimal_string, ref, text
from contracts.quantities import parse_units
from contracts.registry import operation
from contracts.uscc import uscc_error
from ledger.projections import Account, Hold

KINDS = ("ENT", "IND", "ISS", "EXC", "FIN", "SINK")
ACCOUNT_ID = re.compile(r"(?P<province>[A-Z]{2}):(?P<kind>[A-Z]{3,4}):(?P<local>[A-Za-z0-9._-]{1,64})")
OPERATOR_KINDS = frozenset({"ENT", "IND"})
ADMIN_KINDS = frozenset({"ENT", "IND", "ISS", "EXC", "FIN"})


def parse_account_id(account_id: str) -> tuple[str, str, str]:
    """``SC:ENT:91510100…`` → (province, kind, local id); refuses malformed ids and bad USCCs."""
    match = ACCOUNT_ID.fullmatch(account_id)
    if not match or match["kind"] not in KINDS:
        raise Refused("INVALID_ACCOUNT", f"{account_id!r} is not <PROVINCE>:<KIND>:<local id> with KIND one of "
                                         + ", ".join(KINDS))
    if match["kind"] == "ENT" and (problem := uscc_error(match["local"])):
        raise Refused("INVALID_USCC", problem)
    return match["province"], match["kind"], match["local"]


class AccountOpen(OpSchema):
    account = ref(required=True)
    name = text(required=True, metadata={"description": "the holder's registered name"})


@operation("account.open", roles=("operator", "admin"), schema=AccountOpen)
def open_account(ctx: Context, op: dict) -> dict:
    province, kind, _ = parse_account_id(op["account"])
    allowed = ADMIN_KINDS if ctx.role == "admin" else OPERATOR_KINDS
    if kind not in allowed:
        raise Refused("FORBIDDEN_ROLE", f"a {ctx.role} cannot open {kind} accounts")
    account = Account(id=op["account"], province=province, kind=kind, name=op["name"], opened_seq=ctx.seq)
    ctx.require_province(account)
    if ctx.session.get(Account, account.id) is not None:
        raise Refused("ACCOUNT_EXISTS", f"account {account.id} is open already")
    ctx.session.add(account)
    return {"account": account.id}


class AccountFreeze(OpSchema):
    account = ref(required=True)
    asset = ref(load_default=None)
    quantity = decimal_string(load_default=None)
    reason = text(max_length=500, required=True, metadata={"description": "e.g. the court's ruling (司法冻结)"})

    @validates_schema
    def whole_or_part(self, data, **_):
        if (data["asset"] is None) != (data["quantity"] is None):
            raise ValidationError("give asset and quantity to freeze a quantity, neither to freeze the account",
                                  "quantity")


@operation("account.freeze", roles=("operator", "admin"), schema=AccountFreeze)
def freeze(ctx: Context, op: dict) -> dict:
    """Freeze a quantity of an asset, or (no asset) the whole account: nothing leaves it."""
    account = ctx.account(op["account"])
    ctx.require_province(account)
    details = {"reason": op["reason"]}
    if op["asset"] is None:
        if account.frozen_by is not None:
            raise Refused("ACCOUNT_FROZEN", f"account {account.id} is frozen already ({account.frozen_by})")
        hold = Hold(id=ctx.new_id("F"), kind="freeze", account=account.id, details=canonical_json(details),
                    created_seq=ctx.seq)
        ctx.session.add(hold)
        account.frozen_by = hold.id
        ctx.session.add(account)
        return {"freeze": hold.id}
    asset = ctx.asset(op["asset"])
    require_lifecycle(asset, "freeze")
    units = parse_units(op["quantity"], asset.decimals, field="quantity")
    return {"freeze": ctx.hold("freeze", account, asset, units, details).id}


class AccountUnfreeze(OpSchema):
    freeze = ref(required=True)


@operation("account.unfreeze", roles=("operator", "admin"), schema=AccountUnfreeze)
def unfreeze(ctx: Context, op: dict) -> dict:
    hold = ctx.hold_record(op["freeze"], "freeze")
    account = ctx.account(hold.account)
    ctx.require_province(account)
    if account.frozen_by == hold.id:
        account.frozen_by = None
        ctx.session.add(account)
    ctx.release(hold)
    return {"freeze": hold.id}


"""Principals: who may sign commands, with which role, for which province, with which key.

The key registry lives in the log: ``principal.add`` registers a principal with its first key,
``principal.rotate_key`` replaces it. A key signs for seqs from its ``from_seq`` up to, not
including, its ``until_seq``; a command must be signed with the key valid when it is appended.
"""

import json

from marshmallow import ValidationError, fields, validate, validates_schema
from sqlalchemy import select
from sqlmodel import Session

from contracts.context import Context
from contracts.errors import Refused
from contracts.fields import NAME, OpSchema, province, text, whole
from contracts.instruments import INSTRUMENTS
from contracts.registry import LEDGER_ROLE, ROLES, operation
from ledger.entry import LEDGER_ACTOR
from ledger.errors import VerificationError
from ledger.keys import VerifierKey
from ledger.projections import Account, Principal, PrincipalKey

PROVINCIAL_ROLES = frozenset({"issuer", "operator", "finance", "monitor"})
HOME_ACCOUNTS = {"issuer": "ISS", "operator": "EXC", "finance": "FIN"}


def home_account_id(principal: Principal) -> str | None:
    """The account a principal's role gives it: an issuer's ISS, an exchange's EXC, a bureau's FIN."""
    kind = HOME_ACCOUNTS.get(principal.role)
    if kind is None:
        return None
    local = "treasury" if kind == "FIN" else principal.name
    return f"{principal.province}:{kind}:{local}"


class PrincipalAdd(OpSchema):
    name = fields.String(required=True, validate=whole(
        NAME, error="a principal's name is 1–64 lowercase letters, digits, '.', '_' or '-'"))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    province = province(load_default=None)
    key = text(max_length=200, required=True)
    display_name = text(max_length=200, load_default="")
    instruments = fields.List(fields.String(validate=validate.OneOf(sorted(INSTRUMENTS))), load_default=list)

    @validates_schema
    def check_role(self, data, **_):
        role, where = data["role"], data.get("province")
        if role in PROVINCIAL_ROLES and where is None:
            raise ValidationError(f"{_a(role)} belongs to a province", "province")
        if role not in PROVINCIAL_ROLES and where is not None:
            raise ValidationError(f"{_a(role)} has no province", "province")
        if role == "issuer" and not data["instruments"]:
            raise ValidationError("an issuer issues at least one instrument", "instruments")
        if role != "issuer" and data["instruments"]:
            raise ValidationError("only issuers have instruments", "instruments")
        if data["name"] == LEDGER_ACTOR:
            raise ValidationError("the name 'ledger' is the ledger's own", "name")


def _a(role: str) -> str:
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"


def _principal_key(name: str, key: str) -> str:
    try:
        parsed = VerifierKey.parse(key)
    except VerificationError as error:
        raise Refused("INVALID_KEY", str(error)) from None
    if parsed.name != name:
        raise Refused("INVALID_KEY", f"the key is named {parsed.name!r}; a principal's key carries its name {name!r}")
    return str(parsed)


@operation("principal.add", roles=("admin", LEDGER_ROLE), schema=PrincipalAdd)
def add_principal(ctx: Context, op: dict) -> dict:
    if ctx.session.get(Principal, op["name"]) is not None:
        raise Refused("PRINCIPAL_EXISTS", f"there is a principal {op['name']!r} already")
    for code in op["instruments"]:
        home = INSTRUMENTS[code].home_province
        if home is not None and home != op["province"]:
            raise Refused("FORBIDDEN_INSTRUMENT", f"{code} is issued in {home} only")
    key = _principal_key(op["name"], op["key"])
    if ctx.session.get(PrincipalKey, key) is not None:
        raise Refused("INVALID_KEY", "that key is registered already")
    principal = Principal(name=op["name"], role=op["role"], province=op["province"],
                          instruments=json.dumps(sorted(op["instruments"])),
                          display_name=op["display_name"], added_seq=ctx.seq)
    ctx.session.add(principal)
    ctx.session.add(PrincipalKey(verifier=key, principal=principal.name, from_seq=ctx.seq))
    result = {"principal": principal.name}
    account_id = home_account_id(principal)
    if account_id is not None:
        if ctx.session.get(Account, account_id) is None:
            kind = account_id.split(":")[1]
            ctx.session.add(Account(id=account_id, province=principal.province, kind=kind,
                                    name=principal.display_name or principal.name, opened_seq=ctx.seq))
        result["account"] = account_id
    return result


class PrincipalRotateKey(OpSchema):
    name = text(max_length=64, required=True)
    key = text(max_length=200, required=True)


@operation("principal.rotate_key", roles=ROLES + (LEDGER_ROLE,), schema=PrincipalRotateKey)
def rotate_principal_key(ctx: Context, op: dict) -> dict:
    """Admin (or the ledger) may rotate anyone's key; anyone else only their own."""
    if ctx.role not in ("admin", LEDGER_ROLE) and op["name"] != ctx.actor:
        raise Refused("FORBIDDEN_ROLE", f"{ctx.actor} may rotate its own key only")
    principal = ctx.session.get(Principal, op["name"])
    if principal is None:
        raise Refused("UNKNOWN_PRINCIPAL", f"there is no principal {op['name']!r}")
    key = _principal_key(principal.name, op["key"])
    if ctx.session.get(PrincipalKey, key) is not None:
        raise Refused("INVALID_KEY", "that key is registered already")
    current = current_key(ctx.session, principal.name)
    current.until_seq = ctx.seq + 1
    ctx.session.add(current)
    ctx.session.add(PrincipalKey(verifier=key, principal=principal.name, from_seq=ctx.seq + 1))
    return {"principal": principal.name, "key": key, "valid_from_seq": ctx.seq + 1}


def current_key(session: Session, name: str) -> PrincipalKey:
    return session.exec(select(PrincipalKey).where(
        PrincipalKey.principal == name, PrincipalKey.until_seq.is_(None))).scalars().one()


def key_valid_at(session: Session, name: str, verifier: str, seq: int) -> bool:
    key = session.get(PrincipalKey, verifier)
    return (key is not None and key.principal == name and key.from_seq <= seq
            and (key.until_seq is None or seq < key.until_seq))


def instruments_of(principal: Principal) -> list[str]:
    return json.loads(principal.instruments)

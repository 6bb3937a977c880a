"""Query parameters and answer bodies of the registry's reads.

Every quantity and amount is a decimal string with exactly its asset's decimals (``"89.500"``
for 排污权 in t, ``"2000.00"`` for CNY in 元, ``"100"`` for credits in tCO2e), never a number:
integers of the smallest unit inside, :func:`contracts.quantities.format_units` on the wire.
Balances of ``ISS``, ``EXC`` and ``FIN`` accounts and postings out of an account are negative.
"""

from marshmallow import RAISE, Schema, fields, validate

from api.log.schemas import KeyPeriodSchema
from contracts.accounts import KINDS
from contracts.instruments import INSTRUMENTS
from contracts.registry import ROLES

MAX_PAGE = 1000
DEFAULT_PAGE = 100
TRADE_STATUSES = ("settled", "pending", "confirmed", "cancelled", "expired")

_PROVINCE = validate.Regexp(r"[A-Z]{2}\Z", error="a province is two capital letters, e.g. SC")
_ACCOUNT = validate.Regexp(r"[A-Z]{2}:[A-Z]{3,4}:[A-Za-z0-9._-]{1,64}\Z",
                           error="an account id is <PROVINCE>:<KIND>:<local id>")
_REF = validate.Regexp(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,119}\Z", error="not an id of the ledger")
_WORD = validate.Regexp(r"[a-z][a-z0-9_-]{0,15}\Z", error="lowercase letters, at most 16")


def quantity(description: str = "decimal string with the asset's decimals", **kwargs) -> fields.String:
    return fields.String(metadata={"description": description, "example": "89.500"}, **kwargs)


def money(description: str = "元, a decimal string with 2 decimals", **kwargs) -> fields.String:
    return fields.String(metadata={"description": description, "example": "2000.00"}, **kwargs)


# -- queries -----------------------------------------------------------------------------------


class PageQuery(Schema):
    class Meta:
        unknown = RAISE

    limit = fields.Integer(load_default=DEFAULT_PAGE, validate=validate.Range(min=1, max=MAX_PAGE),
                           metadata={"description": f"items per page, 1 to {MAX_PAGE} (default {DEFAULT_PAGE})"})
    cursor = fields.String(validate=validate.Length(min=1, max=1000),
                           metadata={"description": "the `next` of the previous page; opaque"})


class AccountsQuery(PageQuery):
    province = fields.String(validate=_PROVINCE)
    kind = fields.String(validate=validate.OneOf(KINDS))


class HistoryQuery(PageQuery):
    asset = fields.String(validate=_REF, metadata={"description": "only the postings of this asset"})


class AssetsQuery(PageQuery):
    instrument = fields.String(validate=validate.OneOf(sorted(INSTRUMENTS)))
    province = fields.String(validate=_PROVINCE, metadata={"description": "the asset's province"})


class SerialQuery(PageQuery):
    pass


class TradesQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(TRADE_STATUSES))
    asset = fields.String(validate=_REF)
    account = fields.String(validate=_ACCOUNT, metadata={"description": "trades where it is seller or buyer"})


class HoldsQuery(PageQuery):
    account = fields.String(validate=_ACCOUNT)
    asset = fields.String(validate=_REF)
    open = fields.Boolean(metadata={"description": "true: not released yet; false: released"})


class ObligationsQuery(PageQuery):
    pool = fields.String(validate=_WORD, metadata={"description": "trade or compensation"})
    status = fields.String(validate=_WORD, metadata={"description": "e.g. open"})
    debtor = fields.String(validate=_ACCOUNT)
    creditor = fields.String(validate=_ACCOUNT)


class PrincipalsQuery(PageQuery):
    role = fields.String(validate=validate.OneOf(ROLES))
    province = fields.String(validate=_PROVINCE)


# -- answers -----------------------------------------------------------------------------------


def page_of(schema: type[Schema], name: str) -> type[Schema]:
    """``{"items": [schema…], "next": cursor | null}``."""
    return type(Schema)(name, (Schema,), {
        "items": fields.List(fields.Nested(schema), required=True),
        "next": fields.String(allow_none=True, required=True,
                              metadata={"description": "pass as ?cursor= for the next page; null on the last"}),
        "__doc__": f"A page of {schema.__name__.removesuffix('Schema').lower()} items.",
    })


class AccountSchema(Schema):
    id = fields.String(required=True, metadata={"example": "SC:ENT:91510100MA6C00001Q"})
    province = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": ", ".join(KINDS)})
    name = fields.String(required=True)
    opened_seq = fields.Integer(required=True)
    frozen_by = fields.String(allow_none=True, required=True,
                              metadata={"description": "the freeze blocking the whole account, if any"})


class BalanceSchema(Schema):
    asset = fields.String(required=True)
    instrument = fields.String(required=True)
    decimals = fields.Integer(required=True)
    total = quantity("everything the account holds; negative for ISS, EXC and FIN", required=True)
    available = quantity("total − frozen − pledged − held: what may move now", required=True)
    frozen = quantity("under freezes (司法冻结)", required=True)
    pledged = quantity("under pledges (质押)", required=True)
    held = quantity("held by pending cross-province trades", required=True)


class AccountDetailSchema(AccountSchema):
    balances = fields.List(fields.Nested(BalanceSchema), required=True,
                           metadata={"description": "one per asset the account ever held, by asset id"})


class PostingSchema(Schema):
    seq = fields.Integer(required=True, metadata={"description": "the entry"})
    n = fields.Integer(required=True, metadata={"description": "the posting's index within the entry"})
    op = fields.Integer(required=True, metadata={"description": "the index of the op within the command"})
    operation = fields.String(allow_none=True, required=True, metadata={"description": "the op's name"})
    actor = fields.String(allow_none=True, required=True)
    time = fields.String(allow_none=True, required=True, metadata={"description": "the entry's time, RFC 3339 UTC"})
    asset = fields.String(required=True)
    amount = quantity("signed: positive into the account, negative out of it", required=True)
    reversed_by = fields.Integer(allow_none=True, required=True,
                                 metadata={"description": "the entry that reversed this one, if any"})


class AssetTotalsSchema(Schema):
    issued = quantity("−(sum of the ISS, EXC and FIN balances): issuance net of reversals; "
                      "for CNY, net deposits", required=True)
    outstanding = quantity("held by enterprises and individuals (ENT, IND)", required=True)
    surrendered = quantity("in the provinces' SINK:surrendered", required=True)
    retired = quantity("in the provinces' SINK:retired", required=True)
    expired = quantity("in the provinces' SINK:expired", required=True)


class AssetSchema(Schema):
    id = fields.String(required=True, metadata={"example": "PDR-SC-COD-20250101-20291231"})
    instrument = fields.String(required=True)
    name = fields.String(required=True, metadata={"description": "the instrument's name, e.g. 排污权"})
    unit = fields.String(required=True, metadata={"description": "display unit of quantities"})
    decimals = fields.Integer(required=True)
    province = fields.String(required=True)
    issuer = fields.String(required=True)
    attributes = fields.Dict(required=True)
    defined_seq = fields.Integer(required=True)
    expires_on = fields.String(allow_none=True, required=True,
                               metadata={"description": "last day of validity (Asia/Shanghai)"})
    expired_seq = fields.Integer(allow_none=True, required=True)
    last_serial = fields.Integer(allow_none=True, required=True,
                                 metadata={"description": "carbon credits: the highest serial issued so far"})
    totals = fields.Nested(AssetTotalsSchema, required=True)


class SerialMoveSchema(Schema):
    seq = fields.Integer(required=True)
    n = fields.Integer(required=True, metadata={"description": "the move's index within the entry"})
    time = fields.String(allow_none=True, required=True)
    kind = fields.String(required=True, metadata={"description": "issue, transfer, trade, surrender, retire, reverse"})
    from_account = fields.String(required=True, data_key="from")
    to_account = fields.String(required=True, data_key="to")
    block = fields.String(required=True, metadata={"description": "<asset>-<start>-<end>, the block that moved"})


class SerialTraceSchema(Schema):
    asset = fields.String(required=True)
    serial = fields.Integer(required=True)
    issued_seq = fields.Integer(required=True)
    holder = fields.String(required=True, metadata={"description": "the account holding it now"})
    block = fields.String(required=True, metadata={"description": "the block it is part of now"})
    status = fields.String(required=True, metadata={"description": "held; retired or surrendered (in a sink); "
                                                             "reversed (back with its issuer)"})
    items = fields.List(fields.Nested(SerialMoveSchema), required=True,
                        metadata={"description": "its moves from issuance on, in log order"})
    next = fields.String(allow_none=True, required=True)


class TradeSchema(Schema):
    id = fields.String(required=True)
    seq = fields.Integer(required=True)
    asset = fields.String(required=True)
    quantity = quantity(required=True)
    price = fields.String(required=True, metadata={"description": "元 per display unit, as sent"})
    amount = money("price × quantity in 元, rounded half-up to the fen", required=True)
    seller = fields.String(required=True)
    buyer = fields.String(required=True)
    seller_exchange = fields.String(allow_none=True, required=True)
    buyer_exchange = fields.String(allow_none=True, required=True)
    status = fields.String(required=True, metadata={"description": ", ".join(TRADE_STATUSES)})
    expires_at = fields.String(allow_none=True, required=True)
    closed_seq = fields.Integer(allow_none=True, required=True)


class HoldSchema(Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "pledge or freeze"})
    account = fields.String(required=True)
    asset = fields.String(allow_none=True, required=True, metadata={"description": "null: the whole account"})
    quantity = quantity(allow_none=True, required=True)
    details = fields.Dict(required=True, metadata={"description": "pledge: pledgee, reference; freeze: reason"})
    created_seq = fields.Integer(required=True)
    released_seq = fields.Integer(allow_none=True, required=True)
    open = fields.Boolean(required=True)


class ObligationSchema(Schema):
    id = fields.String(required=True)
    pool = fields.String(required=True)
    debtor = fields.String(required=True)
    creditor = fields.String(required=True)
    amount = money(required=True)
    source_seq = fields.Integer(required=True)
    created_at = fields.String(allow_none=True, required=True, metadata={"description": "the source entry's time"})
    status = fields.String(required=True, metadata={"description": "open, cleared or settled"})
    clearing = fields.String(allow_none=True, required=True)


class PrincipalSchema(Schema):
    name = fields.String(required=True)
    role = fields.String(required=True)
    province = fields.String(allow_none=True, required=True)
    instruments = fields.List(fields.String(), required=True)
    display_name = fields.String(required=True)
    added_seq = fields.Integer(required=True)
    keys = fields.List(fields.Nested(KeyPeriodSchema), required=True,
                       metadata={"description": "its keys, oldest first, with the seqs each signs for"})


AccountPageSchema = page_of(AccountSchema, "AccountPageSchema")
PostingPageSchema = page_of(PostingSchema, "PostingPageSchema")
AssetPageSchema = page_of(AssetSchema, "AssetPageSchema")
TradePageSchema = page_of(TradeSchema, "TradePageSchema")
HoldPageSchema = page_of(HoldSchema, "HoldPageSchema")
ObligationPageSchema = page_of(ObligationSchema, "ObligationPageSchema")
PrincipalPageSchema = page_of(PrincipalSchema, "PrincipalPageSchema")

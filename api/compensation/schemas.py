"""Query parameters and answer bodies of the compensation and clearing reads.

Money is always a decimal string in 元 with exactly two decimals (``"1000000.00"``), never a
number: fen integers inside, :func:`contracts.quantities.format_units` on the wire. Amounts of a
statement are the statement's own strings, as appended. Concentrations (mg/L) are the decimal
strings the monitor sent.
"""

from marshmallow import Schema, fields, validate

from api.registry.schemas import _PROVINCE, _REF, PageQuery, money, page_of
from api.registry.schemas import ObligationSchema
from contracts.clearing import POOLS

AGREEMENT_STATUSES = ("proposed", "active")
RUN_STATUSES = ("pending", "settled")
PERIOD = validate.Regexp(r"[0-9]{4}(-(0[1-9]|1[0-2]))?\Z", error="a period is YYYY or YYYY-MM, e.g. 2025-07")
_POOL = validate.OneOf(sorted(POOLS))


# -- queries -----------------------------------------------------------------------------------


class AgreementsQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(AGREEMENT_STATUSES),
                           metadata={"description": "active: some version is active; proposed: none is yet"})
    party = fields.String(validate=_PROVINCE, metadata={"description": "agreements this province is a party to"})


class StatementsQuery(PageQuery):
    period = fields.String(validate=PERIOD, metadata={"description": "only the statements of this period"})
    current = fields.Boolean(metadata={"description": "true: only statements not superseded; "
                                                      "false: only superseded ones"})


class SubmissionsQuery(PageQuery):
    section = fields.String(validate=_REF, metadata={"description": "only the submissions of this section"})
    current = fields.Boolean(metadata={"description": "true: hide submissions replaced by a correction; "
                                                      "false: only those"})


class SummaryQuery(PageQuery):
    pool = fields.String(validate=_POOL, metadata={"description": "trade or compensation"})


class RunsQuery(PageQuery):
    pool = fields.String(validate=_POOL, metadata={"description": "trade or compensation"})
    status = fields.String(validate=validate.OneOf(RUN_STATUSES),
                           metadata={"description": "pending: a payment waits for a confirmation"})


class OverdueQuery(PageQuery):
    pool = fields.String(validate=_POOL, metadata={"description": "trade or compensation"})


# -- agreements --------------------------------------------------------------------------------


class PartySchema(Schema):
    id = fields.String(required=True, metadata={"description": "province code", "example": "SC"})
    name = fields.String(required=True)
    account = fields.String(required=True, metadata={"example": "SC:FIN:treasury"})


class SectionSchema(Schema):
    id = fields.String(required=True, metadata={"example": "qj-guanghui"})
    name = fields.String(required=True)
    river = fields.String(required=True)
    water_body = fields.String(required=True, metadata={"description": "river or lake"})
    upstream = fields.List(fields.String(), required=True)
    downstream = fields.List(fields.String(), required=True)
    shares = fields.Dict(keys=fields.String(), values=fields.String(), allow_none=True, required=True,
                         metadata={"description": "how a side's amount is split among its parties; null: equally"})


class TermSchema(Schema):
    start = fields.String(required=True, data_key="from", metadata={"example": "2025-01-01"})
    end = fields.String(required=True, data_key="to", metadata={"example": "2027-12-31"})


class SignatureSchema(Schema):
    party = fields.String(required=True, metadata={"description": "the province that signed"})
    principal = fields.String(required=True, metadata={"description": "its finance principal"})
    seq = fields.Integer(required=True, metadata={"description": "the entry of the proposal or the signature"})


class AgreementVersionSchema(Schema):
    agreement = fields.String(required=True)
    version = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"description": ", ".join(AGREEMENT_STATUSES)})
    digest = fields.String(required=True, metadata={"description": "base64 SHA-256 of JCS(document): "
                                                                   "what the other parties signed"})
    title = fields.String(required=True)
    period = fields.String(required=True, metadata={"description": "month or year"})
    term = fields.Nested(TermSchema, required=True)
    parties = fields.List(fields.Nested(PartySchema), required=True)
    proposed_by = fields.String(required=True)
    proposed_seq = fields.Integer(required=True)
    activated_seq = fields.Integer(allow_none=True, required=True,
                                   metadata={"description": "the signature that made it active, if any"})
    signatures = fields.List(fields.Nested(SignatureSchema), required=True,
                             metadata={"description": "the proposal counts as its party's signature; in log order"})
    waiting_for = fields.List(fields.String(), required=True,
                              metadata={"description": "parties that have not signed yet"})
    document = fields.Dict(required=True, metadata={"description": "the agreement document as proposed"})


class AgreementVersionBriefSchema(Schema):
    version = fields.Integer(required=True)
    status = fields.String(required=True)
    digest = fields.String(required=True)
    term = fields.Nested(TermSchema, required=True)
    proposed_seq = fields.Integer(required=True)
    activated_seq = fields.Integer(allow_none=True, required=True)


class AgreementSummarySchema(Schema):
    id = fields.String(required=True, metadata={"example": "qiongjiang"})
    title = fields.String(required=True, metadata={"description": "of the newest version"})
    status = fields.String(required=True, metadata={"description": "active once any version is active"})
    period = fields.String(required=True, metadata={"description": "month or year (newest version)"})
    parties = fields.List(fields.Nested(PartySchema), required=True, metadata={"description": "newest version's"})
    sections = fields.List(fields.Nested(SectionSchema), required=True, metadata={"description": "newest version's"})
    active_version = fields.Integer(allow_none=True, required=True,
                                    metadata={"description": "the newest active version"})
    latest_version = fields.Integer(required=True)
    versions = fields.List(fields.Nested(AgreementVersionBriefSchema), required=True,
                           metadata={"description": "every version, oldest first"})


class AgreementSchema(Schema):
    id = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "active once any version is active"})
    active_version = fields.Integer(allow_none=True, required=True)
    latest_version = fields.Integer(required=True)
    versions = fields.List(fields.Nested(AgreementVersionSchema), required=True,
                           metadata={"description": "every version, oldest first"})


# -- statements --------------------------------------------------------------------------------


class TransferSchema(Schema):
    source = fields.String(required=True, data_key="from", metadata={"description": "the paying party"})
    to = fields.String(required=True, metadata={"description": "the receiving party"})
    amount = money(required=True)


class SectionOutcomeSchema(Schema):
    section = fields.String(required=True)
    name = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "settled, or unsettled when an indicator "
                                                                   "has no sample in the period"})
    section_class = fields.Integer(allow_none=True, required=True, data_key="class",
                                   metadata={"description": "1–5, 6 for 劣V; null when unsettled"})
    amount = money("positive: downstream pays upstream", required=True)


class StatementSummarySchema(Schema):
    id = fields.String(required=True, metadata={"example": "S-120-0"})
    agreement = fields.String(required=True)
    version = fields.Integer(required=True, metadata={"description": "the agreement version it was computed under"})
    period = fields.String(required=True)
    seq = fields.Integer(required=True)
    time = fields.String(allow_none=True, required=True, metadata={"description": "the entry's time, RFC 3339 UTC"})
    digest = fields.String(allow_none=True, required=True, metadata={"description": "the agreement version's digest"})
    supersedes = fields.String(allow_none=True, required=True)
    superseded_by = fields.String(allow_none=True, required=True)
    current = fields.Boolean(required=True, metadata={"description": "not superseded"})
    transfers = fields.List(fields.Nested(TransferSchema), required=True,
                            metadata={"description": "what the period is worth, net per pair of parties"})
    sections = fields.List(fields.Nested(SectionOutcomeSchema), required=True)


class StatementSchema(StatementSummarySchema):
    obligations = fields.List(fields.Nested(ObligationSchema), required=True,
                              metadata={"description": "the obligations this statement created: the "
                                                       "difference from the one it supersedes"})
    statement = fields.Dict(required=True, metadata={"description": "the statement exactly as appended"})


class StatementLinkSchema(Schema):
    id = fields.String(required=True)
    seq = fields.Integer(required=True)
    time = fields.String(allow_none=True, required=True)
    supersedes = fields.String(allow_none=True, required=True)
    superseded_by = fields.String(allow_none=True, required=True)
    transfers = fields.List(fields.Nested(TransferSchema), required=True)


class PeriodStatementSchema(StatementSchema):
    history = fields.List(fields.Nested(StatementLinkSchema), required=True,
                          metadata={"description": "the statements of the period it superseded, oldest first"})


# -- monitoring --------------------------------------------------------------------------------


class SampleSchema(Schema):
    date = fields.String(required=True, metadata={"example": "2025-07-03"})
    values = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                         metadata={"description": "indicator → mg/L as a decimal string"})


class SubmissionSummarySchema(Schema):
    id = fields.String(required=True, metadata={"example": "M-57-0"})
    section = fields.String(required=True)
    submitted_by = fields.String(required=True)
    seq = fields.Integer(required=True)
    time = fields.String(allow_none=True, required=True)
    first_date = fields.String(required=True)
    last_date = fields.String(required=True)
    sample_count = fields.Integer(required=True)
    corrects = fields.String(allow_none=True, required=True, metadata={"description": "the submission it replaces"})
    superseded_by = fields.String(allow_none=True, required=True,
                                  metadata={"description": "the correction that replaced it"})
    current = fields.Boolean(required=True, metadata={"description": "not replaced: settlement uses it"})


class SubmissionSchema(SubmissionSummarySchema):
    samples = fields.List(fields.Nested(SampleSchema), required=True)


# -- obligations and clearing ------------------------------------------------------------------


class ObligationPairSchema(Schema):
    pool = fields.String(required=True)
    account_a = fields.String(required=True, metadata={"description": "the smaller account id of the pair"})
    account_b = fields.String(required=True)
    a_owes_b = money("gross of the open obligations from account_a to account_b", required=True)
    b_owes_a = money("gross of the open obligations from account_b to account_a", required=True)
    obligations_a_to_b = fields.Integer(required=True)
    obligations_b_to_a = fields.Integer(required=True)
    payer = fields.String(allow_none=True, required=True, metadata={"description": "null when the pair is even"})
    payee = fields.String(allow_none=True, required=True)
    net = money("what a clearing run now would have payer pay payee", required=True)


class GrossSchema(Schema):
    source = fields.String(required=True, data_key="from")
    to = fields.String(required=True)
    amount = money(required=True)


class PaymentSchema(Schema):
    id = fields.String(required=True, metadata={"example": "C-140-0-0"})
    payer = fields.String(required=True)
    payee = fields.String(required=True)
    amount = money(required=True)
    payer_confirmed_by = fields.String(allow_none=True, required=True)
    payee_confirmed_by = fields.String(allow_none=True, required=True)
    waiting_for = fields.List(fields.String(), required=True,
                              metadata={"description": "payer, payee: the sides still to confirm"})
    status = fields.String(required=True, metadata={"description": "waiting or settled"})
    settled_seq = fields.Integer(allow_none=True, required=True,
                                 metadata={"description": "the confirmation that moved the CNY"})


class RunSummarySchema(Schema):
    id = fields.String(required=True, metadata={"example": "C-140-0"})
    pool = fields.String(required=True)
    cutoff = fields.String(required=True, metadata={"description": "obligations created up to here"})
    seq = fields.Integer(required=True)
    time = fields.String(required=True, metadata={"description": "when the run was appended"})
    status = fields.String(required=True, metadata={"description": ", ".join(RUN_STATUSES)})
    settled_seq = fields.Integer(allow_none=True, required=True)
    obligation_count = fields.Integer(required=True)
    gross = fields.List(fields.Nested(GrossSchema), required=True,
                        metadata={"description": "sum owed by each account to each other, both ways"})
    payments = fields.List(fields.Nested(PaymentSchema), required=True,
                           metadata={"description": "one net payment per pair that does not net to zero"})


class RunSchema(RunSummarySchema):
    obligations = fields.List(fields.Nested(ObligationSchema), required=True,
                              metadata={"description": "the obligations it covers, in log order"})


class OverdueRunSchema(RunSummarySchema):
    overdue_since = fields.String(required=True, metadata={"description": "time + clearing_overdue_days"})
    days_pending = fields.Integer(required=True, metadata={"description": "whole days since the run"})


AgreementPageSchema = page_of(AgreementSummarySchema, "AgreementPageSchema")
StatementPageSchema = page_of(StatementSummarySchema, "StatementPageSchema")
SubmissionPageSchema = page_of(SubmissionSummarySchema, "SubmissionPageSchema")
ObligationPairPageSchema = page_of(ObligationPairSchema, "ObligationPairPageSchema")
RunPageSchema = page_of(RunSummarySchema, "RunPageSchema")
OverdueRunPageSchema = page_of(OverdueRunSchema, "OverdueRunPageSchema")

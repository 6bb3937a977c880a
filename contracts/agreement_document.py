"""The compensation agreement document (specs/agreements.md §1) and its validation.

Validation refuses, with a message naming the field: an unknown indicator, a section whose
parties are not in ``parties``, shares that don't sum to 1, ratios that are zero or negative,
an empty term, a rule missing a parameter.
"""

import re
from decimal import Decimal

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from contracts.fields import whole

INDICATORS = ("CODMn", "COD", "BOD5", "NH3N", "TP", "TN")
SLUG = whole(r"[a-z0-9][a-z0-9-]{0,63}", "lowercase letters, digits and '-', at most 64")
PARTY = whole(r"[A-Z]{2}", "a party is a province code of two capital letters")
MONEY = re.compile(r"-?(0|[1-9][0-9]{0,15})(\.[0-9]{1,2})?", re.ASCII)
RATIO = re.compile(r"(0|[1-9][0-9]{0,15})(\.[0-9]{1,28})?", re.ASCII)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


def money(**kwargs) -> fields.String:
    """元 as a decimal string with at most 2 decimals, signed."""
    return fields.String(required=True, validate=whole(MONEY, "an amount in 元 such as \"1000000\" or \"-2.50\""), **kwargs)


def _positive_money(value: str) -> bool:
    if not isinstance(value, str) or not MONEY.fullmatch(value) or Decimal(value) <= 0:
        raise ValidationError("an amount in 元 greater than zero, such as \"1000000\"")
    return True


def positive_money(**kwargs) -> fields.String:
    return fields.String(required=True, validate=_positive_money, **kwargs)


def _ratio(value: str) -> bool:
    if not isinstance(value, str) or not RATIO.fullmatch(value):
        raise ValidationError("a ratio is a decimal string such as \"0.5\"")
    if Decimal(value) <= 0:
        raise ValidationError("a ratio must be greater than zero")
    return True


def ratio(**kwargs) -> fields.String:
    return fields.String(validate=_ratio, **kwargs)


def ratios(**kwargs) -> fields.Dict:
    return fields.Dict(keys=fields.String(validate=PARTY), values=ratio(), required=True,
                       validate=validate.Length(min=1), **kwargs)


class Party(_Strict):
    id = fields.String(required=True, validate=PARTY)
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    account = fields.String(required=True, validate=whole(
        r"[A-Z]{2}:FIN:[A-Za-z0-9._-]{1,64}", "a party's account is a FIN account, e.g. SC:FIN:treasury"))


class Section(_Strict):
    id = fields.String(required=True, validate=SLUG)
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    river = fields.String(required=True, validate=validate.Length(min=1, max=100))
    water_body = fields.String(required=True, validate=validate.OneOf(["river", "lake"]))
    upstream = fields.List(fields.String(validate=PARTY), required=True, validate=validate.Length(min=1))
    downstream = fields.List(fields.String(validate=PARTY), required=True, validate=validate.Length(min=1))
    shares = fields.Dict(keys=fields.String(validate=PARTY), values=ratio(), load_default=None)


class Term(_Strict):
    start = fields.Date(required=True, data_key="from")
    end = fields.Date(required=True, data_key="to")

    @validates_schema
    def not_empty(self, data, **_):
        if data["end"] < data["start"]:
            raise ValidationError("the term is empty: 'to' is before 'from'", "to")


def _class(**kwargs) -> fields.Integer:
    return fields.Integer(required=True, strict=True, validate=validate.Range(1, 6), **kwargs)


class ClassTargetAmounts(_Strict):
    met_improved = money()
    met_same = money()
    met_declined = money()
    missed = money()


class ClassTarget(_Strict):
    type = fields.Constant("class_target")
    target_class = _class()
    amounts = fields.Nested(ClassTargetAmounts, required=True)


class ClassSteps(_Strict):
    type = fields.Constant("class_steps")
    baseline_class = _class()
    amount_per_class = positive_money()


class IndexChange(_Strict):
    type = fields.Constant("index_change")
    amount_per_point = positive_money()
    cap = positive_money()
    points = fields.String(required=True, validate=validate.OneOf(["whole", "exact"]))


class PIndex(_Strict):
    type = fields.Constant("p_index")
    k0 = ratio(required=True)
    weights = fields.Dict(keys=fields.String(validate=validate.OneOf(INDICATORS)), values=ratio(), required=True,
                          validate=validate.Length(min=1))
    baselines = fields.Dict(keys=fields.String(validate=validate.OneOf(INDICATORS)), values=ratio(), required=True)
    threshold = ratio(required=True)
    amount_met = money()
    amount_missed = money()

    @validates_schema
    def baselines_for_weights(self, data, **_):
        if set(data["baselines"]) != set(data["weights"]):
            raise ValidationError("every weighted indicator needs a baseline, and only those", "baselines")


class PoolSection(_Strict):
    party = fields.String(required=True, validate=PARTY)
    weight = ratio(required=True)
    target_class = _class()
    on_fail = ratios()

    @validates_schema
    def weight_at_most_one(self, data, **_):
        if Decimal(data["weight"]) > 1:
            raise ValidationError("a section's weight is at most 1", "weight")


class Pool(_Strict):
    type = fields.Constant("pool")
    fund = positive_money()
    contributions = ratios()
    allocations = ratios()
    sections = fields.Dict(keys=fields.String(validate=SLUG), values=fields.Nested(PoolSection), required=True,
                           validate=validate.Length(min=1))


RULES = {"class_target": ClassTarget, "class_steps": ClassSteps, "index_change": IndexChange,
         "p_index": PIndex, "pool": Pool}


class Rule(fields.Field):
    """A rule object, validated by the schema of its ``type``."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise ValidationError("a rule is an object with a type")
        schema = RULES.get(value.get("type"))
        if schema is None:
            raise ValidationError(f"type must be one of {', '.join(RULES)}")
        return schema().load(value)


class AgreementDocument(_Strict):
    id = fields.String(required=True, validate=SLUG)
    version = fields.Integer(required=True, strict=True, validate=validate.Range(1, 10_000))
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    parties = fields.List(fields.Nested(Party), required=True, validate=validate.Length(min=2, max=20))
    sections = fields.List(fields.Nested(Section), required=True, validate=validate.Length(min=1, max=50))
    indicators = fields.List(fields.String(validate=validate.OneOf(INDICATORS)), required=True,
                             validate=validate.Length(min=1))
    period = fields.String(required=True, validate=validate.OneOf(["month", "year"]))
    term = fields.Nested(Term, required=True)
    rules = fields.List(Rule(), required=True, validate=validate.Length(min=1, max=20))
    responsibilities = fields.String(required=True, validate=validate.Length(min=1, max=20_000))
    breach = fields.String(required=True, validate=validate.Length(min=1, max=20_000))

    @validates_schema
    def consistent(self, data, **_):
        parties = [p["id"] for p in data["parties"]]
        _unique(parties, "parties", "party id")
        _unique([s["id"] for s in data["sections"]], "sections", "section id")
        _unique(data["indicators"], "indicators", "indicator")
        for index, section in enumerate(data["sections"]):
            where = f"sections.{index}"
            for side in ("upstream", "downstream"):
                for party in section[side]:
                    if party not in parties:
                        raise ValidationError(f"party {party!r} is not in parties", f"{where}.{side}")
            if set(section["upstream"]) & set(section["downstream"]):
                raise ValidationError("a party cannot be both upstream and downstream", f"{where}.downstream")
            _check_shares(section, where)
        sections = {s["id"] for s in data["sections"]}
        for index, rule in enumerate(data["rules"]):
            where = f"rules.{index}"
            if rule["type"] == "p_index" and (extra := set(rule["weights"]) - set(data["indicators"])):
                raise ValidationError(f"{', '.join(sorted(extra))} not among the indicators", f"{where}.weights")
            if rule["type"] == "pool":
                _check_pool(rule, parties, sections, where)


def _unique(values: list, field: str, what: str) -> None:
    if len(set(values)) != len(values):
        raise ValidationError(f"each {what} may appear once", field)


def _check_shares(section: dict, where: str) -> None:
    shares = section.get("shares")
    if shares is None:
        return
    for party in shares:
        if party not in section["upstream"] and party not in section["downstream"]:
            raise ValidationError(f"{party!r} is on neither side of the section", f"{where}.shares")
    for side in ("upstream", "downstream"):
        named = [p for p in section[side] if p in shares]
        if named and len(named) != len(section[side]):
            raise ValidationError(f"give a share to every {side} party or to none", f"{where}.shares")
        if named and sum(Decimal(shares[p]) for p in named) != 1:
            raise ValidationError(f"the {side} shares must sum to 1", f"{where}.shares")


def _check_pool(rule: dict, parties: list, sections: set, where: str) -> None:
    for field in ("contributions", "allocations"):
        for party in rule[field]:
            if party not in parties:
                raise ValidationError(f"party {party!r} is not in parties", f"{where}.{field}")
    for section_id, terms in rule["sections"].items():
        if section_id not in sections:
            raise ValidationError(f"section {section_id!r} is not in sections", f"{where}.sections")
        for party in [terms["party"], *terms["on_fail"]]:
            if party not in parties:
                raise ValidationError(f"party {party!r} is not in parties", f"{where}.sections.{section_id}")


def validation_message(error: ValidationError) -> str:
    """The first problem, with the path of the field it is about: ``sections.0.upstream: …``."""
    path, messages = [], error.normalized_messages()
    while isinstance(messages, dict) and messages:
        key, messages = next(iter(messages.items()))
        if key != "_schema":
            path.append(str(key))
    while isinstance(messages, list) and messages:
        messages = messages[0]
    return f"{'.'.join(path) or 'document'}: {messages}"


def load_agreement(document: object) -> dict:
    """Validate an agreement document; raises ValidationError. Returns the loaded form."""
    return AgreementDocument().load(document)


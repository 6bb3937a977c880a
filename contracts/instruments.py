"""The six instruments (specs/ledger-api.md §3): attributes, decimals, lifecycle, asset ids.

An asset is an instrument with its attributes fixed; its id is derived from them and readable:
``PDR-SC-COD-20250101-20291231``, ``WR-CQ-jialingjiang-withdrawal-20250101-20341231``,
``EUR-SC-2025``, ``CHTF-CDCER-001-chengdu-metro-2024``, ``CNY``.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from contracts.fields import whole

SLUG = whole(r"[a-z0-9][a-z0-9-]{0,39}", "lowercase letters, digits and '-', at most 40")


@dataclass(frozen=True, slots=True)
class Instrument:
    code: str
    name: str
    unit: str
    decimals: int
    ops: frozenset[str]
    """The lifecycle operations its assets allow."""
    attributes: type[Schema] | None
    asset_id: Callable[[str, dict], str]
    """(province, attributes) → asset id."""
    expires_on: Callable[[dict], str | None] = lambda attributes: None
    """The last day of validity, Asia/Shanghai, if the instrument has one."""
    home_province: str | None = None
    """Set for programmes that belong to one province (碳惠天府 to SC, 碳惠通 to CQ)."""


def _years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28) + timedelta(days=1)


class _Attributes(Schema):
    class Meta:
        unknown = RAISE


def _term(start_field: str, end_field: str, years: int):
    def check(self, data, **_):
        start, end = data[start_field], data[end_field]
        if end < start:
            raise ValidationError(f"{end_field} is before {start_field}", end_field)
        if end >= _years_after(start, years):
            raise ValidationError(f"the term may last at most {years} years", end_field)
    return validates_schema(check)


class PollutantAttributes(_Attributes):
    pollutant = fields.String(required=True, validate=validate.OneOf(["COD", "NH3N", "SO2", "NOX", "VOCS", "TP", "TN"]))
    valid_from = fields.Date(required=True)
    valid_until = fields.Date(required=True)
    check_term = _term("valid_from", "valid_until", 5)


class WaterAttributes(_Attributes):
    right_type = fields.String(required=True, validate=validate.OneOf(["regional", "withdrawal", "irrigation"]))
    basin = fields.String(required=True, validate=SLUG)
    term_start = fields.Date(required=True)
    term_end = fields.Date(required=True)
    check_term = _term("term_start", "term_end", 10)


class EnergyAttributes(_Attributes):
    compliance_year = fields.Integer(required=True, strict=True, validate=validate.Range(2000, 2100))


class CarbonAttributes(_Attributes):
    methodology = fields.String(required=True, validate=SLUG)
    project = fields.String(required=True, validate=SLUG)
    vintage = fields.Integer(required=True, strict=True, validate=validate.Range(2000, 2100))


def _day(value: date) -> str:
    return value.strftime("%Y%m%d")


RIGHTS_OPS = frozenset({"issue", "trade", "transfer", "freeze", "pledge"})
CARBON_OPS = frozenset({"issue", "trade", "transfer", "freeze", "retire", "surrender"})

INSTRUMENTS: dict[str, Instrument] = {i.code: i for i in (
    Instrument(code="PDR", name="排污权", unit="t", decimals=3, ops=RIGHTS_OPS | {"surrender", "expire"},
               attributes=PollutantAttributes,
               asset_id=lambda p, a: f"PDR-{p}-{a['pollutant']}-{_day(a['valid_from'])}-{_day(a['valid_until'])}",
               expires_on=lambda a: a["valid_until"].isoformat()),
    Instrument(code="WR", name="水权", unit="m³", decimals=0, ops=RIGHTS_OPS | {"expire"},
               attributes=WaterAttributes,
               asset_id=lambda p, a: f"WR-{p}-{a['basin']}-{a['right_type']}-{_day(a['term_start'])}-{_day(a['term_end'])}",
               expires_on=lambda a: a["term_end"].isoformat()),
    Instrument(code="EUR", name="用能权", unit="tce", decimals=3, ops=RIGHTS_OPS | {"surrender"},
               attributes=EnergyAttributes,
               asset_id=lambda p, a: f"EUR-{p}-{a['compliance_year']}"),
    Instrument(code="CHTF", name="碳惠天府减排量", unit="tCO2e", decimals=0, ops=CARBON_OPS,
               attributes=CarbonAttributes, home_province="SC",
               asset_id=lambda p, a: f"CHTF-{a['methodology']}-{a['project']}-{a['vintage']}"),
    Instrument(code="CQCER", name="碳惠通减排量", unit="tCO2e", decimals=0, ops=CARBON_OPS,
               attributes=CarbonAttributes, home_province="CQ",
               asset_id=lambda p, a: f"CQCER-{a['methodology']}-{a['project']}-{a['vintage']}"),
    Instrument(code="CNY", name="人民币", unit="元", decimals=2, ops=frozenset({"deposit", "withdraw", "trade"}),
               attributes=None, asset_id=lambda p, a: "CNY"),
)}

CNY = "CNY"

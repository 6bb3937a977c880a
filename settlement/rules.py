"""The payment-rule families of specs/agreements.md §4, each a pure function.

A section rule looks at one section's quality this period and in the reference period and
returns an amount in 元: **positive means downstream pays upstream**, negative the reverse.
The pool rule spreads a shared fund among parties and returns payments between them.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from settlement.money import fmt, split, to_fen
from settlement.quality import PRECISION, SectionQuality

ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "劣V"}
FOUR_PLACES = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class RuleAmount:
    type: str
    amount: Decimal
    reason: str
    p: Decimal | None = None


def four_places(value: Decimal) -> str:
    """A figure shown for reading only: half-up to 4 decimals."""
    return str(value.quantize(FOUR_PLACES, rounding=ROUND_HALF_UP))


def class_target(rule: Mapping, now: SectionQuality, before: SectionQuality | None) -> RuleAmount:
    target = rule["target_class"]
    klass = now.section_class
    if klass > target:
        outcome = "missed"
        reason = f"class {ROMAN[klass]} misses target {ROMAN[target]}"
    else:
        if before is None:
            trend, comparison = "same", "no reference data"
        elif now.index < before.index:
            trend, comparison = "improved", f"index {four_places(now.index)} < reference {four_places(before.index)}"
        elif now.index == before.index:
            trend, comparison = "same", f"index {four_places(now.index)} = reference {four_places(before.index)}"
        else:
            trend, comparison = "declined", f"index {four_places(now.index)} > reference {four_places(before.index)}"
        outcome = f"met_{trend}"
        reason = f"class {ROMAN[klass]} meets target {ROMAN[target]}, {comparison}: {trend}"
    return RuleAmount(type="class_target", amount=to_fen(Decimal(rule["amounts"][outcome])), reason=reason)


def class_steps(rule: Mapping, now: SectionQuality, before: SectionQuality | None) -> RuleAmount:
    steps = rule["baseline_class"] - now.section_class
    amount = to_fen(steps * Decimal(rule["amount_per_class"]))
    reason = (f"class {ROMAN[now.section_class]} against baseline {ROMAN[rule['baseline_class']]}: "
              f"{steps:+d} × {rule['amount_per_class']}")
    return RuleAmount(type="class_steps", amount=amount, reason=reason)


def index_change(rule: Mapping, now: SectionQuality, before: SectionQuality | None) -> RuleAmount:
    if before is None:
        return RuleAmount(type="index_change", amount=to_fen(Decimal(0)),
                          reason="no reference data: amount 0")
    if before.index == 0:
        return RuleAmount(type="index_change", amount=to_fen(Decimal(0)),
                          reason="the reference index is 0, so its change is undefined: amount 0")
    delta = PRECISION.multiply(PRECISION.divide(PRECISION.subtract(now.index, before.index), before.index),
                               Decimal(100))
    points = delta.to_integral_value(rounding=ROUND_DOWN) if rule["points"] == "whole" else delta
    amount = PRECISION.multiply(-points, Decimal(rule["amount_per_point"]))
    cap = Decimal(rule["cap"])
    capped = max(-cap, min(cap, amount))
    reason = (f"index {four_places(now.index)} against reference {four_places(before.index)}: "
              f"change {four_places(delta)} points, {rule['points']} points {four_places(points)}")
    if capped != amount:
        reason += f", capped at {fmt(cap)}"
    return RuleAmount(type="index_change", amount=to_fen(capped), reason=reason)


def p_index(rule: Mapping, now: SectionQuality, before: SectionQuality | None) -> RuleAmount:
    total = Decimal(0)
    for indicator, weight in rule["weights"].items():
        ratio = PRECISION.divide(now.means[indicator], Decimal(rule["baselines"][indicator]))
        total = PRECISION.add(total, PRECISION.multiply(Decimal(weight), ratio))
    p = PRECISION.multiply(Decimal(rule["k0"]), total)
    threshold = Decimal(rule["threshold"])
    met = p <= threshold
    reason = f"P {four_places(p)} {'≤' if met else '>'} threshold {rule['threshold']}: {'met' if met else 'missed'}"
    amount = Decimal(rule["amount_met"] if met else rule["amount_missed"])
    return RuleAmount(type="p_index", amount=to_fen(amount), reason=reason, p=p)


SECTION_RULES = {
    "class_target": class_target,
    "class_steps": class_steps,
    "index_change": index_change,
    "p_index": p_index,
}


@dataclass(frozen=True, slots=True)
class PoolOutcome:
    """What each party contributes, is allotted, loses and gains, and who pays whom."""

    contributions: dict[str, Decimal]
    allotments: dict[str, Decimal]
    deductions: list[dict] = field(default_factory=list)
    nets: dict[str, Decimal] = field(default_factory=dict)
    payments: list[tuple[str, str, Decimal]] = field(default_factory=list)


def _shares(fund: Decimal, ratios: Mapping[str, str], parties: Sequence[str]) -> dict[str, Decimal]:
    """The fund split by ratios with the splitting rule, so the shares add up to the fund."""
    return dict(split(to_fen(fund), [(p, Decimal(ratios[p])) for p in parties if p in ratios]))


def pool(rule: Mapping, parties: Sequence[str], qualities: Mapping[str, SectionQuality | None]) -> PoolOutcome:
    """The 赤水河 shared-fund model. A section that cannot be assessed this period counts as
    neither met nor missed: it moves nothing."""
    fund = Decimal(rule["fund"])
    contributions = _shares(fund, rule["contributions"], parties)
    allotments = _shares(fund, rule["allocations"], parties)
    nets = {p: allotments.get(p, Decimal(0)) - contributions.get(p, Decimal(0)) for p in parties}
    deductions = []
    for section_id, terms in rule["sections"].items():
        quality = qualities.get(section_id)
        if quality is None or quality.section_class <= terms["target_class"]:
            continue
        loser = terms["party"]
        moved = to_fen(PRECISION.multiply(Decimal(terms["weight"]), allotments.get(loser, Decimal(0))))
        shares = [(p, Decimal(r)) for p, r in terms["on_fail"].items()]
        parts = split(moved, shares)
        nets[loser] -= moved
        for party, part in parts:
            nets[party] += part
        deductions.append({"section": section_id, "party": loser, "amount": fmt(moved),
                           "class": ROMAN[quality.section_class], "target": ROMAN[terms["target_class"]],
                           "to": {p: fmt(a) for p, a in parts}})
    owe = [(p, -nets[p]) for p in parties if nets[p] < 0]
    due = [(p, nets[p]) for p in parties if nets[p] > 0]
    return PoolOutcome(contributions=contributions, allotments=allotments, deductions=deductions,
                       nets=nets, payments=match(owe, due))


def match(owe: Sequence[tuple[str, Decimal]], due: Sequence[tuple[str, Decimal]]) -> list[tuple[str, str, Decimal]]:
    """Payers pay receivers greedily in the order given: the first payer with something left
    pays the first receiver with something left as much as both allow, and so on."""
    owe, due = [list(x) for x in owe], [list(x) for x in due]
    payments, i, j = [], 0, 0
    while i < len(owe) and j < len(due):
        amount = min(owe[i][1], due[j][1])
        payments.append((owe[i][0], due[j][0], amount))
        owe[i][1] -= amount
        due[j][1] -= amount
        if owe[i][1] == 0:
            i += 1
        if due[j][1] == 0:
            j += 1
    return payments

"""A settlement statement: everything an agreement says one period's water quality is worth.

:func:`compute_statement` is pure: the agreement document, the monitoring submissions and the
period in, the statement out. The server appends what it returns; an auditor recomputes it from
the same signed inputs and must get the same JSON, byte for byte.
"""

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from settlement.money import fmt, split
from settlement.periods import period_bounds, reference_period
from settlement.quality import SectionQuality, assess, mean
from settlement.rules import SECTION_RULES, four_places, match, pool

Submission = Mapping[str, Any]
"""A ``monitoring.submit`` body: ``{"section": id, "samples": [{"date", "values"}, ...]}``."""


def period_means(submissions: Iterable[Submission], section: str, first: date, last: date,
                 indicators: Sequence[str]) -> dict[str, Decimal]:
    """The mean of every indicator over the samples of ``section`` dated in [first, last]."""
    values: dict[str, list[Decimal]] = {i: [] for i in indicators}
    for submission in submissions:
        if submission["section"] != section:
            continue
        for sample in submission["samples"]:
            if first <= date.fromisoformat(sample["date"]) <= last:
                for indicator in indicators:
                    if indicator in sample["values"]:
                        values[indicator].append(Decimal(sample["values"][indicator]))
    return {i: mean(v) for i, v in values.items() if v}


def _quality(agreement: Mapping, section: Mapping, submissions: Sequence[Submission],
             period: str) -> tuple[SectionQuality | None, list[str]]:
    first, last = period_bounds(period, agreement["period"])
    indicators = agreement["indicators"]
    means = period_means(submissions, section["id"], first, last, indicators)
    missing = [i for i in indicators if i not in means]
    if missing:
        return None, missing
    return assess(means, indicators, section["water_body"]), []


def _side_shares(section: Mapping, side: str) -> list[tuple[str, Decimal]]:
    parties = section[side]
    shares = section.get("shares") or {}
    return [(p, Decimal(shares[p]) if p in shares else Decimal(1)) for p in parties]


def _section_payments(section: Mapping, amount: Decimal) -> list[tuple[str, str, Decimal]]:
    """Positive: downstream pays upstream. Each side's amount is split once by its shares, then
    the payers' parts are matched to the payees' parts in the order listed."""
    if amount == 0:
        return []
    payers, payees = ("downstream", "upstream") if amount > 0 else ("upstream", "downstream")
    return match(split(abs(amount), _side_shares(section, payers)),
                 split(abs(amount), _side_shares(section, payees)))


def net_transfers(payments: Iterable[tuple[str, str, Decimal]], parties: Sequence[str]) -> list[dict[str, str]]:
    """One transfer per pair of parties, in the direction of their net, no zero amounts."""
    order = {p: i for i, p in enumerate(parties)}
    owed: dict[tuple[str, str], Decimal] = {}
    for payer, payee, amount in payments:
        a, b = sorted((payer, payee), key=order.__getitem__)
        owed[(a, b)] = owed.get((a, b), Decimal(0)) + (amount if payer == a else -amount)
    transfers = []
    for (a, b), amount in sorted(owed.items(), key=lambda item: (order[item[0][0]], order[item[0][1]])):
        if amount > 0:
            transfers.append({"from": a, "to": b, "amount": fmt(amount)})
        elif amount < 0:
            transfers.append({"from": b, "to": a, "amount": fmt(-amount)})
    return transfers


def compute_statement(agreement: Mapping, submissions: Sequence[Submission], period: str) -> dict[str, Any]:
    """The statement of ``period`` under a validated agreement document."""
    parties = [p["id"] for p in agreement["parties"]]
    reference = reference_period(period, agreement["period"])
    payments: list[tuple[str, str, Decimal]] = []
    sections, qualities = [], {}
    section_rules = [r for r in agreement["rules"] if r["type"] in SECTION_RULES]
    for section in agreement["sections"]:
        now, missing = _quality(agreement, section, submissions, period)
        before, _ = _quality(agreement, section, submissions, reference)
        qualities[section["id"]] = now
        entry: dict[str, Any] = {"section": section["id"], "name": section["name"]}
        if now is None:
            entry.update(status="unsettled", missing=missing, rules=[], amount="0.00",
                         reason="no samples this period for " + ", ".join(missing) + ": nothing is owed")
            sections.append(entry)
            continue
        entry.update(status="settled", means={i: str(m) for i, m in now.means.items()},
                     classes=now.classes, **{"class": now.section_class}, index=str(now.index),
                     reference_index=None if before is None else str(before.index))
        amounts = [SECTION_RULES[rule["type"]](rule, now, before) for rule in section_rules]
        entry["rules"] = [{"type": a.type, "amount": fmt(a.amount), "reason": a.reason,
                           **({"p": str(a.p), "p_display": four_places(a.p)} if a.p is not None else {})}
                          for a in amounts]
        total = sum((a.amount for a in amounts), start=Decimal(0))
        entry["amount"] = fmt(total)
        payments += _section_payments(section, total)
        sections.append(entry)
    statement: dict[str, Any] = {
        "agreement": agreement["id"], "version": agreement["version"], "period": period,
        "reference_period": reference, "sections": sections,
    }
    for rule in agreement["rules"]:
        if rule["type"] == "pool":
            outcome = pool(rule, parties, qualities)
            statement.setdefault("pools", []).append({
                "fund": fmt(Decimal(rule["fund"])),
                "contributions": {p: fmt(a) for p, a in outcome.contributions.items()},
                "allotments": {p: fmt(a) for p, a in outcome.allotments.items()},
                "deductions": outcome.deductions,
                "nets": {p: fmt(a) for p, a in outcome.nets.items()},
                "payments": [{"from": a, "to": b, "amount": fmt(x)} for a, b, x in outcome.payments]})
            payments += outcome.payments
    statement["transfers"] = net_transfers(payments, parties)
    return statement

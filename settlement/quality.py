"""Water quality per GB 3838-2002, Table 1 (mg/L), period means and the composite index.

All arithmetic is ``Decimal`` at 50 significant digits with no intermediate rounding, so every
figure is reproducible exactly by anyone who has the samples.
"""

import decimal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

PRECISION = decimal.Context(prec=50, rounding=decimal.ROUND_HALF_EVEN, traps=[
    decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow])

INDICATORS = ("CODMn", "COD", "BOD5", "NH3N", "TP", "TN")
WORST_CLASS = 6
"""劣V: worse than class V."""

_D = Decimal
LIMITS: dict[str, tuple[Decimal, ...]] = {
    "CODMn": (_D(2), _D(4), _D(6), _D(10), _D(15)),
    "COD": (_D(15), _D(15), _D(20), _D(30), _D(40)),
    "BOD5": (_D(3), _D(3), _D(4), _D(6), _D(10)),
    "NH3N": (_D("0.15"), _D("0.5"), _D("1.0"), _D("1.5"), _D("2.0")),
    "TP:river": (_D("0.02"), _D("0.1"), _D("0.2"), _D("0.3"), _D("0.4")),
    "TP:lake": (_D("0.01"), _D("0.025"), _D("0.05"), _D("0.1"), _D("0.2")),
    "TN": (_D("0.2"), _D("0.5"), _D("1.0"), _D("1.5"), _D("2.0")),
}


def limits(indicator: str, water_body: str) -> tuple[Decimal, ...]:
    """The class I–V limits of an indicator; TP's depend on river or lake."""
    return LIMITS[f"TP:{water_body}" if indicator == "TP" else indicator]


def indicator_class(indicator: str, mean: Decimal, water_body: str) -> int:
    """The best class whose limit the mean does not exceed (limits inclusive); 6 above class V."""
    for klass, limit in enumerate(limits(indicator, water_body), start=1):
        if mean <= limit:
            return klass
    return WORST_CLASS


def class_iii_limit(indicator: str, water_body: str) -> Decimal:
    return limits(indicator, water_body)[2]


def mean(values: Iterable[Decimal]) -> Decimal:
    total, count = Decimal(0), 0
    for value in values:
        total, count = PRECISION.add(total, value), count + 1
    return PRECISION.divide(total, Decimal(count))


@dataclass(frozen=True, slots=True)
class SectionQuality:
    """A section's water quality in one period."""

    means: dict[str, Decimal]
    classes: dict[str, int]
    section_class: int
    index: Decimal
    """The composite index Σ meanᵢ / S_i with S_i the class III limit."""


def assess(means: Mapping[str, Decimal], indicators: Iterable[str], water_body: str) -> SectionQuality:
    """Classes and composite index of a section from its period means (every indicator present)."""
    indicators = list(indicators)
    classes = {i: indicator_class(i, means[i], water_body) for i in indicators}
    index = Decimal(0)
    for indicator in indicators:
        index = PRECISION.add(index, PRECISION.divide(means[indicator], class_iii_limit(indicator, water_body)))
    return SectionQuality(means={i: means[i] for i in indicators}, classes=classes,
                          section_class=max(classes.values()), index=index)

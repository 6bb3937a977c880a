"""Money in 元 as ``Decimal``: one half-up rounding to the fen per rule, and fair splitting."""

from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from settlement.quality import PRECISION

FEN = Decimal("0.01")


def to_fen(amount: Decimal) -> Decimal:
    """Round half-up to the fen: the one rounding at the end of each rule."""
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


def split(amount: Decimal, shares: Sequence[tuple[str, Decimal]]) -> list[tuple[str, Decimal]]:
    """Split a fen amount by ratios: floor each share to the fen, then give the leftover fen one
    at a time to the parties in the order listed. The parts always add up to ``amount``."""
    sign = -1 if amount < 0 else 1
    whole = abs(amount)
    total = sum((ratio for _, ratio in shares), start=Decimal(0))
    parts = [[party, PRECISION.divide(PRECISION.multiply(whole, ratio), total).quantize(FEN, rounding=ROUND_DOWN)]
             for party, ratio in shares]
    leftover = int((whole - sum((p for _, p in parts), start=Decimal(0))) / FEN)
    for index in range(leftover):
        parts[index % len(parts)][1] += FEN
    return [(party, sign * part) for party, part in parts]


def fmt(amount: Decimal) -> str:
    """An amount in 元 with exactly two decimals: ``"1000000.00"``."""
    return str(to_fen(amount))

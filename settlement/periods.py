"""Settlement periods: ``"2025-07"`` (month) and ``"2025"`` (year), in Asia/Shanghai dates."""

import re
from datetime import date, timedelta

MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
YEAR = re.compile(r"[0-9]{4}")


class PeriodError(ValueError):
    pass


def period_bounds(period: str, kind: str) -> tuple[date, date]:
    """The first and last day of a period, inclusive."""
    if kind == "month":
        match = MONTH.fullmatch(period)
        if not match:
            raise PeriodError(f"a monthly period is written YYYY-MM, not {period!r}")
        year, month = int(match[1]), int(match[2])
        if year < 1:
            raise PeriodError(f"there is no year 0 ({period!r})")
        first = date(year, month, 1)
        following = date(year + month // 12, month % 12 + 1, 1)
        return first, following - timedelta(days=1)
    if kind == "year":
        if not YEAR.fullmatch(period) or int(period) < 1:
            raise PeriodError(f"a yearly period is written YYYY, not {period!r}")
        return date(int(period), 1, 1), date(int(period), 12, 31)
    raise PeriodError(f"unknown period kind {kind!r}")


def reference_period(period: str, kind: str) -> str:
    """The same period one year earlier."""
    period_bounds(period, kind)
    year = int(period[:4]) - 1
    return f"{year:04d}{period[4:]}"


def period_of(day: date, kind: str) -> str:
    return f"{day.year:04d}-{day.month:02d}" if kind == "month" else f"{day.year:04d}"


def next_period(period: str, kind: str) -> str:
    _, last = period_bounds(period, kind)
    return period_of(last + timedelta(days=1), kind)

"""GB 3838-2002 classes, the composite index, period means and period keys (specs/agreements.md §2–§3).

Every expected value is worked out by hand in the comments; nothing here asks the code under test
what the answer should be.
"""

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from settlement import periods, quality
from settlement.periods import PeriodError

D = Decimal

# -- Table 1, limit by limit ---------------------------------------------------------------------
#
# "An indicator's class is the best class whose limit its mean does not exceed (limits inclusive);
# above class V it is 6 (劣V)."  For every limit: the mean exactly at the limit is in that class
# (or a better one where two classes share a limit: COD and BOD5 have I = II), and one step of
# 0.000001 mg/L (the finest a monitoring submission can carry) above it falls to the next class
# whose limit is larger.

TABLE = [
    # CODMn ≤ 2 | 4 | 6 | 10 | 15
    ("CODMn", "river", "0", 1),
    ("CODMn", "river", "2", 1), ("CODMn", "river", "2.000001", 2),
    ("CODMn", "river", "4", 2), ("CODMn", "river", "4.000001", 3),
    ("CODMn", "river", "6", 3), ("CODMn", "river", "6.000001", 4),
    ("CODMn", "river", "10", 4), ("CODMn", "river", "10.000001", 5),
    ("CODMn", "river", "15", 5), ("CODMn", "river", "15.000001", 6),
    # COD ≤ 15 | 15 | 20 | 30 | 40: 15 is class I (best class whose limit is not exceeded), just
    # above 15 skips II (same limit) and lands in III
    ("COD", "river", "15", 1), ("COD", "river", "15.000001", 3),
    ("COD", "river", "20", 3), ("COD", "river", "20.000001", 4),
    ("COD", "river", "30", 4), ("COD", "river", "30.000001", 5),
    ("COD", "river", "40", 5), ("COD", "river", "40.000001", 6),
    # BOD5 ≤ 3 | 3 | 4 | 6 | 10
    ("BOD5", "river", "3", 1), ("BOD5", "river", "3.000001", 3),
    ("BOD5", "river", "4", 3), ("BOD5", "river", "4.000001", 4),
    ("BOD5", "river", "6", 4), ("BOD5", "river", "6.000001", 5),
    ("BOD5", "river", "10", 5), ("BOD5", "river", "10.000001", 6),
    # NH3N ≤ 0.15 | 0.5 | 1.0 | 1.5 | 2.0
    ("NH3N", "river", "0.15", 1), ("NH3N", "river", "0.150001", 2),
    ("NH3N", "river", "0.5", 2), ("NH3N", "river", "0.500001", 3),
    ("NH3N", "river", "1.0", 3), ("NH3N", "river", "1.000001", 4),
    ("NH3N", "river", "1.5", 4), ("NH3N", "river", "1.500001", 5),
    ("NH3N", "river", "2.0", 5), ("NH3N", "river", "2.000001", 6),
    # TP (river) ≤ 0.02 | 0.1 | 0.2 | 0.3 | 0.4
    ("TP", "river", "0.02", 1), ("TP", "river", "0.020001", 2),
    ("TP", "river", "0.1", 2), ("TP", "river", "0.100001", 3),
    ("TP", "river", "0.2", 3), ("TP", "river", "0.200001", 4),
    ("TP", "river", "0.3", 4), ("TP", "river", "0.300001", 5),
    ("TP", "river", "0.4", 5), ("TP", "river", "0.400001", 6),
    # TP (lake) ≤ 0.01 | 0.025 | 0.05 | 0.1 | 0.2
    ("TP", "lake", "0.01", 1), ("TP", "lake", "0.010001", 2),
    ("TP", "lake", "0.025", 2), ("TP", "lake", "0.025001", 3),
    ("TP", "lake", "0.05", 3), ("TP", "lake", "0.050001", 4),
    ("TP", "lake", "0.1", 4), ("TP", "lake", "0.100001", 5),
    ("TP", "lake", "0.2", 5), ("TP", "lake", "0.200001", 6),
    # TN ≤ 0.2 | 0.5 | 1.0 | 1.5 | 2.0
    ("TN", "river", "0.2", 1), ("TN", "river", "0.200001", 2),
    ("TN", "river", "0.5", 2), ("TN", "river", "0.500001", 3),
    ("TN", "river", "1.0", 3), ("TN", "river", "1.000001", 4),
    ("TN", "river", "1.5", 4), ("TN", "river", "1.500001", 5),
    ("TN", "river", "2.0", 5), ("TN", "river", "2.000001", 6),
]


@pytest.mark.parametrize("indicator, water_body, mean, expected", TABLE,
                         ids=[f"{i}-{w}-{m}" for i, w, m, _ in TABLE])
def test_each_limit_is_inclusive_and_one_step_above_is_the_next_class(indicator, water_body, mean, expected):
    assert quality.indicator_class(indicator, D(mean), water_body) == expected


@pytest.mark.parametrize("indicator, limit, expected_above", [
    # a mean above a limit by far less than any float could tell apart still leaves the class:
    # 0.5 + 10⁻³⁷ > 0.5 → NH3N class III; 6 + 10⁻⁴⁰ > 6 → CODMn class IV
    ("NH3N", "0.5000000000000000000000000000000000001", 3),
    ("CODMn", "6.0000000000000000000000000000000000000001", 4),
])
def test_classes_compare_in_exact_decimal(indicator, limit, expected_above):
    assert quality.indicator_class(indicator, D(limit), "river") == expected_above


@pytest.mark.parametrize("indicator", ["CODMn", "COD", "BOD5", "NH3N", "TN"])
def test_only_tp_depends_on_river_or_lake(indicator):
    # every class III limit of a non-TP indicator is the same on rivers and lakes
    for value in ("0.3", "1.2", "5", "12", "50"):
        assert (quality.indicator_class(indicator, D(value), "river")
                == quality.indicator_class(indicator, D(value), "lake"))


@pytest.mark.parametrize("tp, river, lake", [
    # river 0.02|0.1|0.2|0.3|0.4 — lake 0.01|0.025|0.05|0.1|0.2
    ("0.015", 1, 2),   # river: ≤ 0.02 → I;   lake: > 0.01, ≤ 0.025 → II
    ("0.05", 2, 3),    # river: ≤ 0.1 → II;   lake: ≤ 0.05 → III
    ("0.15", 3, 5),    # river: ≤ 0.2 → III;  lake: > 0.1, ≤ 0.2 → V
    ("0.25", 4, 6),    # river: ≤ 0.3 → IV;   lake: > 0.2 → 劣V
])
def test_tp_limits_river_against_lake(tp, river, lake):
    assert quality.indicator_class("TP", D(tp), "river") == river
    assert quality.indicator_class("TP", D(tp), "lake") == lake


def test_class_iii_limits_are_the_composite_index_denominators():
    # S_i, the class III column of Table 1
    assert quality.class_iii_limit("CODMn", "river") == 6
    assert quality.class_iii_limit("COD", "river") == 20
    assert quality.class_iii_limit("BOD5", "river") == 4
    assert quality.class_iii_limit("NH3N", "river") == D("1.0")
    assert quality.class_iii_limit("TP", "river") == D("0.2")
    assert quality.class_iii_limit("TP", "lake") == D("0.05")
    assert quality.class_iii_limit("TN", "lake") == D("1.0")


# -- section class and composite index ------------------------------------------------------------

def test_section_class_is_the_worst_indicator_class():
    # CODMn 1 → I; NH3N 1.2 → IV (> 1.0, ≤ 1.5); TP 0.05 river → II  ⇒ section class IV
    q = quality.assess({"CODMn": D("1"), "NH3N": D("1.2"), "TP": D("0.05")}, ["CODMn", "NH3N", "TP"], "river")
    assert q.classes == {"CODMn": 1, "NH3N": 4, "TP": 2}
    assert q.section_class == 4


def test_one_indicator_worse_than_v_makes_the_section_6():
    # CODMn 15.5 > 15 → 劣V (6), the other two are class I
    q = quality.assess({"CODMn": D("15.5"), "NH3N": D("0.1"), "TP": D("0.01")}, ["CODMn", "NH3N", "TP"], "river")
    assert q.classes["CODMn"] == 6
    assert q.section_class == 6


def test_worked_example_1_classes_and_index():
    # 3.2 ≤ 4 (> 2) → II; 0.48 ≤ 0.5 (> 0.15) → II; 0.09 ≤ 0.1 river (> 0.02) → II
    # I = 3.2/6 + 0.48/1.0 + 0.09/0.2 = 0.5333… + 0.48 + 0.45 = 1.46333… = 439/300
    q = quality.assess({"CODMn": D("3.2"), "NH3N": D("0.48"), "TP": D("0.09")}, ["CODMn", "NH3N", "TP"], "river")
    assert q.classes == {"CODMn": 2, "NH3N": 2, "TP": 2}
    assert q.section_class == 2
    assert abs(Fraction(q.index) - Fraction(439, 300)) < Fraction(1, 10 ** 40)
    assert str(q.index).startswith("1.4633333333333333333333333333333333333333")


def test_composite_index_uses_only_the_agreements_indicators_and_the_lake_tp_limit():
    # indicators COD, TP on a lake: I = 10/20 + 0.01/0.05 = 0.5 + 0.2 = 0.7 (BOD5 is ignored)
    q = quality.assess({"COD": D("10"), "TP": D("0.01"), "BOD5": D("9")}, ["COD", "TP"], "lake")
    assert q.index == D("0.7")
    assert set(q.means) == {"COD", "TP"} and set(q.classes) == {"COD", "TP"}


def test_composite_index_with_every_indicator():
    # all six at their class III limits on a river: 6/6 + 20/20 + 4/4 + 1/1 + 0.2/0.2 + 1/1 = 6
    means = {"CODMn": D("6"), "COD": D("20"), "BOD5": D("4"), "NH3N": D("1.0"), "TP": D("0.2"), "TN": D("1.0")}
    q = quality.assess(means, list(means), "river")
    assert q.index == 6
    assert q.section_class == 3


# -- period means ---------------------------------------------------------------------------------

def test_mean_of_a_third_is_exact_to_50_digits():
    # (0.1 + 0.2 + 0.2) / 3 = 0.5 / 3 = 0.1666…, rounded once at the 50th significant digit:
    # 0.1 6666666666 6666666666 6666666666 6666666666 66666666 7  (1, forty-eight 6s, 7)
    assert quality.mean([D("0.1"), D("0.2"), D("0.2")]) == D("0." + "1" + "6" * 48 + "7")


def test_mean_has_no_binary_floating_point_error():
    # (0.1 + 0.2) / 2 = 0.15 exactly (binary floats would give 0.15000000000000002)
    assert quality.mean([D("0.1"), D("0.2")]) == D("0.15")
    # (0.1 × 3) / 3 = 0.1 exactly
    assert quality.mean([D("0.1")] * 3) == D("0.1")
    # (0.000001 + 999999.999999) / 2 = 1000000 / 2 = 500000
    assert quality.mean([D("0.000001"), D("999999.999999")]) == 500000


def test_mean_of_two_thirds_is_not_truncated():
    # (1 + 1 + 0) / 3 = 0.6666…, 50 significant digits, last one rounded up: forty-nine 6s then 7
    assert quality.mean([D("1"), D("1"), D("0")]) == D("0." + "6" * 49 + "7")


def test_mean_has_no_intermediate_rounding_in_the_sum():
    # §2: "at least 28 significant digits and no intermediate rounding" (module: 50 digits).
    # 1 + 10⁻²⁸ = 1.0000000000000000000000000001 (29 significant digits) must not be rounded
    # before dividing: mean = 0.50000000000000000000000000005 exactly.
    assert quality.mean([D("1"), D("1E-28")]) == D("0.50000000000000000000000000005")


# -- periods ----------------------------------------------------------------------------------

@pytest.mark.parametrize("period, first, last", [
    ("2025-01", date(2025, 1, 1), date(2025, 1, 31)),
    ("2025-04", date(2025, 4, 1), date(2025, 4, 30)),
    ("2025-07", date(2025, 7, 1), date(2025, 7, 31)),
    ("2025-11", date(2025, 11, 1), date(2025, 11, 30)),
    ("2025-12", date(2025, 12, 1), date(2025, 12, 31)),   # rolls into January of the next year
    ("2025-02", date(2025, 2, 1), date(2025, 2, 28)),      # 2025 not divisible by 4
    ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),      # divisible by 4 → leap
    ("2000-02", date(2000, 2, 1), date(2000, 2, 29)),      # divisible by 400 → leap
    ("2100-02", date(2100, 2, 1), date(2100, 2, 28)),      # divisible by 100, not 400 → not leap
])
def test_month_bounds(period, first, last):
    assert periods.period_bounds(period, "month") == (first, last)


@pytest.mark.parametrize("period", ["2024", "2025"])
def test_year_bounds(period):
    year = int(period)
    assert periods.period_bounds(period, "year") == (date(year, 1, 1), date(year, 12, 31))


@pytest.mark.parametrize("period, kind, reference", [
    ("2025-07", "month", "2024-07"),   # the spec's own example
    ("2025", "year", "2024"),          # the spec's own example
    ("2025-01", "month", "2024-01"),   # not December of the same year
    ("2025-02", "month", "2024-02"),   # into a leap February
    ("2024-02", "month", "2023-02"),   # out of one
    ("2000-12", "month", "1999-12"),
])
def test_reference_period_is_one_year_earlier(period, kind, reference):
    assert periods.reference_period(period, kind) == reference


def test_reference_february_of_a_leap_period_has_28_days():
    ref = periods.reference_period("2024-02", "month")
    assert periods.period_bounds(ref, "month") == (date(2023, 2, 1), date(2023, 2, 28))


@pytest.mark.parametrize("period, kind", [
    ("2025-7", "month"), ("2025-13", "month"), ("2025-00", "month"), ("25-07", "month"),
    ("2025/07", "month"), ("2025-07-01", "month"), ("2025-07 ", "month"), (" 2025-07", "month"),
    ("2025-07\n", "month"), ("", "month"), ("2025", "month"), ("July 2025", "month"),
    ("2025-07", "year"), ("20250", "year"), ("205", "year"), ("", "year"), ("2025\n", "year"),
    ("2025", "week"), ("2025-07", "quarter"),
])
def test_bad_period_strings_are_refused(period, kind):
    with pytest.raises(PeriodError):
        periods.period_bounds(period, kind)
    with pytest.raises(PeriodError):
        periods.reference_period(period, kind)


@pytest.mark.parametrize("period, kind", [
    ("２０２５-07", "month"),   # full-width digits: the key would not be the "2025-07" of §1
    ("٢٠٢٥", "year"),          # Arabic-Indic digits
    ("2025-０7", "month"),
])
def test_period_keys_are_ascii_digits_only(period, kind):
    # §1: period keys are "2025-07" and "2025". Python's \d also matches non-ASCII digits.
    with pytest.raises(PeriodError):
        periods.period_bounds(period, kind)


def test_year_zero_is_a_bad_period_not_a_crash():
    # there is no year 0000; it is a bad period string, so the module's PeriodError
    with pytest.raises(PeriodError):
        periods.period_bounds("0000-01", "month")


@pytest.mark.parametrize("period, kind, following", [
    ("2025-07", "month", "2025-08"), ("2025-12", "month", "2026-01"), ("2025", "year", "2026"),
])
def test_next_period(period, kind, following):
    assert periods.next_period(period, kind) == following

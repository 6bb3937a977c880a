"""The five payment-rule families (specs/agreements.md §4), one rule at a time.

Expected amounts are worked out by hand in the comments. Positive = downstream pays upstream.
"""

from decimal import Decimal

import pytest

from settlement import quality, rules
from settlement.quality import SectionQuality

D = Decimal
THREE = ["CODMn", "NH3N", "TP"]


def q(section_class: int = 2, index: str = "1", means: dict | None = None) -> SectionQuality:
    """A section's quality given directly: class, composite index and (for p_index) means."""
    means = {k: D(v) for k, v in (means or {}).items()}
    return SectionQuality(means=means, classes={k: section_class for k in means},
                          section_class=section_class, index=D(index))


CLASS_TARGET = {"type": "class_target", "target_class": 3, "amounts": {
    "met_improved": "1000000", "met_same": "0", "met_declined": "-1000000", "missed": "-1000000"}}


# -- class_target -------------------------------------------------------------------------------

def test_worked_example_1_met_improved():
    # July 2025: 3.2/0.48/0.09 → II/II/II → class II ≤ III: met.
    # I = 3.2/6 + 0.48/1.0 + 0.09/0.2 = 1.46333…
    # July 2024: 3.3/0.5/0.1 → I_ref = 0.55 + 0.5 + 0.5 = 1.55 (the example's I_ref)
    # 1.4633… < 1.55 → improved → met_improved = 1,000,000.00 (positive: CQ, downstream, pays SC)
    now = quality.assess({"CODMn": D("3.2"), "NH3N": D("0.48"), "TP": D("0.09")}, THREE, "river")
    before = quality.assess({"CODMn": D("3.3"), "NH3N": D("0.5"), "TP": D("0.1")}, THREE, "river")
    assert now.section_class == 2
    assert before.index == D("1.55")
    result = rules.class_target(CLASS_TARGET, now, before)
    assert result.amount == D("1000000.00")
    assert str(result.amount) == "1000000.00"
    assert "improved" in result.reason


def test_class_exactly_at_target_is_met():
    # class III, target III: "Met means class ≤ target"; same index → met_same = 0
    result = rules.class_target(CLASS_TARGET, q(3, "1.2"), q(3, "1.2"))
    assert result.amount == 0
    assert "same" in result.reason


def test_one_class_worse_than_target_is_missed_and_upstream_pays():
    # class IV > target III → missed = −1,000,000.00 whatever the trend (here improved)
    result = rules.class_target(CLASS_TARGET, q(4, "1.0"), q(5, "3.0"))
    assert result.amount == D("-1000000.00")
    assert "miss" in result.reason


def test_met_declined():
    # class II met, index 1.6 > reference 1.55 → declined → met_declined = −1,000,000.00
    assert rules.class_target(CLASS_TARGET, q(2, "1.6"), q(2, "1.55")).amount == D("-1000000.00")


def test_met_same_when_indexes_are_equal():
    rule = {**CLASS_TARGET, "amounts": {**CLASS_TARGET["amounts"], "met_same": "250000.5"}}
    # equal indexes → same → 250,000.50
    assert rules.class_target(rule, q(1, "0.9"), q(2, "0.90")).amount == D("250000.50")


def test_no_reference_data_counts_as_same():
    rule = {**CLASS_TARGET, "amounts": {**CLASS_TARGET["amounts"], "met_same": "7"}}
    result = rules.class_target(rule, q(2, "0.1"), None)
    assert result.amount == D("7.00")
    assert "no reference" in result.reason


def test_worse_than_v_counts_as_class_6_against_target_5():
    rule = {**CLASS_TARGET, "target_class": 5}
    assert rules.class_target(rule, q(5, "2"), None).amount == 0            # V ≤ V: met, same → 0
    assert rules.class_target(rule, q(6, "2"), None).amount == D("-1000000.00")   # 劣V > V


# -- class_steps -------------------------------------------------------------------------------

STEPS = {"type": "class_steps", "baseline_class": 3, "amount_per_class": "10000000"}


def test_worked_example_3_class_v_against_baseline_iii():
    # (3 − 5) × 10,000,000 = −20,000,000.00: upstream pays downstream
    result = rules.class_steps(STEPS, q(5), None)
    assert result.amount == D("-20000000.00")


@pytest.mark.parametrize("klass, expected", [
    (1, "20000000.00"),     # (3 − 1) × 10,000,000
    (2, "10000000.00"),     # (3 − 2) × 10,000,000
    (3, "0.00"),            # at the baseline
    (4, "-10000000.00"),    # (3 − 4) × 10,000,000
    (6, "-30000000.00"),    # 劣V counts as 6: (3 − 6) × 10,000,000
])
def test_class_steps(klass, expected):
    assert str(rules.class_steps(STEPS, q(klass), None).amount) == expected


def test_class_steps_with_fen():
    # (6 − 1) × 0.01 = 0.05
    rule = {"type": "class_steps", "baseline_class": 6, "amount_per_class": "0.01"}
    assert rules.class_steps(rule, q(1), None).amount == D("0.05")


# -- index_change --------------------------------------------------------------------------------

def change(per_point="500000", cap="3000000", points="whole"):
    return {"type": "index_change", "amount_per_point": per_point, "cap": cap, "points": points}


def test_worked_example_4_capped():
    # Δ = (0.9 − 1.0) / 1.0 × 100 = −10 → 10 points → −(−10) × 500,000 = 5,000,000 → cap 3,000,000
    result = rules.index_change(change(), q(index="0.9"), q(index="1.0"))
    assert result.amount == D("3000000.00")
    assert "cap" in result.reason


def test_cap_reached_the_other_way():
    # Δ = (1.1 − 1.0) / 1.0 × 100 = +10 → −10 × 500,000 = −5,000,000 → limited to −3,000,000
    assert rules.index_change(change(), q(index="1.1"), q(index="1.0")).amount == D("-3000000.00")


def test_exactly_at_the_cap_is_not_capped():
    # Δ = (0.94 − 1) / 1 × 100 = −6 → 6 × 500,000 = 3,000,000 = cap
    result = rules.index_change(change(), q(index="0.94"), q(index="1"))
    assert result.amount == D("3000000.00")
    result = rules.index_change(change(), q(index="1.06"), q(index="1"))
    assert result.amount == D("-3000000.00")


def test_whole_points_truncate_toward_zero():
    # Δ = (1.79 − 2) / 2 × 100 = −0.21 / 2 × 100 = −10.5
    #   whole: truncated toward zero → −10 → 10 × 1,000,000 = 10,000,000.00
    #   exact: −10.5 → 10.5 × 1,000,000 = 10,500,000.00
    r_whole = change("1000000", "40000000", "whole")
    r_exact = change("1000000", "40000000", "exact")
    assert rules.index_change(r_whole, q(index="1.79"), q(index="2")).amount == D("10000000.00")
    assert rules.index_change(r_exact, q(index="1.79"), q(index="2")).amount == D("10500000.00")
    # Δ = (2.21 − 2) / 2 × 100 = +10.5 → whole +10 (toward zero, not floor's +10 / ceiling's 11)
    assert rules.index_change(r_whole, q(index="2.21"), q(index="2")).amount == D("-10000000.00")
    assert rules.index_change(r_exact, q(index="2.21"), q(index="2")).amount == D("-10500000.00")


def test_less_than_one_whole_point_is_nothing():
    # Δ = (1.99 − 2) / 2 × 100 = −0.5 → whole 0 → 0.00
    assert rules.index_change(change("1000000", "40000000", "whole"), q(index="1.99"), q(index="2")).amount == 0


def test_no_reference_data_is_zero_and_says_so():
    result = rules.index_change(change(), q(index="0.5"), None)
    assert result.amount == 0
    assert str(result.amount) == "0.00"
    assert "no reference" in result.reason


def test_exact_points_round_half_up_to_the_fen_at_the_end():
    # Δ = −10.5 (as above) × 0.05 per point = 0.525 → half-up → 0.53 (half-even would say 0.52)
    rule = change("0.05", "1000", "exact")
    assert rules.index_change(rule, q(index="1.79"), q(index="2")).amount == D("0.53")
    # Δ = (1.99 − 2) / 2 × 100 = −0.5 × 0.01 per point = 0.005 → half-up → 0.01
    rule = change("0.01", "1", "exact")
    assert rules.index_change(rule, q(index="1.99"), q(index="2")).amount == D("0.01")
    # the same the other way: Δ = +0.5 → −0.005 → −0.01 (half away from zero, so the payer
    # does not depend on which side of zero the half falls)
    assert rules.index_change(rule, q(index="2.01"), q(index="2")).amount == D("-0.01")


def test_exact_points_are_rounded_once_not_per_step():
    # Δ = (2 − 3) / 3 × 100 = −33.333…; × 3 per point = 100 exactly: 99.999…(50 digits) → 100.00
    rule = change("3", "1000", "exact")
    assert rules.index_change(rule, q(index="2"), q(index="3")).amount == D("100.00")
    # Δ = (2 − 3) / 3 × 100 = −33.333… × 0.03 per point = 0.99999… → 1.00 (not 0.99 from −33.33 × 0.03)
    rule = change("0.03", "1000", "exact")
    assert rules.index_change(rule, q(index="2"), q(index="3")).amount == D("1.00")


# -- p_index ------------------------------------------------------------------------------------

BASELINES = {"CODMn": "2", "NH3N": "0.4", "TP": "0.1", "TN": "1"}


def p_rule(**over):
    rule = {"type": "p_index", "k0": "0.85", "weights": {k: "0.25" for k in BASELINES},
            "baselines": dict(BASELINES), "threshold": "1",
            "amount_met": "100000000", "amount_missed": "-100000000"}
    rule.update(over)
    return rule


def test_worked_example_2_ratio_1_1765_is_missed():
    # every mean / baseline = 1.1765: 2.353/2, 0.4706/0.4, 0.11765/0.1, 1.1765/1
    # P = 0.85 × 4 × 0.25 × 1.1765 = 0.85 × 1.1765 = 1.000025 > 1 → amount_missed
    now = q(means={"CODMn": "2.353", "NH3N": "0.4706", "TP": "0.11765", "TN": "1.1765"})
    result = rules.p_index(p_rule(), now, None)
    assert result.p == D("1.000025")
    assert result.amount == D("-100000000.00")


def test_worked_example_2_ratio_1_1764_is_met():
    # 2.3528/2 = 0.47056/0.4 = 0.11764/0.1 = 1.1764/1 = 1.1764; P = 0.85 × 1.1764 = 0.99994 ≤ 1
    now = q(means={"CODMn": "2.3528", "NH3N": "0.47056", "TP": "0.11764", "TN": "1.1764"})
    result = rules.p_index(p_rule(), now, None)
    assert result.p == D("0.99994")
    assert result.amount == D("100000000.00")


def test_p_exactly_at_the_threshold_is_met():
    # k0 0.5 × (1 × 4 / 2) = 1 = threshold → met
    rule = p_rule(k0="0.5", weights={"CODMn": "1"}, baselines={"CODMn": "2"})
    result = rules.p_index(rule, q(means={"CODMn": "4"}), None)
    assert result.p == 1
    assert result.amount == D("100000000.00")


def test_p_a_hair_above_the_threshold_is_missed_even_if_it_reads_1_0000():
    # 0.5 × 4.000001 / 2 = 1.00000025 > 1 → missed; to 4 decimals it reads 1.0000
    rule = p_rule(k0="0.5", weights={"CODMn": "1"}, baselines={"CODMn": "2"})
    result = rules.p_index(rule, q(means={"CODMn": "4.000001"}), None)
    assert result.p == D("1.00000025")
    assert result.amount == D("-100000000.00")


def test_p_threshold_other_than_one_and_unequal_weights():
    # P = 1 × (0.7 × 3/6 + 0.3 × 0.5/1) = 0.35 + 0.15 = 0.5; threshold 0.5 → met (≤)
    rule = p_rule(k0="1", weights={"CODMn": "0.7", "NH3N": "0.3"}, baselines={"CODMn": "6", "NH3N": "1"},
                  threshold="0.5", amount_met="12.34", amount_missed="-56.78")
    assert rules.p_index(rule, q(means={"CODMn": "3", "NH3N": "0.5"}), None).amount == D("12.34")
    # NH3N 0.500001 → P = 0.35 + 0.3 × 0.500001 = 0.5000003 > 0.5 → missed
    assert rules.p_index(rule, q(means={"CODMn": "3", "NH3N": "0.500001"}), None).amount == D("-56.78")


# -- pool -----------------------------------------------------------------------------------------

def pool_rule(fund="10000000", contributions=None, allocations=None, sections=None):
    return {"type": "pool", "fund": fund,
            "contributions": contributions or {"AA": "1", "BB": "1"},
            "allocations": allocations or {"AA": "1", "BB": "1"},
            "sections": sections or {"s-a": {"party": "AA", "weight": "1", "target_class": 2,
                                             "on_fail": {"BB": "1"}}}}


def test_worked_example_5_no_failure_moves_nothing():
    # 10,000,000 × 1/2 = 5,000,000 paid and allotted by each → nets 0 → no payments
    outcome = rules.pool(pool_rule(), ["AA", "BB"], {"s-a": q(2)})
    assert outcome.contributions == {"AA": D("5000000.00"), "BB": D("5000000.00")}
    assert outcome.allotments == {"AA": D("5000000.00"), "BB": D("5000000.00")}
    assert outcome.nets == {"AA": 0, "BB": 0}
    assert outcome.payments == []


def test_worked_example_5_a_fails():
    # s-a class III > target II → weight 1 × AA's allotment 5,000,000 → BB
    # AA: 5,000,000 − 5,000,000 − 5,000,000 = −5,000,000; BB: 5,000,000 + 5,000,000 − 5,000,000 = +5,000,000
    outcome = rules.pool(pool_rule(), ["AA", "BB"], {"s-a": q(3)})
    assert outcome.nets == {"AA": D("-5000000.00"), "BB": D("5000000.00")}
    assert outcome.payments == [("AA", "BB", D("5000000.00"))]


def test_an_unassessable_section_moves_nothing():
    outcome = rules.pool(pool_rule(), ["AA", "BB"], {"s-a": None})
    assert outcome.payments == []


def test_three_parties_failure_split_one_to_one_with_an_odd_fen():
    # fund 100, 1:1:1 both ways → nets 0 before failures.
    # CC's section fails: weight 0.5 × CC's allotment 33.33 = 16.665 → half-up → 16.67
    # on_fail AA:1, BB:1 → 8.335 each → floor 8.33 + 8.33 = 16.66, leftover 0.01 → AA (listed first)
    # nets: AA +8.34, BB +8.33, CC −16.67 → CC pays AA 8.34, then BB 8.33
    rule = pool_rule("100", {"AA": "1", "BB": "1", "CC": "1"}, {"AA": "1", "BB": "1", "CC": "1"},
                     {"s-c": {"party": "CC", "weight": "0.5", "target_class": 2, "on_fail": {"AA": "1", "BB": "1"}}})
    outcome = rules.pool(rule, ["AA", "BB", "CC"], {"s-c": q(4)})
    assert outcome.nets == {"AA": D("8.34"), "BB": D("8.33"), "CC": D("-16.67")}
    assert outcome.payments == [("CC", "AA", D("8.34")), ("CC", "BB", D("8.33"))]
    assert outcome.deductions[0]["amount"] == "16.67"
    assert outcome.deductions[0]["to"] == {"AA": "8.34", "BB": "8.33"}


def test_pool_fund_not_divisible_by_three_is_split_with_leftover_fen():
    # §4: "Splitting an amount among several parties floors each share to the fen and gives the
    # leftover fen one at a time to the parties in the order listed."
    # 100.00 / 3 = 33.333… → floors 33.33 × 3 = 99.99, leftover 0.01 → AA: 33.34, 33.33, 33.33
    rule = pool_rule("100", {"AA": "1", "BB": "1", "CC": "1"}, {"AA": "1", "BB": "1", "CC": "1"})
    outcome = rules.pool(rule, ["AA", "BB", "CC"], {})
    assert sum(outcome.contributions.values()) == D("100.00")
    assert sum(outcome.allotments.values()) == D("100.00")
    assert outcome.contributions == {"AA": D("33.34"), "BB": D("33.33"), "CC": D("33.33")}


def test_pool_nets_always_add_up_to_zero_and_are_paid_in_full():
    # fund 100; contributions 1:1:1, allocations AA:1, BB:2 (CC none).
    # By the splitting rule: contributions 33.34 / 33.33 / 33.33; allotments 100/3 = 33.333… → 33.33,
    # 200/3 = 66.666… → 66.66, leftover 0.01 → AA: 33.34 / 66.66.
    # nets: AA 33.34 − 33.34 = 0; BB 66.66 − 33.33 = +33.33; CC 0 − 33.33 = −33.33 → CC pays BB 33.33.
    # Whatever the rounding, money is neither made nor lost: Σ nets = 0 and every net is paid.
    rule = pool_rule("100", {"AA": "1", "BB": "1", "CC": "1"}, {"AA": "1", "BB": "2"})
    outcome = rules.pool(rule, ["AA", "BB", "CC"], {})
    assert sum(outcome.nets.values()) == 0
    paid = {p: D(0) for p in ("AA", "BB", "CC")}
    for payer, payee, amount in outcome.payments:
        paid[payer] -= amount
        paid[payee] += amount
    assert paid == outcome.nets
    assert outcome.nets == {"AA": 0, "BB": D("33.33"), "CC": D("-33.33")}


def test_pool_payers_pay_receivers_greedily_in_party_order():
    # contributions AA:3 BB:1 CC:2 DD:4 of 100 → 30 / 10 / 20 / 40; allocations BB:1 DD:4 → 20 / 80
    # nets: AA −30, BB +10, CC −20, DD +40
    # greedy in party order: AA pays BB 10 (BB full), AA pays DD 20 (AA done), CC pays DD 20
    rule = pool_rule("100", {"AA": "3", "BB": "1", "CC": "2", "DD": "4"}, {"BB": "1", "DD": "4"})
    outcome = rules.pool(rule, ["AA", "BB", "CC", "DD"], {})
    assert outcome.nets == {"AA": -30, "BB": 10, "CC": -20, "DD": 40}
    assert outcome.payments == [("AA", "BB", D("10.00")), ("AA", "DD", D("20.00")), ("CC", "DD", D("20.00"))]

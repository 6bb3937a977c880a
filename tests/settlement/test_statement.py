"""compute_statement on small agreement documents (specs/agreements.md §1–§5).

Each document is first checked by load_agreement, so every case is a valid agreement. Expected
figures are worked out by hand in the comments.
"""

import copy
import json
import re
from decimal import Decimal

from contracts.agreement_document import load_agreement
from settlement.statement import compute_statement

D = Decimal

CLASS_TARGET = {"type": "class_target", "target_class": 3, "amounts": {
    "met_improved": "1000000", "met_same": "0", "met_declined": "-1000000", "missed": "-1000000"}}


def party(pid: str) -> dict:
    return {"id": pid, "name": f"province {pid}", "account": f"{pid}:FIN:treasury"}


def section(sid="qj-1", upstream=("SC",), downstream=("CQ",), water_body="river", shares=None) -> dict:
    s = {"id": sid, "name": f"断面 {sid}", "river": "琼江", "water_body": water_body,
         "upstream": list(upstream), "downstream": list(downstream)}
    if shares is not None:
        s["shares"] = shares
    return s


def agreement(rules, parties=("SC", "CQ"), sections=None, indicators=("CODMn", "NH3N", "TP"), period="month"):
    document = {
        "id": "qiongjiang", "version": 1, "title": "琼江流域横向生态保护补偿协议",
        "parties": [party(p) for p in parties],
        "sections": sections or [section()],
        "indicators": list(indicators), "period": period,
        "term": {"from": "2024-01-01", "to": "2027-12-31"},
        "rules": rules, "responsibilities": "保护地区的责任", "breach": "违约处理",
    }
    load_agreement(copy.deepcopy(document))   # raises if the test itself wrote an invalid document
    return document


def submission(sid, *samples):
    return {"section": sid, "samples": [{"date": d, "values": v} for d, v in samples]}


def sample_month(sid, month, codmn, nh3n, tp):
    return submission(sid, (f"{month}-15", {"CODMn": codmn, "NH3N": nh3n, "TP": tp}))


def section_entry(statement, sid):
    return next(s for s in statement["sections"] if s["section"] == sid)


def positions(transfers):
    """Each party's net receipt from a transfers list."""
    net = {}
    for t in transfers:
        net[t["from"]] = net.get(t["from"], D(0)) - D(t["amount"])
        net[t["to"]] = net.get(t["to"], D(0)) + D(t["amount"])
    return net


AMOUNT = re.compile(r"\d+\.\d{2}")


def check_transfers(transfers):
    pairs = set()
    for t in transfers:
        assert set(t) == {"from", "to", "amount"}
        assert t["from"] != t["to"]
        assert AMOUNT.fullmatch(t["amount"]) and D(t["amount"]) > 0, t
        pair = frozenset((t["from"], t["to"]))
        assert pair not in pairs, f"two transfers between {sorted(pair)}"
        pairs.add(pair)


# -- worked example 1 end to end ------------------------------------------------------------------

EXAMPLE_1_SUBMISSIONS = [
    # July 2025: CODMn (3.0 + 3.4)/2 = 3.2; NH3N (0.40 + 0.56)/2 = 0.48; TP (0.08 + 0.10)/2 = 0.09
    submission("qj-1",
               ("2025-07-01", {"CODMn": "3.0", "NH3N": "0.40", "TP": "0.08"}),
               ("2025-07-31", {"CODMn": "3.4", "NH3N": "0.56", "TP": "0.10"})),
    # just outside July 2025: must not count (they would make every class 劣V)
    submission("qj-1",
               ("2025-06-30", {"CODMn": "99", "NH3N": "99", "TP": "99"}),
               ("2025-08-01", {"CODMn": "99", "NH3N": "99", "TP": "99"})),
    # July 2024: 3.3 / 0.5 / 0.1 → I_ref = 3.3/6 + 0.5/1.0 + 0.1/0.2 = 0.55 + 0.5 + 0.5 = 1.55
    sample_month("qj-1", "2024-07", "3.3", "0.5", "0.1"),
    # another section's samples are not this section's
    sample_month("other", "2025-07", "99", "99", "99"),
]


def test_worked_example_1_cq_pays_sc_one_million():
    statement = compute_statement(agreement([CLASS_TARGET]), EXAMPLE_1_SUBMISSIONS, "2025-07")
    assert statement["agreement"] == "qiongjiang"
    assert statement["version"] == 1
    assert statement["period"] == "2025-07"
    assert statement["reference_period"] == "2024-07"
    entry = section_entry(statement, "qj-1")
    assert entry["status"] == "settled"
    assert {k: D(v) for k, v in entry["means"].items()} == {"CODMn": D("3.2"), "NH3N": D("0.48"), "TP": D("0.09")}
    assert entry["classes"] == {"CODMn": 2, "NH3N": 2, "TP": 2}
    assert entry["class"] == 2
    assert entry["index"].startswith("1.46333333333333333333333333")
    assert D(entry["reference_index"]) == D("1.55")
    assert [r["type"] for r in entry["rules"]] == ["class_target"]
    assert entry["rules"][0]["amount"] == "1000000.00"
    assert entry["amount"] == "1000000.00"
    # positive → downstream (CQ) pays upstream (SC)
    assert statement["transfers"] == [{"from": "CQ", "to": "SC", "amount": "1000000.00"}]


def test_missed_target_upstream_pays_downstream():
    # NH3N 1.2 → IV > III → missed −1,000,000: SC (upstream) pays CQ
    subs = [sample_month("qj-1", "2025-07", "3.2", "1.2", "0.09")]
    statement = compute_statement(agreement([CLASS_TARGET]), subs, "2025-07")
    assert section_entry(statement, "qj-1")["class"] == 4
    assert statement["transfers"] == [{"from": "SC", "to": "CQ", "amount": "1000000.00"}]


def test_the_period_mean_is_exact_in_the_statement():
    # CODMn (0.1 + 0.2 + 0.2)/3 = 0.1666…, 50 significant digits: 1, forty-eight 6s, 7
    subs = [submission("qj-1",
                       ("2025-07-02", {"CODMn": "0.1", "NH3N": "0.1", "TP": "0.01"}),
                       ("2025-07-12", {"CODMn": "0.2", "NH3N": "0.1", "TP": "0.01"}),
                       ("2025-07-22", {"CODMn": "0.2", "NH3N": "0.1", "TP": "0.01"}))]
    statement = compute_statement(agreement([CLASS_TARGET]), subs, "2025-07")
    assert D(section_entry(statement, "qj-1")["means"]["CODMn"]) == D("0." + "1" + "6" * 48 + "7")


# -- unsettled sections ---------------------------------------------------------------------------

def test_a_missing_indicator_leaves_the_section_unsettled_and_owing_nothing():
    subs = [submission("qj-1",
                       ("2025-07-03", {"CODMn": "3.1", "NH3N": "0.42"}),        # no TP all month
                       ("2025-08-01", {"CODMn": "3.1", "NH3N": "0.42", "TP": "0.08"}))]  # August
    statement = compute_statement(agreement([CLASS_TARGET]), subs, "2025-07")
    entry = section_entry(statement, "qj-1")
    assert entry["status"] == "unsettled"
    assert entry["missing"] == ["TP"]
    assert "TP" in entry["reason"]
    assert D(entry["amount"]) == 0
    assert statement["transfers"] == []


def test_one_unsettled_section_does_not_stop_the_others():
    # qj-1: class II, no reference → met_same 0 … so use class_steps: (3 − 2) × 100 = +100: CQ pays SC
    # qj-2: no NH3N → unsettled, nothing
    rules = [{"type": "class_steps", "baseline_class": 3, "amount_per_class": "100"}]
    doc = agreement(rules, sections=[section("qj-1"), section("qj-2")])
    subs = [sample_month("qj-1", "2025-07", "3.2", "0.48", "0.09"),
            submission("qj-2", ("2025-07-09", {"CODMn": "3", "TP": "0.09"}))]
    statement = compute_statement(doc, subs, "2025-07")
    assert section_entry(statement, "qj-2")["status"] == "unsettled"
    assert section_entry(statement, "qj-2")["missing"] == ["NH3N"]
    assert statement["transfers"] == [{"from": "CQ", "to": "SC", "amount": "100.00"}]


def test_a_month_with_no_samples_at_all_names_every_indicator():
    statement = compute_statement(agreement([CLASS_TARGET]), [], "2025-07")
    entry = section_entry(statement, "qj-1")
    assert entry["status"] == "unsettled"
    assert entry["missing"] == ["CODMn", "NH3N", "TP"]
    assert statement["transfers"] == []


# -- several rules ---------------------------------------------------------------------------------

def test_several_rules_are_summed_and_each_shown():
    # Example 1's data (I = 439/300 = 1.46333…, I_ref = 1.55, class II):
    #   class_target   met_improved                                   +1,000,000.00
    #   class_steps    (3 − 2) × 10,000,000                           +10,000,000.00
    #   index_change   Δ = (1.46333… − 1.55)/1.55 × 100 = −0.08666…/1.55 × 100 = −5.5913978…
    #                  whole → −5 → 5 × 500,000                       +2,500,000.00 (< cap 3,000,000)
    #   p_index        P = 1 × (0.5 × 3.2/4 + 0.5 × 0.48/0.6) = 0.5 × 0.8 + 0.5 × 0.8 = 0.8 ≤ 1
    #                  → amount_met                                     +200,000.00
    #   class_steps    baseline II, (2 − 2) × 5                                +0.00
    #   total                                                          13,700,000.00
    rules = [CLASS_TARGET,
             {"type": "class_steps", "baseline_class": 3, "amount_per_class": "10000000"},
             {"type": "index_change", "amount_per_point": "500000", "cap": "3000000", "points": "whole"},
             {"type": "p_index", "k0": "1", "weights": {"CODMn": "0.5", "NH3N": "0.5"},
              "baselines": {"CODMn": "4", "NH3N": "0.6"}, "threshold": "1",
              "amount_met": "200000", "amount_missed": "-200000"},
             {"type": "class_steps", "baseline_class": 2, "amount_per_class": "5"}]
    statement = compute_statement(agreement(rules), EXAMPLE_1_SUBMISSIONS, "2025-07")
    entry = section_entry(statement, "qj-1")
    assert [(r["type"], r["amount"]) for r in entry["rules"]] == [
        ("class_target", "1000000.00"), ("class_steps", "10000000.00"), ("index_change", "2500000.00"),
        ("p_index", "200000.00"), ("class_steps", "0.00")]
    assert D(entry["rules"][3]["p"]) == D("0.8")
    assert entry["amount"] == "13700000.00"
    assert statement["transfers"] == [{"from": "CQ", "to": "SC", "amount": "13700000.00"}]


def test_rules_of_opposite_sign_net_within_a_section():
    # class IV: class_target missed −1,000,000; class_steps baseline 6: (6 − 4) × 300,000 = +600,000
    # total −400,000 → SC pays CQ 400,000.00
    rules = [CLASS_TARGET, {"type": "class_steps", "baseline_class": 6, "amount_per_class": "300000"}]
    subs = [sample_month("qj-1", "2025-07", "8", "0.3", "0.05")]   # CODMn 8 → IV (> 6, ≤ 10)
    statement = compute_statement(agreement(rules), subs, "2025-07")
    entry = section_entry(statement, "qj-1")
    assert [r["amount"] for r in entry["rules"]] == ["-1000000.00", "600000.00"]
    assert entry["amount"] == "-400000.00"
    assert statement["transfers"] == [{"from": "SC", "to": "CQ", "amount": "400000.00"}]


def test_p_display_agrees_with_the_reason():
    # Example 2: P = 1.000025. To 4 decimals half-up it reads 1.0000 (the fifth decimal is 2), and
    # the statement must not show two different readings of it.
    rules = [{"type": "p_index", "k0": "0.85", "weights": {"CODMn": "0.25", "NH3N": "0.25", "TP": "0.5"},
              "baselines": {"CODMn": "2", "NH3N": "0.4", "TP": "0.1"}, "threshold": "1",
              "amount_met": "100000000", "amount_missed": "-100000000"}]
    # ratios 2.353/2 = 0.4706/0.4 = 0.11765/0.1 = 1.1765; P = 0.85 × 1 × 1.1765 = 1.000025 > 1
    subs = [sample_month("qj-1", "2025-07", "2.353", "0.4706", "0.11765")]
    statement = compute_statement(agreement(rules), subs, "2025-07")
    rule = section_entry(statement, "qj-1")["rules"][0]
    assert D(rule["p"]) == D("1.000025")
    assert rule["amount"] == "-100000000.00"
    assert statement["transfers"] == [{"from": "SC", "to": "CQ", "amount": "100000000.00"}]
    assert f"P {rule['p_display']} " in rule["reason"], (rule["p_display"], rule["reason"])
    assert rule["p_display"] == "1.0000"


def test_index_change_against_an_all_zero_reference_does_not_crash():
    # Concentrations may be "0" (below detection). July 2024 all zero → I_ref = 0 and
    # Δ = (I − 0)/0 is undefined; the statement must still be computable (spec: silent on this).
    rules = [{"type": "index_change", "amount_per_point": "1000", "cap": "5000", "points": "whole"}]
    subs = [sample_month("qj-1", "2025-07", "3.2", "0.48", "0.09"), sample_month("qj-1", "2024-07", "0", "0", "0")]
    statement = compute_statement(agreement(rules), subs, "2025-07")
    check_transfers(statement["transfers"])


# -- several parties on one side -------------------------------------------------------------------

def test_shares_split_the_downstream_side():
    # met_improved 100.01 (Example 1's data): CQ 0.7 → 70.007 → 70.00; GZ 0.3 → 30.003 → 30.00;
    # leftover 0.01 → CQ (listed first): CQ pays SC 70.01, GZ pays SC 30.00
    rule = {**CLASS_TARGET, "amounts": {**CLASS_TARGET["amounts"], "met_improved": "100.01"}}
    doc = agreement([rule], parties=("SC", "CQ", "GZ"),
                    sections=[section(downstream=("CQ", "GZ"), shares={"CQ": "0.7", "GZ": "0.3"})])
    statement = compute_statement(doc, EXAMPLE_1_SUBMISSIONS, "2025-07")
    check_transfers(statement["transfers"])
    assert sorted(statement["transfers"], key=lambda t: t["from"]) == [
        {"from": "CQ", "to": "SC", "amount": "70.01"}, {"from": "GZ", "to": "SC", "amount": "30.00"}]


def test_default_equal_shares_with_leftover_fen_in_listed_order():
    # (3 − 2) × 100 = +100.00 split three ways: 33.333… → 33.33 × 3 = 99.99, leftover 0.01 → CQ
    rules = [{"type": "class_steps", "baseline_class": 3, "amount_per_class": "100"}]
    doc = agreement(rules, parties=("SC", "CQ", "GZ", "YN"),
                    sections=[section(downstream=("CQ", "GZ", "YN"))])
    subs = [sample_month("qj-1", "2025-07", "3.2", "0.48", "0.09")]
    statement = compute_statement(doc, subs, "2025-07")
    check_transfers(statement["transfers"])
    assert positions(statement["transfers"]) == {
        "SC": D("100.00"), "CQ": D("-33.34"), "GZ": D("-33.33"), "YN": D("-33.33")}


def test_equal_shares_when_upstream_pays():
    # class IV: (3 − 4) × 100 = −100.00 → SC pays the three downstream parties 33.34 / 33.33 / 33.33
    rules = [{"type": "class_steps", "baseline_class": 3, "amount_per_class": "100"}]
    doc = agreement(rules, parties=("SC", "CQ", "GZ", "YN"), sections=[section(downstream=("CQ", "GZ", "YN"))])
    subs = [sample_month("qj-1", "2025-07", "8", "0.48", "0.09")]
    statement = compute_statement(doc, subs, "2025-07")
    assert positions(statement["transfers"]) == {
        "SC": D("-100.00"), "CQ": D("33.34"), "GZ": D("33.33"), "YN": D("33.33")}


def test_both_sides_split_by_the_splitting_rule():
    # +100.00: downstream CQ/GZ/YN pay 33.34 / 33.33 / 33.33 (leftover fen to CQ);
    # upstream SC/XZ receive 100.00 split 1:1 = 50.00 / 50.00 (no leftover at all).
    rules = [{"type": "class_steps", "baseline_class": 3, "amount_per_class": "100"}]
    doc = agreement(rules, parties=("SC", "XZ", "CQ", "GZ", "YN"),
                    sections=[section(upstream=("SC", "XZ"), downstream=("CQ", "GZ", "YN"))])
    subs = [sample_month("qj-1", "2025-07", "3.2", "0.48", "0.09")]
    statement = compute_statement(doc, subs, "2025-07")
    check_transfers(statement["transfers"])
    assert positions(statement["transfers"]) == {
        "SC": D("50.00"), "XZ": D("50.00"), "CQ": D("-33.34"), "GZ": D("-33.33"), "YN": D("-33.33")}


# -- transfers: one per pair, in the direction of the net ------------------------------------------

def two_way_agreement():
    # qj-1 flows SC → CQ, cy-1 flows CQ → SC; (3 − class) × 1,000,000 on each
    rules = [{"type": "class_steps", "baseline_class": 3, "amount_per_class": "1000000"}]
    return agreement(rules, sections=[section("qj-1", ("SC",), ("CQ",)), section("cy-1", ("CQ",), ("SC",))])


def test_opposite_payments_between_a_pair_net_to_one_transfer():
    # qj-1 class II → +1,000,000: CQ pays SC; cy-1 class I → +2,000,000: SC (downstream) pays CQ
    # net: SC pays CQ 1,000,000.00
    subs = [sample_month("qj-1", "2025-07", "3.2", "0.48", "0.09"),
            sample_month("cy-1", "2025-07", "1", "0.1", "0.01")]
    statement = compute_statement(two_way_agreement(), subs, "2025-07")
    assert statement["transfers"] == [{"from": "SC", "to": "CQ", "amount": "1000000.00"}]


def test_payments_that_cancel_leave_no_transfer():
    # both sections class II → +1,000,000 each way → net 0 → no transfer at all
    subs = [sample_month("qj-1", "2025-07", "3.2", "0.48", "0.09"),
            sample_month("cy-1", "2025-07", "3.2", "0.48", "0.09")]
    statement = compute_statement(two_way_agreement(), subs, "2025-07")
    assert statement["transfers"] == []


# -- pools ----------------------------------------------------------------------------------------

def pool_agreement(pool_rule, parties=("SC", "CQ", "GZ")):
    return agreement([pool_rule], parties=parties, sections=[section("gz-1", ("GZ",), ("SC",)),
                                                             section("sc-1", ("SC",), ("CQ",))])


POOL_1_1_1 = {"type": "pool", "fund": "100", "contributions": {"SC": "1", "CQ": "1", "GZ": "1"},
              "allocations": {"SC": "1", "CQ": "1", "GZ": "1"},
              "sections": {"gz-1": {"party": "GZ", "weight": "0.5", "target_class": 2,
                                    "on_fail": {"SC": "1", "CQ": "1"}}}}


def test_worked_example_5_through_the_statement():
    # fund 10,000,000, SC/CQ 1:1 both ways; sc-1 (weight 1, on_fail CQ) misses II with class III
    # SC's allotment 5,000,000 → CQ: SC −5,000,000, CQ +5,000,000 → SC pays CQ 5,000,000.00
    rule = {"type": "pool", "fund": "10000000", "contributions": {"SC": "1", "CQ": "1"},
            "allocations": {"SC": "1", "CQ": "1"},
            "sections": {"sc-1": {"party": "SC", "weight": "1", "target_class": 2, "on_fail": {"CQ": "1"}}}}
    doc = agreement([rule], sections=[section("sc-1")])
    met = compute_statement(doc, [sample_month("sc-1", "2025-07", "3.2", "0.48", "0.09")], "2025-07")
    assert met["transfers"] == []
    assert met["pools"][0]["nets"] == {"SC": "0.00", "CQ": "0.00"}
    # CODMn 5 → III
    failed = compute_statement(doc, [sample_month("sc-1", "2025-07", "5", "0.48", "0.09")], "2025-07")
    assert failed["pools"][0]["nets"] == {"SC": "-5000000.00", "CQ": "5000000.00"}
    assert failed["transfers"] == [{"from": "SC", "to": "CQ", "amount": "5000000.00"}]


def test_three_party_pool_with_a_failing_section_and_an_odd_fen():
    # fund 100 1:1:1 both ways → every net 0 before failures.
    # gz-1 class III > II: 0.5 × GZ's allotment 33.33 = 16.665 → 16.67 (half-up)
    # on_fail SC:1, CQ:1 → 8.335 → 8.33 + 8.33 = 16.66, leftover 0.01 → SC: SC 8.34, CQ 8.33
    # transfers: GZ pays SC 8.34 and CQ 8.33
    subs = [sample_month("gz-1", "2025-07", "5", "0.48", "0.09"),   # III
            sample_month("sc-1", "2025-07", "3.2", "0.48", "0.09")]  # II (not in the pool)
    statement = compute_statement(pool_agreement(POOL_1_1_1), subs, "2025-07")
    pool = statement["pools"][0]
    assert pool["nets"] == {"SC": "8.34", "CQ": "8.33", "GZ": "-16.67"}
    assert pool["deductions"][0]["amount"] == "16.67"
    check_transfers(statement["transfers"])
    assert sorted(statement["transfers"], key=lambda t: t["to"]) == [
        {"from": "GZ", "to": "CQ", "amount": "8.33"}, {"from": "GZ", "to": "SC", "amount": "8.34"}]


def test_three_party_pool_contributions_and_allotments_use_the_splitting_rule():
    # 100.00 / 3: floors 33.33 × 3 = 99.99, leftover 0.01 → SC (listed first)
    statement = compute_statement(pool_agreement(POOL_1_1_1), [], "2025-07")
    pool = statement["pools"][0]
    assert pool["contributions"] == {"SC": "33.34", "CQ": "33.33", "GZ": "33.33"}
    assert pool["allotments"] == {"SC": "33.34", "CQ": "33.33", "GZ": "33.33"}
    assert statement["transfers"] == []


def test_three_party_pool_transfers_realise_every_net():
    # fund 100, contributions 1:1:1 (33.34/33.33/33.33), allocations SC:1, CQ:2 (33.34/66.66):
    # nets SC 0, CQ +33.33, GZ −33.33 → GZ pays CQ 33.33, and the transfers realise every net
    rule = {**POOL_1_1_1, "allocations": {"SC": "1", "CQ": "2"}}
    statement = compute_statement(pool_agreement(rule), [], "2025-07")
    nets = {p: D(a) for p, a in statement["pools"][0]["nets"].items()}
    assert sum(nets.values()) == 0
    got = positions(statement["transfers"])
    assert {p: got.get(p, D(0)) for p in nets} == nets


def test_pool_and_section_payments_net_into_one_transfer_per_pair():
    # section rule on sc-1 (SC → CQ): class II → (3 − 2) × 20 = +20: CQ pays SC 20
    #                      gz-1 (GZ → SC): class III → 0
    # pool: gz-1 fails → GZ pays SC 8.34 and CQ 8.33 (as above)
    # pairs: CQ→SC 20.00; GZ→SC 8.34; GZ→CQ 8.33
    rules = [{"type": "class_steps", "baseline_class": 3, "amount_per_class": "20"}, POOL_1_1_1]
    doc = agreement(rules, parties=("SC", "CQ", "GZ"),
                    sections=[section("gz-1", ("GZ",), ("SC",)), section("sc-1", ("SC",), ("CQ",))])
    subs = [sample_month("gz-1", "2025-07", "5", "0.48", "0.09"),
            sample_month("sc-1", "2025-07", "3.2", "0.48", "0.09")]
    statement = compute_statement(doc, subs, "2025-07")
    check_transfers(statement["transfers"])
    assert positions(statement["transfers"]) == {"SC": D("28.34"), "CQ": D("-11.67"), "GZ": D("-16.67")}
    assert {(t["from"], t["to"]): t["amount"] for t in statement["transfers"]} == {
        ("CQ", "SC"): "20.00", ("GZ", "SC"): "8.34", ("GZ", "CQ"): "8.33"}


# -- yearly agreements, leap months -------------------------------------------------------------------

def test_yearly_period_takes_the_whole_year_and_the_year_before_as_reference():
    # 2025: CODMn (3.0 on 1 Jan + 3.4 on 31 Dec)/2 = 3.2, NH3N 0.48, TP 0.09 → I = 1.4633…
    # 2024: 3.3/0.5/0.1 → I_ref 1.55 → improved → +1,000,000: CQ pays SC
    subs = [submission("qj-1",
                       ("2025-01-01", {"CODMn": "3.0", "NH3N": "0.48", "TP": "0.09"}),
                       ("2025-12-31", {"CODMn": "3.4", "NH3N": "0.48", "TP": "0.09"}),
                       ("2026-01-01", {"CODMn": "99", "NH3N": "99", "TP": "99"}),
                       ("2024-06-01", {"CODMn": "3.3", "NH3N": "0.5", "TP": "0.1"}))]
    statement = compute_statement(agreement([CLASS_TARGET], period="year"), subs, "2025")
    assert statement["reference_period"] == "2024"
    entry = section_entry(statement, "qj-1")
    assert D(entry["means"]["CODMn"]) == D("3.2")
    assert D(entry["reference_index"]) == D("1.55")
    assert statement["transfers"] == [{"from": "CQ", "to": "SC", "amount": "1000000.00"}]


def test_leap_day_counts_in_february():
    # Feb 2024 samples on the 1st (CODMn 1) and the 29th (CODMn 3) → mean 2 → class I
    subs = [submission("qj-1",
                       ("2024-02-01", {"CODMn": "1", "NH3N": "0.1", "TP": "0.01"}),
                       ("2024-02-29", {"CODMn": "3", "NH3N": "0.1", "TP": "0.01"}),
                       ("2024-03-01", {"CODMn": "99", "NH3N": "0.1", "TP": "0.01"}))]
    statement = compute_statement(agreement([CLASS_TARGET]), subs, "2024-02")
    entry = section_entry(statement, "qj-1")
    assert D(entry["means"]["CODMn"]) == 2
    assert entry["class"] == 1
    assert statement["reference_period"] == "2023-02"
    assert entry["reference_index"] is None


# -- purity and determinism -------------------------------------------------------------------------

def test_same_inputs_give_identical_json_and_inputs_are_untouched():
    rules = [CLASS_TARGET, {"type": "index_change", "amount_per_point": "500000", "cap": "3000000", "points": "exact"},
             POOL_1_1_1]
    doc = agreement(rules, parties=("SC", "CQ", "GZ"),
                    sections=[section("gz-1", ("GZ",), ("SC",)), section("sc-1", ("SC",), ("CQ",))])
    subs = [sample_month("gz-1", "2025-07", "5", "0.48", "0.09"),
            sample_month("sc-1", "2025-07", "3.2", "0.48", "0.09"),
            sample_month("sc-1", "2024-07", "3.3", "0.5", "0.1")]
    doc_before, subs_before = copy.deepcopy(doc), copy.deepcopy(subs)
    first = json.dumps(compute_statement(doc, subs, "2025-07"), sort_keys=True, ensure_ascii=False)
    second = json.dumps(compute_statement(copy.deepcopy(doc), copy.deepcopy(subs), "2025-07"),
                        sort_keys=True, ensure_ascii=False)
    assert first == second
    assert doc == doc_before and subs == subs_before
    # every amount in the statement is a string with exactly two decimals
    statement = json.loads(first)
    for t in statement["transfers"]:
        assert AMOUNT.fullmatch(t["amount"])
    for s in statement["sections"]:
        assert re.fullmatch(r"-?\d+\.\d{2}", s["amount"])
        for r in s["rules"]:
            assert re.fullmatch(r"-?\d+\.\d{2}", r["amount"])

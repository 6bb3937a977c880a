"""Agreement document validation (specs/agreements.md §1): every refusal names its field.

"Validation refuses, with a clear message and nothing appended: unknown indicator, a section whose
parties are not in parties, shares that don't sum to 1, ratios that are zero or negative, an empty
term, a rule missing a parameter." Each case mutates one valid document and checks the prefix of
validation_message ("field.path: message").
"""

import copy

import pytest
from marshmallow import ValidationError

from contracts.agreement_document import load_agreement, validation_message


def valid() -> dict:
    return {
        "id": "qiongjiang", "version": 1, "title": "琼江流域横向生态保护补偿协议",
        "parties": [{"id": "SC", "name": "四川省", "account": "SC:FIN:treasury"},
                    {"id": "CQ", "name": "重庆市", "account": "CQ:FIN:treasury"},
                    {"id": "GZ", "name": "贵州省", "account": "GZ:FIN:treasury"}],
        "sections": [{"id": "qj-1", "name": "光辉断面", "river": "琼江", "water_body": "river",
                      "upstream": ["SC"], "downstream": ["CQ", "GZ"], "shares": {"CQ": "0.5", "GZ": "0.5"}}],
        "indicators": ["CODMn", "NH3N", "TP"],
        "period": "month",
        "term": {"from": "2025-01-01", "to": "2027-12-31"},
        "rules": [
            {"type": "class_target", "target_class": 3, "amounts": {
                "met_improved": "1000000", "met_same": "0", "met_declined": "-1000000", "missed": "-1000000"}},
            {"type": "class_steps", "baseline_class": 3, "amount_per_class": "60000000"},
            {"type": "index_change", "amount_per_point": "1000000", "cap": "40000000", "points": "whole"},
            {"type": "p_index", "k0": "0.85", "weights": {"CODMn": "0.5", "NH3N": "0.25", "TP": "0.25"},
             "baselines": {"CODMn": "2.5", "NH3N": "0.5", "TP": "0.1"}, "threshold": "1",
             "amount_met": "100000000", "amount_missed": "-100000000"},
            {"type": "pool", "fund": "10000000", "contributions": {"SC": "1", "CQ": "1", "GZ": "1"},
             "allocations": {"SC": "3", "CQ": "2", "GZ": "1"},
             "sections": {"qj-1": {"party": "SC", "weight": "0.5", "target_class": 2,
                                   "on_fail": {"CQ": "0.5", "GZ": "0.5"}}}},
        ],
        "responsibilities": "保护地区的责任", "breach": "违约处理",
    }


CLASS_TARGET, CLASS_STEPS, INDEX_CHANGE, P_INDEX, POOL = range(5)


def refusal(mutate) -> str:
    document = valid()
    mutate(document)
    with pytest.raises(ValidationError) as caught:
        load_agreement(document)
    return validation_message(caught.value)


def test_the_valid_document_loads():
    loaded = load_agreement(valid())
    assert [r["type"] for r in loaded["rules"]] == ["class_target", "class_steps", "index_change", "p_index", "pool"]


def test_a_one_day_term_is_not_empty():
    document = valid()
    document["term"] = {"from": "2025-07-01", "to": "2025-07-01"}
    load_agreement(document)


# -- unknown indicator ----------------------------------------------------------------------------

def test_unknown_indicator():
    message = refusal(lambda d: d["indicators"].append("pH"))
    assert message.startswith("indicators.3:"), message


def test_unknown_indicator_in_p_index_weights():
    def mutate(d):
        d["rules"][P_INDEX]["weights"]["DO"] = "0.1"
        d["rules"][P_INDEX]["baselines"]["DO"] = "5"
    assert refusal(mutate).startswith(f"rules.{P_INDEX}.weights"), refusal(mutate)


def test_p_index_weight_on_an_indicator_the_agreement_does_not_measure():
    # TN is a known indicator but not among this agreement's indicators
    def mutate(d):
        d["rules"][P_INDEX]["weights"]["TN"] = "0.1"
        d["rules"][P_INDEX]["baselines"]["TN"] = "1"
    message = refusal(mutate)
    assert message.startswith(f"rules.{P_INDEX}.weights:"), message
    assert "TN" in message


def test_p_index_baselines_must_match_weights():
    message = refusal(lambda d: d["rules"][P_INDEX]["baselines"].pop("TP"))
    assert message.startswith(f"rules.{P_INDEX}.baselines:"), message


# -- parties --------------------------------------------------------------------------------------

def test_upstream_party_not_in_parties():
    message = refusal(lambda d: d["sections"][0].update(upstream=["YN"]))
    assert message.startswith("sections.0.upstream:"), message
    assert "YN" in message


def test_downstream_party_not_in_parties():
    def mutate(d):
        d["sections"][0].update(downstream=["CQ", "YN"], shares={"CQ": "0.5", "YN": "0.5"})
    message = refusal(mutate)
    assert message.startswith("sections.0.downstream:"), message


def test_party_on_both_sides():
    message = refusal(lambda d: d["sections"][0].update(upstream=["SC", "CQ"], shares=None))
    assert message.startswith("sections.0.downstream:") or message.startswith("sections.0.upstream:"), message


def test_pool_party_not_in_parties():
    message = refusal(lambda d: d["rules"][POOL]["contributions"].update(YN="1"))
    assert message.startswith(f"rules.{POOL}.contributions:"), message
    message = refusal(lambda d: d["rules"][POOL]["sections"]["qj-1"]["on_fail"].update(YN="1"))
    assert message.startswith(f"rules.{POOL}.sections"), message


def test_pool_section_not_in_sections():
    message = refusal(lambda d: d["rules"][POOL]["sections"].update(
        {"nowhere": {"party": "SC", "weight": "1", "target_class": 2, "on_fail": {"CQ": "1"}}}))
    assert message.startswith(f"rules.{POOL}.sections:"), message


@pytest.mark.parametrize("bad", ["SCX", "Sc", "S", "SC1", "SC "])
def test_a_party_id_is_exactly_two_capital_letters(bad):
    # §1: "parties[].id is a province code of two capital letters"
    # a fourth party that no section names, so the only fault is its id
    message = refusal(lambda d: d["parties"].append({"id": bad, "name": "云南省", "account": "YN:FIN:treasury"}))
    assert message.startswith("parties.3.id:"), message


# -- shares ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("shares", [{"CQ": "0.5", "GZ": "0.4"}, {"CQ": "0.6", "GZ": "0.5"},
                                    {"CQ": "0.3333", "GZ": "0.6666"}])
def test_shares_that_do_not_sum_to_one(shares):
    message = refusal(lambda d: d["sections"][0].update(shares=shares))
    assert message.startswith("sections.0.shares:"), message


def test_shares_for_only_some_of_a_side():
    def mutate(d):
        d["parties"].append({"id": "YN", "name": "云南省", "account": "YN:FIN:treasury"})
        d["sections"][0].update(downstream=["CQ", "GZ", "YN"], shares={"CQ": "0.5", "GZ": "0.5"})
    assert refusal(mutate).startswith("sections.0.shares:")


def test_share_for_a_party_on_neither_side():
    # YN is not in the section (nor in parties)
    message = refusal(lambda d: d["sections"][0].update(shares={"CQ": "0.5", "GZ": "0.5", "YN": "1"}))
    assert message.startswith("sections.0.shares"), message


# -- ratios zero or negative ----------------------------------------------------------------------

@pytest.mark.parametrize("value", ["0", "0.0", "0.000", "-1", "-0.5"])
@pytest.mark.parametrize("prefix, names, mutate", [
    ("sections.0.shares", "CQ", lambda d, v: d["sections"][0]["shares"].update(CQ=v)),
    (f"rules.{P_INDEX}.k0", "k0", lambda d, v: d["rules"][P_INDEX].update(k0=v)),
    (f"rules.{P_INDEX}.weights", "CODMn", lambda d, v: d["rules"][P_INDEX]["weights"].update(CODMn=v)),
    (f"rules.{P_INDEX}.baselines", "TP", lambda d, v: d["rules"][P_INDEX]["baselines"].update(TP=v)),
    (f"rules.{POOL}.contributions", "SC", lambda d, v: d["rules"][POOL]["contributions"].update(SC=v)),
    (f"rules.{POOL}.allocations", "GZ", lambda d, v: d["rules"][POOL]["allocations"].update(GZ=v)),
    (f"rules.{POOL}.sections.qj-1", "weight", lambda d, v: d["rules"][POOL]["sections"]["qj-1"].update(weight=v)),
    (f"rules.{POOL}.sections.qj-1", "CQ",
     lambda d, v: d["rules"][POOL]["sections"]["qj-1"]["on_fail"].update(CQ=v)),
], ids=["share", "k0", "weight", "baseline", "contribution", "allocation", "pool-weight", "on_fail"])
def test_ratios_zero_or_negative(prefix, names, mutate, value):
    message = refusal(lambda d: mutate(d, value))
    path = message.split(": ")[0]
    # the path leads to the field and names it (marshmallow adds ".value" for a dict's values)
    assert path.startswith(prefix), message
    assert names in path.split("."), message


def test_pool_section_weight_names_weight():
    message = refusal(lambda d: d["rules"][POOL]["sections"]["qj-1"].update(weight="0"))
    assert message.split(":")[0].endswith("weight"), message


def test_pool_section_weight_above_one():
    message = refusal(lambda d: d["rules"][POOL]["sections"]["qj-1"].update(weight="1.5"))
    assert message.split(":")[0].endswith("weight"), message


@pytest.mark.parametrize("field", ["amount_per_point", "cap"])
def test_index_change_amounts_must_be_positive(field):
    message = refusal(lambda d: d["rules"][INDEX_CHANGE].update({field: "0"}))
    assert message.startswith(f"rules.{INDEX_CHANGE}.{field}:"), message


def test_pool_fund_must_be_positive():
    message = refusal(lambda d: d["rules"][POOL].update(fund="-5"))
    assert message.startswith(f"rules.{POOL}.fund:"), message


# -- money ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["1.005", "1000000abc", "1e6", "１０", "1,000", " 10", "10 "])
def test_amounts_are_decimal_strings_with_at_most_two_decimals(bad):
    # §1: "Money is a decimal string in 元"; fen is the smallest unit (at most two decimals)
    message = refusal(lambda d: d["rules"][CLASS_TARGET]["amounts"].update(met_improved=bad))
    assert message.startswith(f"rules.{CLASS_TARGET}.amounts.met_improved:"), message
    message = refusal(lambda d: d["rules"][P_INDEX].update(amount_met=bad))
    assert message.startswith(f"rules.{P_INDEX}.amount_met:"), message


# -- term -----------------------------------------------------------------------------------------

def test_empty_term():
    message = refusal(lambda d: d.update(term={"from": "2025-01-01", "to": "2024-12-31"}))
    assert message.startswith("term.to:"), message


def test_term_missing_an_end():
    message = refusal(lambda d: d["term"].pop("to"))
    assert message.startswith("term.to:"), message


# -- rules missing a parameter ---------------------------------------------------------------------

@pytest.mark.parametrize("index, field", [
    (CLASS_TARGET, "target_class"), (CLASS_TARGET, "amounts"),
    (CLASS_STEPS, "baseline_class"), (CLASS_STEPS, "amount_per_class"),
    (INDEX_CHANGE, "amount_per_point"), (INDEX_CHANGE, "cap"), (INDEX_CHANGE, "points"),
    (P_INDEX, "k0"), (P_INDEX, "weights"), (P_INDEX, "baselines"), (P_INDEX, "threshold"),
    (P_INDEX, "amount_met"), (P_INDEX, "amount_missed"),
    (POOL, "fund"), (POOL, "contributions"), (POOL, "allocations"), (POOL, "sections"),
])
def test_rule_missing_a_parameter(index, field):
    message = refusal(lambda d: d["rules"][index].pop(field))
    assert message.startswith(f"rules.{index}.{field}:"), message


@pytest.mark.parametrize("amount", ["met_improved", "met_same", "met_declined", "missed"])
def test_class_target_missing_an_amount(amount):
    message = refusal(lambda d: d["rules"][CLASS_TARGET]["amounts"].pop(amount))
    assert message.startswith(f"rules.{CLASS_TARGET}.amounts.{amount}:"), message


@pytest.mark.parametrize("field", ["party", "weight", "target_class", "on_fail"])
def test_pool_section_missing_a_parameter(field):
    message = refusal(lambda d: d["rules"][POOL]["sections"]["qj-1"].pop(field))
    assert message.startswith(f"rules.{POOL}.sections.qj-1"), message
    assert message.split(":")[0].endswith(field), message


@pytest.mark.parametrize("value", [0, 7, "3", 2.5])
def test_class_out_of_range_or_not_an_integer(value):
    message = refusal(lambda d: d["rules"][CLASS_TARGET].update(target_class=value))
    assert message.startswith(f"rules.{CLASS_TARGET}.target_class:"), message


def test_index_change_points_is_whole_or_exact():
    message = refusal(lambda d: d["rules"][INDEX_CHANGE].update(points="rounded"))
    assert message.startswith(f"rules.{INDEX_CHANGE}.points:"), message


# -- rule type --------------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", [{"type": "lottery"}, {"kind": "class_target"}, {"type": None}, "class_target"])
def test_unknown_rule_type(rule):
    message = refusal(lambda d: d["rules"].append(rule))
    assert message.startswith("rules.5:"), message


def test_no_rules():
    assert refusal(lambda d: d.update(rules=[])).startswith("rules:")


# -- unknown fields anywhere --------------------------------------------------------------------------

@pytest.mark.parametrize("where, mutate", [
    ("extra", lambda d: d.update(extra=1)),
    ("parties.1.nickname", lambda d: d["parties"][1].update(nickname="渝")),
    ("sections.0.color", lambda d: d["sections"][0].update(color="blue")),
    ("term.note", lambda d: d["term"].update(note="x")),
    (f"rules.{CLASS_TARGET}.bonus", lambda d: d["rules"][CLASS_TARGET].update(bonus="1")),
    (f"rules.{CLASS_TARGET}.amounts.bonus", lambda d: d["rules"][CLASS_TARGET]["amounts"].update(bonus="1")),
    (f"rules.{CLASS_STEPS}.cap", lambda d: d["rules"][CLASS_STEPS].update(cap="1")),
    (f"rules.{INDEX_CHANGE}.floor", lambda d: d["rules"][INDEX_CHANGE].update(floor="1")),
    (f"rules.{P_INDEX}.k1", lambda d: d["rules"][P_INDEX].update(k1="1")),
    (f"rules.{POOL}.sections.qj-1", lambda d: d["rules"][POOL]["sections"]["qj-1"].update(color="red")),
])
def test_unknown_field_anywhere(where, mutate):
    message = refusal(mutate)
    assert message.startswith(where), message
    assert "nknown" in message, message


# -- other shapes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("period", "week"), ("indicators", []), ("parties", []), ("sections", []), ("version", 0),
])
def test_top_level_shapes(field, value):
    message = refusal(lambda d: d.update({field: value}))
    assert message.startswith(f"{field}:") or message.startswith(f"{field}."), message


def test_water_body_is_river_or_lake():
    assert refusal(lambda d: d["sections"][0].update(water_body="sea")).startswith("sections.0.water_body:")


@pytest.mark.parametrize("bad", ["qj-1 !!", "QJ-1", "qj_1", "-qj"])
def test_section_id_is_a_slug(bad):
    def mutate(d):
        d["sections"][0]["id"] = bad
        d["rules"][POOL]["sections"] = {bad: d["rules"][POOL]["sections"].pop("qj-1")}
    message = refusal(mutate)
    assert message.startswith("sections.0.id:"), message


def test_duplicate_indicator():
    assert refusal(lambda d: d["indicators"].append("TP")).startswith("indicators:")


def test_validation_does_not_change_the_document():
    document = valid()
    before = copy.deepcopy(document)
    load_agreement(document)
    assert document == before

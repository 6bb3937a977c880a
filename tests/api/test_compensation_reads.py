"""The compensation and clearing reads (api/compensation): agreements, statements, monitoring
submissions, the obligation summary, clearing runs and overdue runs — their answers, pages,
scoping, problems and OpenAPI description.

The scenario goes through the contracts layer (:class:`support.registry.Registry`,
:func:`settlement.service.settle`, :func:`settlement.clearing.clear`); every figure asserted is
worked out by hand below from specs/agreements.md.

**The agreement** ``tuojiang-test`` v1 (SC upstream, CQ downstream of section ``tj-1``, a river;
CODMn, NH3N, TP; monthly, 2025): ``class_target`` (target III; ±1,000,000) and
``index_change`` (50,000 per whole point, cap 400,000). Class III limits: CODMn 6, NH3N 1.0,
TP 0.2.

* July 2024 (reference): CODMn 3.5, 3.7 → 3.6; NH3N 0.45, 0.55 → 0.5; TP 0.09, 0.09 → 0.09.
  I_ref = 3.6/6 + 0.5/1.0 + 0.09/0.2 = 0.6 + 0.5 + 0.45 = 1.55.
* July 2025, first submission: CODMn 3.0, 3.4 → 3.2 (II); NH3N 0.46, 0.50 → 0.48 (II);
  TP 0.08, 0.10 → 0.09 (II): class II, met. I = 0.53333… + 0.48 + 0.45 = 1.46333… < 1.55:
  improved → +1,000,000.00. Δ = (1.46333… − 1.55) / 1.55 × 100 = −5.5913… → −5 whole points
  → −(−5) × 50,000 = +250,000.00. Section amount +1,250,000.00: downstream CQ pays SC.
  **Statement S1**: CQ → SC 1,250,000.00; obligation CQ:FIN → SC:FIN 1,250,000.00.
* July 2025, corrected: TP 0.18, 0.22 → 0.20 (III, limits inclusive): class III, still met.
  I = 0.53333… + 0.48 + 1.0 = 2.01333… > 1.55: declined → −1,000,000.00. Δ = +29.89… → 29
  points → −1,450,000, capped at −400,000.00. Section −1,400,000.00: SC pays CQ.
  **Statement S2** supersedes S1: SC → CQ 1,400,000.00; its obligation is the difference,
  SC:FIN → CQ:FIN 1,400,000.00 + 1,250,000.00 = 2,650,000.00.
* August 2025: CODMn and NH3N only. **Statement S3**: unsettled (TP missing), no transfers.

Compensation pool: CQ:FIN owes SC:FIN 1,250,000.00 (one obligation), SC:FIN owes CQ:FIN
2,650,000.00 (one): net SC:FIN pays CQ:FIN 1,400,000.00.

**Trades** (:func:`support.registry.standard_world`): CQ:EXC owes SC:EXC 2,000.00 and 300.00;
here C sells 4.000 of CQ's PDR to A at 125 across provinces, confirmed by sc-exchange: SC:EXC
owes CQ:EXC 500.00. Trade pool: 2,300.00 one way (two obligations), 500.00 the other (one):
net CQ:EXC pays SC:EXC 1,800.00.

A second agreement ``gz-cq`` (GZ upstream, CQ downstream of ``gc-1``) is only proposed, by
cq-finance, with one submission by cq-monitor: it separates what SC and CQ principals see.
"""

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from urllib.parse import quote

import pytest

from api.storage import get_store
from contracts.agreements import document_digest
from ledger.entry import format_time, parse_time
from settlement.clearing import clear
from settlement.service import settle
from support.reads import get, ok, problem, walk
from support.registry import standard_world


DOCUMENT = {
    "id": "tuojiang-test", "version": 1, "title": "沱江测试流域横向生态保护补偿协议",
    "parties": [{"id": "SC", "name": "四川省", "account": "SC:FIN:treasury"},
                {"id": "CQ", "name": "重庆市", "account": "CQ:FIN:treasury"}],
    "sections": [{"id": "tj-1", "name": "测试断面", "river": "沱江", "water_body": "river",
                  "upstream": ["SC"], "downstream": ["CQ"]}],
    "indicators": ["CODMn", "NH3N", "TP"],
    "period": "month",
    "term": {"from": "2025-01-01", "to": "2025-12-31"},
    "rules": [
        {"type": "class_target", "target_class": 3,
         "amounts": {"met_improved": "1000000", "met_same": "0", "met_declined": "-1000000", "missed": "-1000000"}},
        {"type": "index_change", "amount_per_point": "50000", "cap": "400000", "points": "whole"},
    ],
    "responsibilities": "四川省负责上游治理。",
    "breach": "逾期拨付按日万分之五计收违约金。",
}
VERSION_2 = {**DOCUMENT, "version": 2, "term": {"from": "2026-01-01", "to": "2026-12-31"}}
GZ_CQ = {
    **DOCUMENT, "id": "gz-cq", "title": "黔渝测试协议",
    "parties": [{"id": "CQ", "name": "重庆市", "account": "CQ:FIN:treasury"},
                {"id": "GZ", "name": "贵州省", "account": "GZ:FIN:treasury"}],
    "sections": [{"id": "gc-1", "name": "黔渝断面", "river": "乌江", "water_body": "river",
                  "upstream": ["GZ"], "downstream": ["CQ"]}],
}


def samples(day_values: dict[str, dict[str, str]]) -> list[dict]:
    return [{"date": day, "values": values} for day, values in day_values.items()]


REFERENCE = samples({"2024-07-05": {"CODMn": "3.5", "NH3N": "0.45", "TP": "0.09"},
                     "2024-07-20": {"CODMn": "3.7", "NH3N": "0.55", "TP": "0.09"}})
JULY = samples({"2025-07-05": {"CODMn": "3.0", "NH3N": "0.46", "TP": "0.08"},
                "2025-07-20": {"CODMn": "3.4", "NH3N": "0.50", "TP": "0.10"}})
JULY_CORRECTED = samples({"2025-07-05": {"CODMn": "3.0", "NH3N": "0.46", "TP": "0.18"},
                          "2025-07-20": {"CODMn": "3.4", "NH3N": "0.50", "TP": "0.22"}})
AUGUST = samples({"2025-08-06": {"CODMn": "2.9", "NH3N": "0.40"}})

SC_FIN, CQ_FIN = "SC:FIN:treasury", "CQ:FIN:treasury"
SC_EXC, CQ_EXC = "SC:EXC:sc-exchange", "CQ:EXC:cq-exchange"


class Scenario:
    """What :func:`scenario` built: ids of records, seqs, the registry."""

    def __init__(self, world):
        self.world = world
        self.registry = world.registry
        self.ids: dict[str, str] = {}
        self.seqs: dict[str, int] = {}

    def __getitem__(self, name):
        return self.registry[name]

    def settle(self, app, agreement: str, period: str):
        with app.app_context(), get_store().writer() as writer:
            return settle(writer, agreement, period)


def build(app, *, cleared: bool = True) -> Scenario:
    world = standard_world(app)
    s = Scenario(world)
    registry = s.registry
    registry.principal("cq-monitor", "monitor", "CQ")
    registry.principal("yn-finance", "finance", "YN")
    registry.principal("gz-finance", "finance", "GZ")

    proposed = registry.result("sc-finance", {"op": "agreement.propose", "document": DOCUMENT})
    assert proposed["status"] == "proposed" and proposed["digest"] == document_digest(DOCUMENT)
    s.seqs["proposed"] = registry.command("cq-finance", {"op": "agreement.sign", "agreement": "tuojiang-test",
                                                         "version": 1, "digest": proposed["digest"]}).seq
    s.seqs["v2"] = registry.command("sc-finance", {"op": "agreement.propose", "document": VERSION_2}).seq
    registry.command("cq-finance", {"op": "agreement.propose", "document": GZ_CQ})

    def submit(actor, section, items):
        return registry.result(actor, {"op": "monitoring.submit", "section": section, "samples": items})["submission"]

    s.ids["reference"] = submit("sc-monitor", "tj-1", REFERENCE)
    s.ids["july"] = submit("sc-monitor", "tj-1", JULY)
    s.ids["august"] = submit("cq-monitor", "tj-1", AUGUST)
    s.ids["gc"] = submit("cq-monitor", "gc-1", REFERENCE)

    first = s.settle(app, "tuojiang-test", "2025-07")
    s.ids["S1"] = first.results[0]["statement"]
    s.ids["corrected"] = registry.result("sc-monitor", {"op": "monitoring.correct", "submission": s.ids["july"],
                                                        "samples": JULY_CORRECTED})["submission"]
    s.ids["S2"] = s.settle(app, "tuojiang-test", "2025-07").results[0]["statement"]
    assert s.settle(app, "tuojiang-test", "2025-07") is None  # same inputs: nothing appended
    s.ids["S3"] = s.settle(app, "tuojiang-test", "2025-08").results[0]["statement"]

    A, C = world.accounts["A"], world.accounts["C"]
    back = registry.result("cq-exchange", {"op": "trade", "asset": world.assets["pdr_cq"], "quantity": "4",
                                           "price": "125", "seller": C, "buyer": A})
    registry.command("sc-exchange", {"op": "trade.confirm", "trade": back["trade"]})
    if cleared:
        clear_and_confirm(app, s)
    return s


def clear_and_confirm(app, s: Scenario) -> None:
    """Clear both pools; the compensation payment is confirmed by both bureaus (settled), the
    trade payment by its payer cq-exchange only (waiting for sc-exchange)."""
    with app.app_context(), get_store().writer() as writer:
        cutoff = "2100-01-01T00:00:00.000000Z"  # every obligation so far
        s.ids["run_compensation"] = clear(writer, "compensation", cutoff).results[0]["clearing"]
        s.ids["run_trade"] = clear(writer, "trade", cutoff).results[0]["clearing"]
    registry = s.registry
    compensation, trade = f"{s.ids['run_compensation']}-0", f"{s.ids['run_trade']}-0"
    registry.command("sc-finance", {"op": "clearing.confirm", "payment": compensation})
    s.seqs["settled"] = registry.command("cq-finance", {"op": "clearing.confirm", "payment": compensation}).seq
    registry.command("cq-exchange", {"op": "clearing.confirm", "payment": trade})


@pytest.fixture
def s(app):
    return build(app)


# -- helpers -------------------------------------------------------------------------------------


def ids(items) -> list[str]:
    return [item["id"] for item in items]


# -- agreements ----------------------------------------------------------------------------------


def test_agreements_with_versions_signatures_and_documents(client, s):
    auditor = s["auditor"]
    listed = walk(client, "/v1/agreements", auditor, 1)
    assert ids(listed) == ["gz-cq", "tuojiang-test"]
    gz, tj = listed
    assert (gz["status"], gz["active_version"], gz["latest_version"]) == ("proposed", None, 1)
    assert (tj["status"], tj["active_version"], tj["latest_version"], tj["period"]) == ("active", 1, 2, "month")
    assert tj["title"] == DOCUMENT["title"]
    assert tj["parties"] == DOCUMENT["parties"]
    assert tj["sections"] == [{**DOCUMENT["sections"][0], "shares": None}]
    assert [(v["version"], v["status"], v["term"]) for v in tj["versions"]] == [
        (1, "active", {"from": "2025-01-01", "to": "2025-12-31"}),
        (2, "proposed", {"from": "2026-01-01", "to": "2026-12-31"})]
    assert tj["versions"][0]["activated_seq"] == s.seqs["proposed"]

    assert ids(ok(client, "/v1/agreements", auditor, status="active")["items"]) == ["tuojiang-test"]
    assert ids(ok(client, "/v1/agreements", auditor, status="proposed")["items"]) == ["gz-cq"]
    assert ids(ok(client, "/v1/agreements", auditor, party="GZ")["items"]) == ["gz-cq"]
    assert ids(ok(client, "/v1/agreements", auditor, party="CQ")["items"]) == ["gz-cq", "tuojiang-test"]
    assert ok(client, "/v1/agreements", auditor, party="YN")["items"] == []

    detail = ok(client, "/v1/agreements/tuojiang-test", auditor)
    assert (detail["id"], detail["status"], detail["active_version"], detail["latest_version"]) == (
        "tuojiang-test", "active", 1, 2)
    v1, v2 = detail["versions"]
    assert v1["document"] == DOCUMENT and v2["document"] == VERSION_2
    assert v1["digest"] == document_digest(DOCUMENT) and v2["digest"] == document_digest(VERSION_2)
    assert (v1["proposed_by"], v1["status"], v1["activated_seq"], v1["waiting_for"]) == (
        "sc-finance", "active", s.seqs["proposed"], [])
    assert [(x["party"], x["principal"]) for x in v1["signatures"]] == [("SC", "sc-finance"), ("CQ", "cq-finance")]
    assert v1["signatures"][0]["seq"] == v1["proposed_seq"] and v1["signatures"][1]["seq"] == s.seqs["proposed"]
    assert (v2["status"], v2["activated_seq"], v2["waiting_for"], v2["proposed_seq"]) == (
        "proposed", None, ["CQ"], s.seqs["v2"])
    assert [x["party"] for x in v2["signatures"]] == ["SC"]
    assert (v1["period"], v1["term"], v1["title"], v1["parties"]) == (
        "month", {"from": "2025-01-01", "to": "2025-12-31"}, DOCUMENT["title"], DOCUMENT["parties"])

    assert ok(client, "/v1/agreements/tuojiang-test/versions/2", auditor) == v2
    assert ok(client, "/v1/agreements/tuojiang-test/versions/1", auditor)["agreement"] == "tuojiang-test"


# -- statements ----------------------------------------------------------------------------------


def test_statements_carry_the_hand_computed_amounts_and_their_chain(client, s):
    auditor, S1, S2, S3 = s["auditor"], s.ids["S1"], s.ids["S2"], s.ids["S3"]
    listed = walk(client, "/v1/agreements/tuojiang-test/statements", auditor, 1)
    assert ids(listed) == [S1, S2, S3]  # by period, a superseded statement before its successor
    assert [(x["period"], x["current"], x["supersedes"], x["superseded_by"]) for x in listed] == [
        ("2025-07", False, None, S2), ("2025-07", True, S1, None), ("2025-08", True, None, None)]
    assert [x["transfers"] for x in listed] == [
        [{"from": "CQ", "to": "SC", "amount": "1250000.00"}],
        [{"from": "SC", "to": "CQ", "amount": "1400000.00"}],
        []]
    assert [x["sections"] for x in listed] == [
        [{"section": "tj-1", "name": "测试断面", "status": "settled", "class": 2, "amount": "1250000.00"}],
        [{"section": "tj-1", "name": "测试断面", "status": "settled", "class": 3, "amount": "-1400000.00"}],
        [{"section": "tj-1", "name": "测试断面", "status": "unsettled", "class": None, "amount": "0.00"}]]
    assert all(x["version"] == 1 and x["digest"] == document_digest(DOCUMENT) and x["time"].endswith("Z")
               for x in listed)
    assert ids(ok(client, "/v1/agreements/tuojiang-test/statements", auditor, current="true")["items"]) == [S2, S3]
    assert ids(ok(client, "/v1/agreements/tuojiang-test/statements", auditor, current="false")["items"]) == [S1]
    assert ids(ok(client, "/v1/agreements/tuojiang-test/statements", auditor, period="2025-08")["items"]) == [S3]
    assert ok(client, "/v1/agreements/gz-cq/statements", auditor)["items"] == []

    first = ok(client, f"/v1/statements/{S1}", auditor)
    body = first["statement"]
    section = body["sections"][0]
    assert (body["agreement"], body["version"], body["period"], body["reference_period"]) == (
        "tuojiang-test", 1, "2025-07", "2024-07")
    assert section["means"] == {"CODMn": "3.2", "NH3N": "0.48", "TP": "0.09"}
    assert section["classes"] == {"CODMn": 2, "NH3N": 2, "TP": 2}
    assert Decimal(section["reference_index"]) == Decimal("1.55")
    assert section["index"].startswith("1.46333333333333333333")
    assert [(r["type"], r["amount"]) for r in section["rules"]] == [
        ("class_target", "1000000.00"), ("index_change", "250000.00")]
    assert section["rules"][0]["reason"].endswith("improved")
    assert body["transfers"] == [{"from": "CQ", "to": "SC", "amount": "1250000.00"}]
    assert (first["seq"], first["superseded_by"], first["current"]) == (listed[0]["seq"], S2, False)
    assert [(o["debtor"], o["creditor"], o["amount"], o["pool"]) for o in first["obligations"]] == [
        (CQ_FIN, SC_FIN, "1250000.00", "compensation")]
    assert len(body["submissions"]) == 2  # the reference month's and July's, as seqs

    second = ok(client, f"/v1/statements/{S2}", auditor)
    rules = second["statement"]["sections"][0]["rules"]
    assert [(r["type"], r["amount"]) for r in rules] == [("class_target", "-1000000.00"),
                                                        ("index_change", "-400000.00")]
    assert "capped at 400000.00" in rules[1]["reason"]
    assert second["statement"]["sections"][0]["means"]["TP"] == "0.20"  # (0.18 + 0.22) / 2
    assert (second["supersedes"], second["superseded_by"]) == (S1, None)
    assert [(o["debtor"], o["creditor"], o["amount"]) for o in second["obligations"]] == [
        (SC_FIN, CQ_FIN, "2650000.00")]  # the difference: 1,400,000.00 + 1,250,000.00

    third = ok(client, f"/v1/statements/{S3}", auditor)
    assert third["statement"]["sections"][0]["missing"] == ["TP"] and third["obligations"] == []

    current = ok(client, "/v1/agreements/tuojiang-test/statements/2025-07", auditor)
    assert {k: v for k, v in current.items() if k != "history"} == second
    assert [(h["id"], h["superseded_by"], h["transfers"]) for h in current["history"]] == [
        (S1, S2, [{"from": "CQ", "to": "SC", "amount": "1250000.00"}])]
    assert ok(client, "/v1/agreements/tuojiang-test/statements/2025-08", auditor)["history"] == []


# -- monitoring ----------------------------------------------------------------------------------


def test_monitoring_submissions_and_corrections(client, s):
    auditor, i = s["auditor"], s.ids
    listed = walk(client, "/v1/monitoring/submissions", auditor, 2)
    assert ids(listed) == [i["reference"], i["july"], i["august"], i["gc"], i["corrected"]]
    assert [(x["section"], x["submitted_by"], x["sample_count"], x["current"]) for x in listed] == [
        ("tj-1", "sc-monitor", 2, True), ("tj-1", "sc-monitor", 2, False), ("tj-1", "cq-monitor", 1, True),
        ("gc-1", "cq-monitor", 2, True), ("tj-1", "sc-monitor", 2, True)]
    assert [x["seq"] for x in listed] == sorted(x["seq"] for x in listed)
    assert ids(ok(client, "/v1/monitoring/submissions", auditor, current="true", section="tj-1")["items"]) == [
        i["reference"], i["august"], i["corrected"]]
    assert ids(ok(client, "/v1/monitoring/submissions", auditor, current="false")["items"]) == [i["july"]]
    assert ids(ok(client, "/v1/monitoring/submissions", auditor, section="gc-1")["items"]) == [i["gc"]]

    old = ok(client, f"/v1/monitoring/submissions/{i['july']}", auditor)
    assert (old["corrects"], old["superseded_by"], old["current"]) == (None, i["corrected"], False)
    assert old["samples"] == JULY and (old["first_date"], old["last_date"]) == ("2025-07-05", "2025-07-20")
    new = ok(client, f"/v1/monitoring/submissions/{i['corrected']}", auditor)
    assert (new["corrects"], new["superseded_by"], new["current"], new["samples"]) == (
        i["july"], None, True, JULY_CORRECTED)
    assert new["time"].endswith("Z")


# -- obligations and clearing --------------------------------------------------------------------


def test_obligation_summary_is_what_clearing_would_produce(app, client):
    s = build(app, cleared=False)
    auditor = s["auditor"]
    pairs = walk(client, "/v1/obligations/summary", auditor, 1)
    assert pairs == [
        {"pool": "compensation", "account_a": CQ_FIN, "account_b": SC_FIN, "a_owes_b": "1250000.00",
         "b_owes_a": "2650000.00", "obligations_a_to_b": 1, "obligations_b_to_a": 1, "payer": SC_FIN,
         "payee": CQ_FIN, "net": "1400000.00"},
        {"pool": "trade", "account_a": CQ_EXC, "account_b": SC_EXC, "a_owes_b": "2300.00", "b_owes_a": "500.00",
         "obligations_a_to_b": 2, "obligations_b_to_a": 1, "payer": CQ_EXC, "payee": SC_EXC, "net": "1800.00"}]
    assert ok(client, "/v1/obligations/summary", auditor, pool="trade")["items"] == pairs[1:]
    assert ok(client, "/v1/obligations/summary", s["sc-finance"])["items"] == pairs[:1]
    assert ok(client, "/v1/obligations/summary", s["cq-finance"], pool="trade")["items"] == []
    assert ok(client, "/v1/obligations/summary", s["sc-exchange"])["items"] == pairs[1:]
    assert ok(client, "/v1/obligations/summary", s["cq-exchange"], pool="compensation")["items"] == []
    for name in ("yn-finance", "sc-monitor", "sc-sthj"):
        assert ok(client, "/v1/obligations/summary", s[name])["items"] == []

    clear_and_confirm(app, s)
    runs = ok(client, "/v1/clearing/runs", auditor)["items"]
    # The runs produce exactly what the summary said.
    assert [(r["pool"], [(p["payer"], p["payee"], p["amount"]) for p in r["payments"]]) for r in runs] == [
        ("compensation", [(SC_FIN, CQ_FIN, "1400000.00")]), ("trade", [(CQ_EXC, SC_EXC, "1800.00")])]
    assert ok(client, "/v1/obligations/summary", auditor)["items"] == []


def test_clearing_runs_with_payments_confirmations_and_obligations(client, s):
    auditor, i = s["auditor"], s.ids
    runs = walk(client, "/v1/clearing/runs", auditor, 1)
    assert ids(runs) == [i["run_compensation"], i["run_trade"]]
    compensation, trade = runs
    assert (compensation["pool"], compensation["status"], compensation["settled_seq"],
            compensation["obligation_count"]) == ("compensation", "settled", s.seqs["settled"], 2)
    assert compensation["gross"] == [{"from": CQ_FIN, "to": SC_FIN, "amount": "1250000.00"},
                                     {"from": SC_FIN, "to": CQ_FIN, "amount": "2650000.00"}]
    assert compensation["payments"] == [{
        "id": f"{i['run_compensation']}-0", "payer": SC_FIN, "payee": CQ_FIN, "amount": "1400000.00",
        "payer_confirmed_by": "sc-finance", "payee_confirmed_by": "cq-finance", "waiting_for": [],
        "status": "settled", "settled_seq": s.seqs["settled"]}]
    assert (trade["pool"], trade["status"], trade["settled_seq"], trade["obligation_count"]) == (
        "trade", "pending", None, 3)
    assert trade["gross"] == [{"from": CQ_EXC, "to": SC_EXC, "amount": "2300.00"},
                              {"from": SC_EXC, "to": CQ_EXC, "amount": "500.00"}]
    assert trade["payments"] == [{
        "id": f"{i['run_trade']}-0", "payer": CQ_EXC, "payee": SC_EXC, "amount": "1800.00",
        "payer_confirmed_by": "cq-exchange", "payee_confirmed_by": None, "waiting_for": ["payee"],
        "status": "waiting", "settled_seq": None}]
    assert trade["cutoff"] == "2100-01-01T00:00:00.000000Z" and trade["time"].endswith("Z")

    assert ids(ok(client, "/v1/clearing/runs", auditor, status="pending")["items"]) == [i["run_trade"]]
    assert ids(ok(client, "/v1/clearing/runs", auditor, pool="compensation")["items"]) == [i["run_compensation"]]
    assert ok(client, "/v1/clearing/runs", auditor, pool="compensation", status="pending")["items"] == []

    detail = ok(client, f"/v1/clearing/runs/{i['run_trade']}", auditor)
    assert {k: v for k, v in detail.items() if k != "obligations"} == trade
    assert [(o["debtor"], o["creditor"], o["amount"], o["status"], o["clearing"]) for o in detail["obligations"]] == [
        (CQ_EXC, SC_EXC, "2000.00", "cleared", i["run_trade"]), (CQ_EXC, SC_EXC, "300.00", "cleared", i["run_trade"]),
        (SC_EXC, CQ_EXC, "500.00", "cleared", i["run_trade"])]
    settled = ok(client, f"/v1/clearing/runs/{i['run_compensation']}", auditor)
    assert [(o["amount"], o["status"]) for o in settled["obligations"]] == [
        ("1250000.00", "settled"), ("2650000.00", "settled")]
    # The CNY moved when the payee confirmed: CQ's treasury received 1,400,000.00.
    cq = ok(client, f"/v1/accounts/{CQ_FIN}", auditor)["balances"]
    assert [(b["asset"], b["total"]) for b in cq] == [("CNY", "1400000.00")]


def test_overdue_runs_are_those_pending_longer_than_the_setting(app, client, s, monkeypatch):
    auditor = s["auditor"]
    assert app.config["ECOLEDGER"].clearing_overdue_days == 5
    assert ok(client, "/v1/clearing/overdue", auditor) == {"items": [], "next": None}
    run = ok(client, f"/v1/clearing/runs/{s.ids['run_trade']}", auditor)
    appended = parse_time(run["time"])

    monkeypatch.setattr("api.compensation.views._now", lambda: appended + timedelta(days=5, seconds=-1))
    assert ok(client, "/v1/clearing/overdue", auditor)["items"] == []
    monkeypatch.setattr("api.compensation.views._now", lambda: appended + timedelta(days=6, hours=1))
    overdue = ok(client, "/v1/clearing/overdue", auditor)["items"]
    assert ids(overdue) == [s.ids["run_trade"]]  # the settled compensation run is never overdue
    assert overdue[0]["overdue_since"] == format_time(appended + timedelta(days=5))
    assert overdue[0]["days_pending"] == 6
    assert overdue[0]["payments"][0]["waiting_for"] == ["payee"]
    assert ok(client, "/v1/clearing/overdue", auditor, pool="compensation")["items"] == []
    assert ids(ok(client, "/v1/clearing/overdue", s["sc-exchange"])["items"]) == [s.ids["run_trade"]]
    assert ok(client, "/v1/clearing/overdue", s["sc-finance"])["items"] == []

    app.config["ECOLEDGER"] = replace(app.config["ECOLEDGER"], clearing_overdue_days=30)
    assert ok(client, "/v1/clearing/overdue", auditor)["items"] == []


# -- pagination ----------------------------------------------------------------------------------

LISTS = ["/v1/agreements", "/v1/agreements/tuojiang-test/statements", "/v1/monitoring/submissions",
         "/v1/clearing/runs"]


def test_pagination_walks_everything_exactly_once(app, client):
    s = build(app, cleared=False)
    auditor = s["auditor"]
    for url in LISTS + ["/v1/obligations/summary"]:
        everything = ok(client, url, auditor, limit=1000)
        assert everything["next"] is None
        for limit in (1, 2, 3, max(1, len(everything["items"]))):
            assert walk(client, url, auditor, limit) == everything["items"], (url, limit)
    assert len(ok(client, "/v1/obligations/summary", auditor, limit=1000)["items"]) == 2
    clear_and_confirm(app, s)
    for url in LISTS:
        everything = ok(client, url, auditor, limit=1000)["items"]
        assert len(everything) >= 2, url
        for limit in (1, 2, 3):
            assert walk(client, url, auditor, limit) == everything, (url, limit)
    # Rows added while walking are picked up on a later page.
    first = ok(client, "/v1/monitoring/submissions", auditor, limit=4)
    later = s.registry.result("cq-monitor", {"op": "monitoring.submit", "section": "tj-1", "samples": AUGUST})
    rest = walk(client, "/v1/monitoring/submissions", auditor, 1, cursor=first["next"])
    assert ids(rest) == [s.ids["corrected"], later["submission"]]


# -- scoping -------------------------------------------------------------------------------------


def test_finance_bureaus_read_what_their_province_is_a_party_to(client, s):
    sc, cq, i = s["sc-finance"], s["cq-finance"], s.ids
    assert ids(ok(client, "/v1/agreements", sc)["items"]) == ["tuojiang-test"]
    assert ids(ok(client, "/v1/agreements", cq)["items"]) == ["gz-cq", "tuojiang-test"]
    assert ids(ok(client, "/v1/agreements", s["gz-finance"])["items"]) == ["gz-cq"]
    problem(get(client, "/v1/agreements/gz-cq", sc), 404, "UNKNOWN_AGREEMENT")
    problem(get(client, "/v1/agreements/gz-cq/versions/1", sc), 404, "UNKNOWN_AGREEMENT")
    problem(get(client, "/v1/agreements/gz-cq/statements", sc), 404, "UNKNOWN_AGREEMENT")
    assert ok(client, "/v1/agreements/tuojiang-test", sc) == ok(client, "/v1/agreements/tuojiang-test", s["auditor"])

    for who in (sc, cq):
        assert ids(ok(client, "/v1/agreements/tuojiang-test/statements", who)["items"]) == [i["S1"], i["S2"], i["S3"]]
        assert ok(client, f"/v1/statements/{i['S2']}", who)["id"] == i["S2"]
        assert ids(ok(client, "/v1/clearing/runs", who)["items"]) == [i["run_compensation"]]
        problem(get(client, f"/v1/clearing/runs/{i['run_trade']}", who), 404, "UNKNOWN_CLEARING_RUN")
    assert ids(ok(client, "/v1/monitoring/submissions", sc)["items"]) == [
        i["reference"], i["july"], i["august"], i["corrected"]]
    assert ids(ok(client, "/v1/monitoring/submissions", cq)["items"]) == [
        i["reference"], i["july"], i["august"], i["gc"], i["corrected"]]
    problem(get(client, f"/v1/monitoring/submissions/{i['gc']}", sc), 404, "UNKNOWN_SUBMISSION")
    assert ok(client, f"/v1/monitoring/submissions/{i['gc']}", s["gz-finance"])["section"] == "gc-1"


def test_a_third_province_and_an_issuer_see_nothing(client, s):
    i = s.ids
    for name in ("yn-finance", "sc-sthj", "cq-sthj"):
        who = s[name]
        for url in LISTS[:1] + LISTS[2:] + ["/v1/obligations/summary", "/v1/clearing/overdue"]:
            assert ok(client, url, who) == {"items": [], "next": None}, (name, url)
        for url, code in [("/v1/agreements/tuojiang-test", "UNKNOWN_AGREEMENT"),
                          ("/v1/agreements/tuojiang-test/versions/1", "UNKNOWN_AGREEMENT"),
                          ("/v1/agreements/tuojiang-test/statements", "UNKNOWN_AGREEMENT"),
                          ("/v1/agreements/tuojiang-test/statements/2025-07", "UNKNOWN_AGREEMENT"),
                          (f"/v1/statements/{i['S1']}", "UNKNOWN_STATEMENT"),
                          (f"/v1/monitoring/submissions/{i['july']}", "UNKNOWN_SUBMISSION"),
                          (f"/v1/clearing/runs/{i['run_trade']}", "UNKNOWN_CLEARING_RUN"),
                          (f"/v1/clearing/runs/{i['run_compensation']}", "UNKNOWN_CLEARING_RUN")]:
            problem(get(client, url, who), 404, code)
    # Hidden is exactly as unknown as missing.
    hidden = problem(get(client, f"/v1/statements/{i['S1']}", s["yn-finance"]), 404, "UNKNOWN_STATEMENT")
    missing = problem(get(client, "/v1/statements/S-99999-0", s["yn-finance"]), 404, "UNKNOWN_STATEMENT")
    assert hidden["detail"].replace(i["S1"], "X") == missing["detail"].replace("S-99999-0", "X")


def test_operators_read_the_trade_pool_where_their_exchange_is_a_side(client, s):
    sc, i = s["sc-exchange"], s.ids
    runs = ok(client, "/v1/clearing/runs", sc)["items"]
    assert ids(runs) == [i["run_trade"]]
    assert runs[0] == ok(client, "/v1/clearing/runs", s["auditor"], pool="trade")["items"][0]
    assert ok(client, f"/v1/clearing/runs/{i['run_trade']}", s["cq-exchange"])["obligation_count"] == 3
    problem(get(client, f"/v1/clearing/runs/{i['run_compensation']}", sc), 404, "UNKNOWN_CLEARING_RUN")
    assert ok(client, "/v1/clearing/runs", sc, pool="compensation")["items"] == []
    assert ok(client, "/v1/agreements", sc)["items"] == []
    assert ok(client, "/v1/monitoring/submissions", sc)["items"] == []
    problem(get(client, "/v1/agreements/tuojiang-test/statements", sc), 404, "UNKNOWN_AGREEMENT")
    problem(get(client, f"/v1/statements/{i['S2']}", sc), 404, "UNKNOWN_STATEMENT")
    # A third province's exchange is a side of no run.
    gz = s.registry.principal("gz-exchange", "operator", "GZ")
    assert ok(client, "/v1/clearing/runs", gz)["items"] == []
    problem(get(client, f"/v1/clearing/runs/{i['run_trade']}", gz), 404, "UNKNOWN_CLEARING_RUN")


def test_monitors_read_the_agreements_and_data_of_their_sections(client, s):
    sc, cq, i = s["sc-monitor"], s["cq-monitor"], s.ids
    assert ids(ok(client, "/v1/agreements", sc)["items"]) == ["tuojiang-test"]
    assert ids(ok(client, "/v1/agreements", cq)["items"]) == ["gz-cq", "tuojiang-test"]
    assert ok(client, "/v1/agreements/tuojiang-test/versions/1", sc)["document"] == DOCUMENT
    problem(get(client, "/v1/agreements/gz-cq", sc), 404, "UNKNOWN_AGREEMENT")
    assert ids(ok(client, "/v1/monitoring/submissions", sc)["items"]) == [
        i["reference"], i["july"], i["august"], i["corrected"]]
    assert ids(ok(client, "/v1/monitoring/submissions", cq, section="gc-1")["items"]) == [i["gc"]]
    assert ok(client, "/v1/monitoring/submissions", sc, section="gc-1")["items"] == []
    problem(get(client, f"/v1/monitoring/submissions/{i['gc']}", sc), 404, "UNKNOWN_SUBMISSION")
    assert ok(client, f"/v1/monitoring/submissions/{i['july']}", cq)["superseded_by"] == i["corrected"]
    # No statements, obligations or clearing for monitors.
    assert ok(client, "/v1/agreements/tuojiang-test/statements", sc)["items"] == []
    problem(get(client, "/v1/agreements/tuojiang-test/statements/2025-07", sc), 404, "UNKNOWN_STATEMENT")
    problem(get(client, f"/v1/statements/{i['S1']}", sc), 404, "UNKNOWN_STATEMENT")
    assert ok(client, "/v1/clearing/runs", sc)["items"] == []
    assert ok(client, "/v1/obligations/summary", cq)["items"] == []


# -- authentication, parameters, unknown ids -------------------------------------------------------

READS = ["/v1/agreements", "/v1/agreements/x", "/v1/agreements/x/versions/1", "/v1/agreements/x/statements",
         "/v1/agreements/x/statements/2025-07", "/v1/statements/x", "/v1/monitoring/submissions",
         "/v1/monitoring/submissions/x", "/v1/obligations/summary", "/v1/clearing/runs", "/v1/clearing/runs/x",
         "/v1/clearing/overdue"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer ecl_not-a-token"},
                                     {"Authorization": "Basic YWRtaW46YWRtaW4="}])
def test_every_read_needs_a_valid_token(client, headers):
    for url in READS:
        problem(client.get(url, headers=headers), 401, "UNAUTHENTICATED")
    problem(client.get("/v1/clearing/runs?limit=0&bogus=1", headers=headers), 401, "UNAUTHENTICATED")


def test_bad_parameters_are_400_problems(app, client):
    s = build(app, cleared=False)
    auditor = s["auditor"]
    statements = ok(client, "/v1/agreements/tuojiang-test/statements", auditor, limit=1)["next"]
    agreements = ok(client, "/v1/agreements", auditor, limit=1)["next"]
    cases = [
        ("/v1/agreements", {"limit": "0"}), ("/v1/agreements", {"limit": "1001"}), ("/v1/agreements", {"cursor": "%%"}),
        ("/v1/agreements", {"cursor": statements}), ("/v1/agreements", {"status": "signed"}),
        ("/v1/agreements", {"party": "sc"}), ("/v1/agreements", {"parti": "SC"}),
        ("/v1/agreements/tuojiang-test/statements", {"period": "2025-13"}),
        ("/v1/agreements/tuojiang-test/statements", {"current": "maybe"}),
        ("/v1/agreements/tuojiang-test/statements", {"cursor": agreements}),
        ("/v1/monitoring/submissions", {"section": "a b"}), ("/v1/monitoring/submissions", {"current": "2"}),
        ("/v1/monitoring/submissions", {"cursor": statements}),
        ("/v1/obligations/summary", {"pool": "cash"}), ("/v1/obligations/summary", {"cursor": statements}),
        ("/v1/obligations/summary", {"limit": "-1"}),
        ("/v1/clearing/runs", {"status": "open"}), ("/v1/clearing/runs", {"pool": "Trade"}),
        ("/v1/clearing/overdue", {"days": "3"}), ("/v1/clearing/overdue", {"limit": "x"}),
        ("/v1/agreements/tuojiang-test/versions/abc", {}), ("/v1/agreements/tuojiang-test/versions/0", {}),
        ("/v1/agreements/tuojiang-test/versions/" + "9" * 30, {}),
        ("/v1/agreements/tuojiang-test/statements/2025", {}),  # a monthly agreement
        ("/v1/agreements/tuojiang-test/statements/July", {}),
    ]
    for url, params in cases:
        body = problem(get(client, url, auditor, **params), 400, "INVALID_PARAMETER")
        assert body["detail"], (url, params)


def test_unknown_ids_are_404_problems(client, s):
    auditor = s["auditor"]
    for url, code in [
        ("/v1/agreements/nowhere", "UNKNOWN_AGREEMENT"), ("/v1/agreements/" + quote("\x00"), "UNKNOWN_AGREEMENT"),
        ("/v1/agreements/" + "a" * 500, "UNKNOWN_AGREEMENT"),
        ("/v1/agreements/tuojiang-test/versions/3", "UNKNOWN_AGREEMENT"),
        ("/v1/agreements/nowhere/statements", "UNKNOWN_AGREEMENT"),
        ("/v1/agreements/tuojiang-test/statements/2025-09", "UNKNOWN_STATEMENT"),
        ("/v1/statements/S-99999-0", "UNKNOWN_STATEMENT"), ("/v1/statements/" + quote("S\x00"), "UNKNOWN_STATEMENT"),
        ("/v1/monitoring/submissions/M-99999-0", "UNKNOWN_SUBMISSION"),
        ("/v1/clearing/runs/C-99999-0", "UNKNOWN_CLEARING_RUN"),
        ("/v1/clearing/runs/" + quote("重庆"), "UNKNOWN_CLEARING_RUN"),
    ]:
        problem(client.get(url, headers=auditor.headers), 404, code)


def test_openapi_documents_every_read(client):
    spec = client.get("/v1/openapi.json").get_json()
    paths = spec["paths"]
    for path in ("/v1/agreements", "/v1/agreements/{agreement_id}", "/v1/agreements/{agreement_id}/versions/{version}",
                 "/v1/agreements/{agreement_id}/statements", "/v1/agreements/{agreement_id}/statements/{period}",
                 "/v1/statements/{statement_id}", "/v1/monitoring/submissions",
                 "/v1/monitoring/submissions/{submission_id}", "/v1/obligations/summary", "/v1/clearing/runs",
                 "/v1/clearing/runs/{run_id}", "/v1/clearing/overdue"):
        responses = paths[path]["get"]["responses"]
        assert "200" in responses and "401" in responses, path
        assert "$ref" in json.dumps(responses["200"]), path
    schemas = spec["components"]["schemas"]
    for name, field in [("ObligationPair", "net"), ("ObligationPair", "a_owes_b"), ("Payment", "amount"),
                        ("Gross", "amount"), ("Transfer", "amount"), ("SectionOutcome", "amount")]:
        assert schemas[name]["properties"][field]["type"] == "string", (name, field)
    assert set(schemas["RunPage"]["properties"]) == {"items", "next"}
    parameters = {p["name"]: p for p in paths["/v1/clearing/runs"]["get"]["parameters"]}
    assert parameters["limit"]["schema"]["maximum"] == 1000 and {"cursor", "pool", "status"} <= set(parameters)
    assert {"status", "party"} <= {p["name"] for p in paths["/v1/agreements"]["get"]["parameters"]}
    assert "404" in paths["/v1/statements/{statement_id}"]["get"]["responses"]
    assert "400" in paths["/v1/obligations/summary"]["get"]["responses"]

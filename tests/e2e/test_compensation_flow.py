"""Watershed compensation end to end (specs/agreements.md §1–§5) on the real server.

``ecoledger serve`` under gunicorn (2 workers) on SQLite and on PostgreSQL; principals made with
``ecoledger principal add … --json``; every command signed and sent over HTTP; statements computed
by ``ecoledger jobs run settlement`` (and ``ecoledger settle run``) in subprocesses on the same
ledger; figures checked by hand and against ``ecoledger settle preview`` (no server); and the log
replayed from entry 0 by the auditor's ``apply_audited`` into a fresh database.

The agreement has two cross-border sections of two rivers that flow in opposite directions, so the
two sections' amounts net against each other:

* ``qj-guanghui`` 光辉断面 on the 琼江: Sichuan upstream, Chongqing downstream — a positive amount
  means CQ pays SC;
* ``lx-gaodong`` 高洞电站断面 on the 濑溪河: Chongqing upstream, Sichuan downstream — a positive
  amount means SC pays CQ.

Rules (both sections): ``class_target`` III with met_improved +1,000,000, met_same 0,
met_declined −1,000,000, missed −2,000,000; and ``index_change`` 50,000 per whole point, cap
400,000. Class III limits (river): CODMn 6, NH3N 1.0, TP 0.2, so I = CODMn/6 + NH3N/1 + TP/0.2.
"""

import base64
import copy
import hashlib
import json
import random
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
import rfc8785

from ledger.projections import Agreement, AgreementSignature, MonitoringSubmission, Obligation, Statement
from support.server import LedgerServer, ecoledger_command, ledger_env
from support.world import ENGINES, ORIGIN, World, database

pytestmark = pytest.mark.slow

QJ, LX = "qj-guanghui", "lx-gaodong"
SC_FIN, CQ_FIN = "SC:FIN:treasury", "CQ:FIN:treasury"

AGREEMENT = {
    "id": "chuanyu-two-rivers",
    "version": 1,
    "title": "川渝跨界河流横向生态保护补偿协议（琼江、濑溪河）",
    "parties": [
        {"id": "SC", "name": "四川省", "account": SC_FIN},
        {"id": "CQ", "name": "重庆市", "account": CQ_FIN},
    ],
    "sections": [
        {"id": QJ, "name": "光辉断面", "river": "琼江", "water_body": "river",
         "upstream": ["SC"], "downstream": ["CQ"]},
        {"id": LX, "name": "高洞电站断面", "river": "濑溪河", "water_body": "river",
         "upstream": ["CQ"], "downstream": ["SC"]},
    ],
    "indicators": ["CODMn", "NH3N", "TP"],
    "period": "month",
    "term": {"from": "2025-01-01", "to": "2025-12-31"},
    "rules": [
        {"type": "class_target", "target_class": 3,
         "amounts": {"met_improved": "1000000", "met_same": "0", "met_declined": "-1000000", "missed": "-2000000"}},
        {"type": "index_change", "amount_per_point": "50000", "cap": "400000", "points": "whole"},
    ],
    "responsibilities": "四川省负责琼江上游治理，重庆市负责濑溪河上游治理。",
    "breach": "逾期拨付的，按日万分之五计收违约金。",
}
PERIODS = [f"2025-{month:02d}" for month in range(1, 13)]
INDICATORS = ("CODMn", "NH3N", "TP")


def digest_of(document: dict) -> str:
    """base64 SHA-256 of JCS(document), computed here with rfc8785 (not the project's encoder)."""
    return base64.b64encode(hashlib.sha256(rfc8785.dumps(document)).digest()).decode()


# -- the monitoring data ---------------------------------------------------------------------------
#
# Hand-computed months: (CODMn, NH3N, TP) period means of 2025 and of the same month of 2024.
# Each mean m is sampled twice, on the 5th (0.75·m) and the 20th (1.25·m), so the mean is m exactly.
HAND = {
    (QJ, "2025-03"): ("4.5", "0.6", "0.12"), (QJ, "2024-03"): ("4.2", "0.6", "0.12"),
    (LX, "2025-03"): ("2.4", "0.3", "0.05"), (LX, "2024-03"): ("6.0", "1.0", "0.2"),
    (QJ, "2025-05"): ("3.2", "0.48", "0.09"), (QJ, "2024-05"): ("3.6", "0.5", "0.1"),
    (LX, "2025-05"): ("3.0", "0.4", None), (LX, "2024-05"): ("3.0", "0.4", "0.1"),  # no TP in May 2025
    (QJ, "2025-07"): ("3.2", "0.48", "0.09"), (QJ, "2024-07"): ("3.6", "0.5", "0.1"),
    (LX, "2025-07"): ("7.0", "0.8", "0.15"), (LX, "2024-07"): ("6.0", "0.8", "0.15"),
    (QJ, "2025-09"): ("3.2", "0.48", "0.09"), (QJ, "2024-09"): ("3.6", "0.5", "0.1"),
    (LX, "2025-09"): ("1.83", "0.3", "0.07"), (LX, "2024-09"): ("1.8", "0.3", "0.08"),
    (QJ, "2025-11"): ("3.2", "0.48", "0.09"), (QJ, "2024-11"): ("3.6", "0.5", "0.1"),
    (LX, "2025-11"): ("2.4", "0.3", "0.05"), (LX, "2024-11"): ("6.0", "1.0", "0.2"),
    (QJ, "2025-12"): ("3.2", "0.48", "0.09"), (QJ, "2024-12"): ("3.6", "0.5", "0.1"),
    (LX, "2025-12"): ("3.0", "0.5", "0.1"), (LX, "2024-12"): ("3.0", "0.5", "0.1"),
}
DECEMBER_CORRECTED = ("6.4", "0.48", "0.09")
"""The corrected December 2025 means of 光辉断面 (CODMn was mis-keyed: 3.2 → 6.4)."""

NO_REFERENCE = {(LX, "2024-01")}
"""高洞电站断面 has no data for January 2024: January 2025 has no reference period."""


def hand_samples(month: str, means: tuple[str | None, ...]) -> list[dict]:
    samples = []
    for day, factor in (("05", Decimal("0.75")), ("20", Decimal("1.25"))):
        values = {i: str(Decimal(m) * factor) for i, m in zip(INDICATORS, means) if m is not None}
        samples.append({"date": f"{month}-{day}", "values": values})
    return samples


def random_samples(rng: random.Random, month: str) -> list[dict]:
    """Three samples a month with three decimals each: means with repeating decimals (x/3)."""
    return [{"date": f"{month}-{day}", "values": {
        "CODMn": f"{rng.uniform(1.5, 8.5):.3f}", "NH3N": f"{rng.uniform(0.1, 1.4):.3f}",
        "TP": f"{rng.uniform(0.02, 0.26):.3f}"}} for day in ("04", "14", "24")]


def month_samples(section: str, month: str, rng: random.Random) -> list[dict]:
    if (section, month) in HAND:
        return hand_samples(month, HAND[section, month])
    return random_samples(rng, month)


def monitoring_plan() -> tuple[dict[str, list[dict]], dict[tuple[str, str], list[dict]]]:
    """The reference year 2024 as one submission per section; 2025 as one per section and month."""
    rng = random.Random(20250101)
    reference, monthly = {}, {}
    for section in (QJ, LX):
        reference[section] = [s for month in (f"2024-{m:02d}" for m in range(1, 13))
                              if (section, month) not in NO_REFERENCE
                              for s in month_samples(section, month, rng)]
        for month in PERIODS:
            monthly[section, month] = month_samples(section, month, rng)
    return reference, monthly


# -- the ledger --------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=ENGINES)
def world(request, tmp_path_factory):
    """The real server on a fresh database, settlements due at once (no grace days), with
    finance bureaus of SC and CQ and a Sichuan monitoring station made with the real CLI;
    plus a Guizhou bureau and station, parties to nothing here, for the refusals."""
    directory = tmp_path_factory.mktemp("compensation")
    with database(request.param, directory) as url:
        server = LedgerServer.start(home=directory / "home", database_url=url, origin=ORIGIN, workers=2,
                                    extra_env={"ECOLEDGER_SETTLEMENT_GRACE_DAYS": "0"})
        world = World(server, engine=request.param)
        try:
            for name, role, province in (("sc-finance", "finance", "SC"), ("cq-finance", "finance", "CQ"),
                                         ("sc-monitor", "monitor", "SC"), ("gz-finance", "finance", "GZ"),
                                         ("gz-monitor", "monitor", "GZ")):
                world.add_principal(name, role, province)
            yield world
        finally:
            world.close()
            server.stop()
            print(server.output())


def statements_in_log(world: World, agreement: str, start: int = 0) -> list[tuple[int, dict]]:
    """(seq, settlement.statement op) of ``agreement``, read from GET /v1/log/entries."""
    found = []
    for item in world.entries(start):
        command = item["entry"]["command"]
        for op in command["ops"]:
            if command["actor"] == "ledger" and op["op"] == "settlement.statement" and op["agreement"] == agreement:
                found.append((item["seq"], op))
    return found


def current_statements(world: World, agreement: str) -> dict[str, tuple[int, dict]]:
    """The latest statement of every period, by period, from the log."""
    latest = {}
    for seq, op in statements_in_log(world, agreement):
        latest[op["period"]] = (seq, op)
    return latest


def preview_many(directory: Path, document: dict, bodies: list[dict], periods: list[str]) -> dict[str, dict]:
    """``ecoledger settle preview --json`` for each period, as subprocesses (run side by side),
    in an environment that names no ledger: it needs no server and no database."""
    directory.mkdir(parents=True, exist_ok=True)
    agreement_file, monitoring_file = directory / "agreement.json", directory / "monitoring.json"
    agreement_file.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    monitoring_file.write_text(json.dumps(bodies, ensure_ascii=False), encoding="utf-8")
    env = ledger_env(home=directory / "no-home", database_url="postgresql://nobody@127.0.0.1:1/none")
    processes = {period: subprocess.Popen(
        [*ecoledger_command(), "settle", "preview", "--agreement", str(agreement_file), "--monitoring",
         str(monitoring_file), "--period", period, "--json"], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for period in periods}
    results = {}
    for period, process in processes.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, f"settle preview {period} failed: {err}"
        results[period] = json.loads(out)
    assert not (directory / "no-home").exists(), "settle preview touched a ledger home"
    return results


def transfers(statement: dict) -> list[tuple[str, str, str]]:
    return [(t["from"], t["to"], t["amount"]) for t in statement["transfers"]]


def section_of(statement: dict, section: str) -> dict:
    return next(s for s in statement["sections"] if s["section"] == section)


def rule_amounts(statement: dict, section: str) -> list[tuple[str, str]]:
    return [(r["type"], r["amount"]) for r in section_of(statement, section)["rules"]]


def obligations_of(world: World, seq: int) -> list[tuple[str, str, int]]:
    rows = world.rows(Obligation, Obligation.source_seq == seq)
    assert all(row.pool == "compensation" and row.status == "open" for row in rows), rows
    return sorted((row.debtor, row.creditor, row.amount) for row in rows)


# -- the flow --------------------------------------------------------------------------------------


def test_agreement_monitoring_settlement_correction_and_replay(world, tmp_path):
    agreement_id = AGREEMENT["id"]
    digest = digest_of(AGREEMENT)

    # -- the agreement: proposed by Sichuan (its signature), signed by Chongqing ------------------
    proposed = world.ok("sc-finance", {"op": "agreement.propose", "document": AGREEMENT})
    assert proposed["results"] == [{"agreement": agreement_id, "version": 1, "digest": digest, "status": "proposed"}]
    signed = world.ok("cq-finance", {"op": "agreement.sign", "agreement": agreement_id, "version": 1,
                                     "digest": digest})
    assert signed["results"] == [{"agreement": agreement_id, "version": 1, "status": "active"}]
    row = world.get(Agreement, (agreement_id, 1))
    assert (row.status, row.digest, row.activated_seq, row.proposed_seq) == (
        "active", digest, signed["seq"], proposed["seq"])
    assert json.loads(row.document) == AGREEMENT
    signatures = world.rows(AgreementSignature, AgreementSignature.agreement == agreement_id)
    assert sorted((s.party, s.principal, s.seq) for s in signatures) == [
        ("CQ", "cq-finance", signed["seq"]), ("SC", "sc-finance", proposed["seq"])]

    # -- a year of monthly samples for both sections, and the reference year ------------------
    reference, monthly = monitoring_plan()
    submission_of: dict[tuple[str, str], str] = {}
    for section in (QJ, LX):
        answer = world.ok("sc-monitor", {"op": "monitoring.submit", "section": section,
                                         "samples": reference[section]})
        assert answer["results"][0]["section"] == section
    for month in PERIODS:
        for section in (QJ, LX):
            answer = world.ok("sc-monitor", {"op": "monitoring.submit", "section": section,
                                             "samples": monthly[section, month]})
            assert answer["results"][0]["samples"] == len(monthly[section, month])
            submission_of[section, month] = answer["results"][0]["submission"]

    # -- a statement asked for early over HTTP: appended right after the request ------------------
    size = world.log_size()
    requested = world.ok("cq-finance", {"op": "settlement.request", "agreement": agreement_id, "period": "2025-11"})
    assert requested["results"] == [{"agreement": agreement_id, "version": 1, "period": "2025-11"}]
    assert world.log_size() == size + 2, "the request and its statement, in one transaction"
    [(statement_seq, _)] = statements_in_log(world, agreement_id, start=requested["seq"])
    assert statement_seq == requested["seq"] + 1

    # -- the settlement job computes every other statement ----------------------------------------
    before_job = world.log_size()
    output = world.server.cli("jobs", "run", "settlement")
    settled_lines = [line for line in output.splitlines() if line.startswith(f"settled {agreement_id} ")]
    assert len(settled_lines) == 11, output
    latest = current_statements(world, agreement_id)
    assert sorted(latest) == PERIODS
    assert world.log_size() == before_job + 11
    statements = {period: op["statement"] for period, (_, op) in latest.items()}
    for period, (seq, op) in latest.items():
        assert op["supersedes"] is None and op["version"] == 1
        assert op["statement"]["digest"] == digest
        assert op["statement"]["agreement"] == agreement_id and op["statement"]["period"] == period
        # Each transfer became an obligation between the FIN accounts, and nothing else did.
        accounts = {"SC": SC_FIN, "CQ": CQ_FIN}
        assert obligations_of(world, seq) == sorted(
            (accounts[t["from"]], accounts[t["to"]], int(Decimal(t["amount"]) * 100))
            for t in op["statement"]["transfers"])
        assert op["obligations"] == op["statement"]["transfers"]
        for transfer in op["statement"]["transfers"]:
            assert Decimal(transfer["amount"]) > 0 and transfer["amount"] == f"{Decimal(transfer['amount']):.2f}"
    # The projection rows hold the statements as appended.
    rows = {row.period: row for row in world.rows(Statement, Statement.agreement == agreement_id)}
    assert sorted(rows) == PERIODS
    for period, row in rows.items():
        assert (row.seq, row.supersedes, row.superseded_by) == (latest[period][0], None, None)
        assert json.loads(row.body) == statements[period]

    # -- by hand -----------------------------------------------------------------------------------
    # March 2025.
    #   光辉 (SC↑ CQ↓): means CODMn 4.5 (III, ≤6), NH3N 0.6 (III, ≤1.0), TP 0.12 (III, ≤0.2) → class III, met.
    #     I = 4.5/6 + 0.6/1.0 + 0.12/0.2 = 0.75 + 0.6 + 0.6 = 1.95; March 2024: 4.2/6 + 0.6 + 0.6 = 1.9.
    #     1.95 > 1.9 → met_declined −1,000,000.
    #     Δ = (1.95 − 1.9)/1.9 × 100 = 2.6315… → 2 whole points → −2 × 50,000 = −100,000.
    #     Section: −1,100,000 → upstream SC pays downstream CQ 1,100,000.
    #   高洞 (CQ↑ SC↓): CODMn 2.4 (II), NH3N 0.3 (II), TP 0.05 (II) → class II, met.
    #     I = 0.4 + 0.3 + 0.25 = 0.95; March 2024: 6/6 + 1.0 + 0.2/0.2 = 3 → improved +1,000,000.
    #     Δ = (0.95 − 3)/3 × 100 = −68.33… → −68 points → +3,400,000, capped at +400,000.
    #     Section: +1,400,000 → downstream SC pays upstream CQ 1,400,000.
    #   Net: SC pays CQ 1,100,000 + 1,400,000 = 2,500,000.00.
    march = statements["2025-03"]
    assert section_of(march, QJ)["class"] == 3 and section_of(march, LX)["class"] == 2
    assert Decimal(section_of(march, QJ)["index"]) == Decimal("1.95")
    assert Decimal(section_of(march, QJ)["reference_index"]) == Decimal("1.9")
    assert rule_amounts(march, QJ) == [("class_target", "-1000000.00"), ("index_change", "-100000.00")]
    assert rule_amounts(march, LX) == [("class_target", "1000000.00"), ("index_change", "400000.00")]
    assert "capped at 400000.00" in section_of(march, LX)["rules"][1]["reason"]
    assert transfers(march) == [("SC", "CQ", "2500000.00")]
    assert obligations_of(world, latest["2025-03"][0]) == [(SC_FIN, CQ_FIN, 250_000_000)]

    # May 2025.
    #   光辉: CODMn 3.2 (II, ≤4), NH3N 0.48 (II, ≤0.5), TP 0.09 (II, ≤0.1) → class II, met.
    #     I = 3.2/6 + 0.48 + 0.09/0.2 = 0.5333… + 0.48 + 0.45 = 1.4633…; May 2024: 3.6/6 + 0.5 + 0.5 = 1.6.
    #     improved → +1,000,000. Δ = (1.4633… − 1.6)/1.6 × 100 = −8.5416… → −8 points → +400,000,
    #     exactly the cap (not capped). Section +1,400,000 → CQ pays SC.
    #   高洞: no TP sample in May 2025 → cannot be settled, nothing owed.
    #   Net: CQ pays SC 1,400,000.00.
    may = statements["2025-05"]
    assert rule_amounts(may, QJ) == [("class_target", "1000000.00"), ("index_change", "400000.00")]
    assert "capped" not in section_of(may, QJ)["rules"][1]["reason"]
    gaodong = section_of(may, LX)
    assert (gaodong["status"], gaodong["missing"], gaodong["amount"], gaodong["rules"]) == (
        "unsettled", ["TP"], "0.00", [])
    assert "TP" in gaodong["reason"]
    assert transfers(may) == [("CQ", "SC", "1400000.00")]
    assert obligations_of(world, latest["2025-05"][0]) == [(CQ_FIN, SC_FIN, 140_000_000)]

    # July 2025.
    #   光辉: as in May → +1,400,000 (CQ pays SC).
    #   高洞: CODMn 7.0 (IV, ≤10) → class IV misses III → −2,000,000.
    #     I = 7/6 + 0.8 + 0.15/0.2 = 1.1666… + 0.8 + 0.75 = 2.7166…; July 2024: 1 + 0.8 + 0.75 = 2.55.
    #     Δ = 0.1666…/2.55 × 100 = 6.5359… → 6 points → −300,000. Section −2,300,000 → upstream CQ
    #     pays downstream SC 2,300,000.
    #   Net: CQ pays SC 1,400,000 + 2,300,000 = 3,700,000.00.
    july = statements["2025-07"]
    assert section_of(july, LX)["classes"] == {"CODMn": 4, "NH3N": 3, "TP": 3}
    assert rule_amounts(july, LX) == [("class_target", "-2000000.00"), ("index_change", "-300000.00")]
    assert transfers(july) == [("CQ", "SC", "3700000.00")]

    # September 2025.
    #   光辉: +1,400,000 (CQ pays SC).
    #   高洞: CODMn 1.83 (I, ≤2), NH3N 0.3 (II), TP 0.07 (II) → class II, met.
    #     I = 1.83/6 + 0.3 + 0.07/0.2 = 0.305 + 0.3 + 0.35 = 0.955; Sept 2024: 0.3 + 0.3 + 0.4 = 1.0.
    #     improved +1,000,000; Δ = −4.5 → −4 points (toward zero) → +200,000. Section +1,200,000
    #     → SC pays CQ.
    #   Net: CQ pays SC 1,400,000 − 1,200,000 = 200,000.00.
    september = statements["2025-09"]
    assert section_of(september, LX)["classes"] == {"CODMn": 1, "NH3N": 2, "TP": 2}
    assert Decimal(section_of(september, LX)["index"]) == Decimal("0.955")
    assert rule_amounts(september, LX) == [("class_target", "1000000.00"), ("index_change", "200000.00")]
    assert transfers(september) == [("CQ", "SC", "200000.00")]
    assert obligations_of(world, latest["2025-09"][0]) == [(CQ_FIN, SC_FIN, 20_000_000)]

    # November 2025 (the one asked for over HTTP): 光辉 +1,400,000 (CQ pays SC) and 高洞 as in
    # March +1,400,000 (SC pays CQ) → they cancel: no transfer and no obligation.
    november = statements["2025-11"]
    assert section_of(november, QJ)["amount"] == "1400000.00" and section_of(november, LX)["amount"] == "1400000.00"
    assert transfers(november) == []
    assert obligations_of(world, latest["2025-11"][0]) == []

    # December 2025: 光辉 +1,400,000; 高洞 CODMn 3.0 (II), NH3N 0.5 (II: the limit is inclusive),
    # TP 0.1 (II, inclusive) → met; I = 0.5 + 0.5 + 0.5 = 1.5 = I_ref → met_same 0, Δ 0 → 0.
    # Net: CQ pays SC 1,400,000.00.
    december = statements["2025-12"]
    assert section_of(december, LX)["classes"] == {"CODMn": 2, "NH3N": 2, "TP": 2}
    assert rule_amounts(december, LX) == [("class_target", "0.00"), ("index_change", "0.00")]
    assert transfers(december) == [("CQ", "SC", "1400000.00")]

    # January 2025: 高洞 has no January 2024 data: "no reference data counts as same" and the
    # index change is 0, said so.
    january = section_of(statements["2025-01"], LX)
    assert january["reference_index"] is None
    assert january["rules"][1] == {"type": "index_change", "amount": "0.00", "reason": "no reference data: amount 0"}
    if january["class"] <= 3:
        assert january["rules"][0]["amount"] == "0.00" and "no reference data" in january["rules"][0]["reason"]

    # -- the same figures offline: ecoledger settle preview on the same inputs ---------------------
    bodies = ([{"section": s, "samples": reference[s]} for s in (QJ, LX)]
              + [{"section": s, "samples": monthly[s, m]} for m in PERIODS for s in (QJ, LX)])
    previews = preview_many(tmp_path / "preview", AGREEMENT, bodies, PERIODS)
    for period in PERIODS:
        served = {k: v for k, v in statements[period].items() if k != "submissions"}
        assert served == previews[period], f"{period}: the server's statement differs from settle preview"

    # -- the same job again appends nothing --------------------------------------------------------
    size = world.log_size()
    world.server.cli("settle", "run")
    world.server.cli("jobs", "run", "settlement")
    out = world.server.cli("settle", "run", "--agreement", agreement_id, "--period", "2025-07")
    assert "nothing appended" in out
    again = world.ok("sc-finance", {"op": "settlement.request", "agreement": agreement_id, "period": "2025-07"})
    assert again["seq"] == size and world.log_size() == size + 1, "only the request; no second statement"

    # -- a correction of December's 光辉 submission ----------------------------------------------
    before_entries = world.entries()
    n = len(before_entries)
    old_seq, _ = latest["2025-12"]
    old_statement = world.rows(Statement, Statement.seq == old_seq)[0]
    corrected_samples = hand_samples("2025-12", DECEMBER_CORRECTED)
    corrected = world.ok("sc-monitor", {"op": "monitoring.correct", "submission": submission_of[QJ, "2025-12"],
                                        "samples": corrected_samples})
    new_submission = corrected["results"][0]["submission"]
    assert corrected["results"] == [{"submission": new_submission, "corrects": submission_of[QJ, "2025-12"],
                                     "section": QJ}]
    assert world.get(MonitoringSubmission, submission_of[QJ, "2025-12"]).superseded_by == new_submission

    output = world.server.cli("jobs", "run", "settlement")
    assert world.log_size() == n + 2, f"the correction and exactly one statement: {output}"
    [(new_seq, new_op)] = statements_in_log(world, agreement_id, start=n)
    assert new_seq == n + 1 and new_op["period"] == "2025-12"
    assert new_op["supersedes"] == old_statement.id
    new = new_op["statement"]
    assert corrected["seq"] in new["submissions"] and old_statement.seq not in new["submissions"]
    # By hand, December 2025 corrected:
    #   光辉: CODMn 6.4 (IV: > 6, ≤ 10) → missed → −2,000,000.
    #     I = 6.4/6 + 0.48 + 0.45 = 1.0666… + 0.93 = 1.9966…; I_ref 1.6.
    #     Δ = 0.3966…/1.6 × 100 = 24.79… → 24 points → −1,200,000, capped at −400,000.
    #     Section −2,400,000 → upstream SC pays downstream CQ 2,400,000.
    #   高洞 unchanged: 0.
    #   New transfers: SC pays CQ 2,400,000.00 (the old statement: CQ pays SC 1,400,000.00).
    #   The difference: SC → CQ 2,400,000 + undoing CQ → SC 1,400,000 = SC pays CQ 3,800,000.00.
    assert rule_amounts(new, QJ) == [("class_target", "-2000000.00"), ("index_change", "-400000.00")]
    assert transfers(new) == [("SC", "CQ", "2400000.00")]
    assert new_op["obligations"] == [{"from": "SC", "to": "CQ", "amount": "3800000.00"}]
    assert obligations_of(world, new_seq) == [(SC_FIN, CQ_FIN, 380_000_000)]
    # The old statement and its obligation stay as they were; only the link to the new one is set.
    rows = world.rows(Statement, Statement.period == "2025-12", Statement.agreement == agreement_id)
    by_seq = {row.seq: row for row in rows}
    assert sorted(by_seq) == [old_seq, new_seq]
    assert by_seq[old_seq].body == old_statement.body and by_seq[old_seq].superseded_by == by_seq[new_seq].id
    assert (by_seq[new_seq].supersedes, by_seq[new_seq].superseded_by) == (old_statement.id, None)
    assert obligations_of(world, old_seq) == [(CQ_FIN, SC_FIN, 140_000_000)]
    # Preview of December with the corrected inputs says the same.
    corrected_bodies = [b if b["samples"] != monthly[QJ, "2025-12"] or b["section"] != QJ
                        else {"section": QJ, "samples": corrected_samples} for b in bodies]
    preview = preview_many(tmp_path / "preview-corrected", AGREEMENT, corrected_bodies, ["2025-12"])["2025-12"]
    assert {k: v for k, v in new.items() if k != "submissions"} == preview
    # Nothing earlier changed: entries 0..n−1 byte for byte (their canonical JSON and leaf hashes).
    after_entries = world.entries()
    assert len(after_entries) == n + 2
    for before, after in zip(before_entries, after_entries[:n]):
        assert rfc8785.dumps(before) == rfc8785.dumps(after), f"entry {before['seq']} changed"
    # And the job once more: nothing.
    world.server.cli("jobs", "run", "settlement")
    assert world.log_size() == n + 2

    # -- the read API says what the log says ---------------------------------------------------
    in_force = current_statements(world, agreement_id)
    page = world.read(f"/v1/agreements/{agreement_id}/statements", as_="cq-finance", current="true",
                      limit=100).json()
    assert page["next"] is None
    assert [(item["period"], item["seq"], item["current"]) for item in page["items"]] == [
        (period, in_force[period][0], True) for period in PERIODS]
    for item in page["items"]:
        assert item["transfers"] == in_force[item["period"]][1]["statement"]["transfers"]
    detail = world.read(f"/v1/agreements/{agreement_id}/statements/2025-12", as_="sc-finance").json()
    assert (detail["seq"], detail["supersedes"], detail["statement"]) == (new_seq, old_statement.id, new)
    assert [h["id"] for h in detail["history"]] == [old_statement.id]
    assert [(o["debtor"], o["creditor"], o["amount"]) for o in detail["obligations"]] == [
        (SC_FIN, CQ_FIN, "3800000.00")]

    # -- the auditor's replay from entry 0 --------------------------------------------------------
    replay_and_compare(world, tmp_path, expected_statements=13)


def replay_and_compare(world: World, tmp_path: Path, *, expected_statements: int) -> None:
    """Replay every entry served by GET /v1/log/entries with ``apply_audited`` into a fresh
    SQLite database; every projection must equal the server's, and every statement body be the
    same bytes."""
    from ledger.database import create_database_engine, upgrade
    from ledger.replay import compare_tables, replay
    from settlement.audit import AUDITED_TABLES, apply_audited
    from sqlalchemy import select
    from sqlmodel import Session

    entries = [item["entry"] for item in world.entries()]
    engine = create_database_engine(f"sqlite:///{tmp_path}/replay.db")
    try:
        upgrade(engine)
        assert replay(entries, engine=engine, apply=apply_audited) == len(entries)
        compare_tables(world.store.engine, engine, AUDITED_TABLES)
        with Session(world.store.engine) as left, Session(engine) as right:
            served = {r.id: (r.seq, r.body.encode()) for r in left.exec(select(Statement)).scalars()}
            replayed = {r.id: (r.seq, r.body.encode()) for r in right.exec(select(Statement)).scalars()}
        assert len(served) >= expected_statements
        assert served == replayed
    finally:
        engine.dispose()


# -- refusals ----------------------------------------------------------------------------------


def probe_document(**changes) -> dict:
    """A valid agreement of its own (section ``rp-fujiang``) to break one field at a time."""
    document = copy.deepcopy(AGREEMENT)
    document["id"] = "refusal-probe"
    document["sections"] = [{"id": "rp-fujiang", "name": "涪江断面", "river": "涪江", "water_body": "river",
                             "upstream": ["SC"], "downstream": ["CQ"]}]
    document.update(changes)
    return document


def _break(mutate) -> dict:
    document = probe_document()
    mutate(document)
    return document


MALFORMED = [
    pytest.param(lambda d: d.__setitem__("indicators", ["CODMn", "pH"]), "indicators.1", "Must be one of",
                 id="unknown-indicator"),
    pytest.param(lambda d: d["sections"][0].update(upstream=["SC"], shares={"SC": "0.9"}), "sections.0.shares",
                 "sum to 1", id="shares-not-one"),
    pytest.param(lambda d: d.__setitem__("term", {"from": "2025-12-31", "to": "2025-01-01"}), "term.to",
                 "empty", id="empty-term"),
    pytest.param(lambda d: d["rules"][0].pop("amounts"), "rules.0.amounts", "Missing data", id="missing-amounts"),
    pytest.param(lambda d: d["rules"][1].pop("cap"), "rules.1.cap", "Missing data", id="missing-cap"),
    pytest.param(lambda d: d["rules"][0]["amounts"].pop("missed"), "rules.0.amounts.missed", "Missing data",
                 id="missing-amount"),
    pytest.param(lambda d: d["sections"][0].__setitem__("downstream", ["GZ"]), "sections.0.downstream",
                 "not in parties", id="section-party-not-a-party"),
    pytest.param(lambda d: d["rules"].__setitem__(0, {"type": "class_steps", "baseline_class": 3,
                                                      "amount_per_class": "0"}),
                 "rules.0.amount_per_class", "greater than zero", id="zero-amount"),
]


@pytest.mark.parametrize(("mutate", "field", "words"), MALFORMED)
def test_a_malformed_agreement_is_refused_naming_the_field(world, mutate, field, words):
    problem = world.refused("sc-finance", {"op": "agreement.propose", "document": _break(mutate)},
                            status=422, code="INVALID_AGREEMENT")
    assert problem["detail"].startswith(f"{field}: "), problem
    assert words in problem["detail"], problem
    assert world.get(Agreement, ("refusal-probe", 1)) is None


def test_refusals_of_signatures_samples_and_monitors(world):
    document = probe_document(id="refusal-probe-signed", term={"from": "2027-01-01", "to": "2027-12-31"})
    digest = digest_of(document)
    proposed = world.ok("sc-finance", {"op": "agreement.propose", "document": document})
    assert proposed["results"][0]["status"] == "proposed"
    key = {"agreement": document["id"], "version": 1}

    # The digest of the document as json.dumps writes it, not its JCS: a mistake a client makes.
    wrong = base64.b64encode(hashlib.sha256(json.dumps(document).encode()).digest()).decode()
    assert wrong != digest
    problem = world.refused("cq-finance", {"op": "agreement.sign", **key, "digest": wrong},
                            status=422, code="DIGEST_MISMATCH")
    assert digest in problem["detail"] and wrong in problem["detail"]
    # A bureau of a province that is not a party, with the right digest.
    problem = world.refused("gz-finance", {"op": "agreement.sign", **key, "digest": digest},
                            status=403, code="FORBIDDEN_PROVINCE")
    assert "gz-finance" in problem["detail"] and "GZ" in problem["detail"]
    # A bureau of a party that signed already (the proposal is Sichuan's signature).
    world.refused("sc-finance", {"op": "agreement.sign", **key, "digest": digest}, status=409, code="ALREADY_SIGNED")
    assert world.get(Agreement, (document["id"], 1)).status == "proposed"
    # A malformed digest (not 44 characters) is an invalid op naming the field.
    problem = world.refused("cq-finance", {"op": "agreement.sign", **key, "digest": "abc"},
                            status=422, code="INVALID_OP")
    assert "digest" in problem["detail"]

    # Samples: a negative concentration, an unknown indicator.
    good = {"date": "2025-07-03", "values": {"CODMn": "3.1", "NH3N": "0.42", "TP": "0.08"}}
    for values, field in (({"CODMn": "-3.1", "NH3N": "0.42", "TP": "0.08"}, "CODMn"),
                          ({"CODMn": "3.1", "pH": "7.2"}, "pH")):
        problem = world.refused("sc-monitor", {"op": "monitoring.submit", "section": "rp-fujiang",
                                               "samples": [good, {"date": "2025-07-17", "values": values}]},
                                status=422, code="INVALID_OP")
        assert "samples" in problem["detail"], problem
        assert field in json.dumps(problem["errors"]), problem
    # A monitoring station of a province that is not a party to any agreement naming the section.
    problem = world.refused("gz-monitor", {"op": "monitoring.submit", "section": "rp-fujiang", "samples": [good]},
                            status=403, code="FORBIDDEN_PROVINCE")
    assert "rp-fujiang" in problem["detail"]
    # …and a section no agreement names.
    world.refused("sc-monitor", {"op": "monitoring.submit", "section": "no-such-section", "samples": [good]},
                  status=422, code="UNKNOWN_SECTION")
    # Once Chongqing signs, the agreement is active; a bureau of a non-party still cannot ask for
    # a statement (the term lies ahead, so no job settles anything of it meanwhile).
    world.ok("cq-finance", {"op": "agreement.sign", **key, "digest": digest})
    assert world.get(Agreement, (document["id"], 1)).status == "active"
    world.refused("gz-finance", {"op": "settlement.request", "agreement": document["id"], "period": "2027-03"},
                  status=403, code="FORBIDDEN_PROVINCE")


@pytest.mark.parametrize(("values", "field"), [
    pytest.param({"CODMn": "-3.1", "NH3N": "0.42", "TP": "0.08"}, "samples.1.values.CODMn", id="negative"),
    pytest.param({"CODMn": "3.1", "pH": "7.2"}, "samples.1.values.pH", id="unknown-indicator"),
])
def test_a_refused_sample_names_the_sample_and_indicator(world, values, field):
    good = {"date": "2025-07-03", "values": {"CODMn": "3.1", "NH3N": "0.42", "TP": "0.08"}}
    problem = world.refused("sc-monitor", {"op": "monitoring.submit", "section": QJ,
                                           "samples": [good, {"date": "2025-07-17", "values": values}]},
                            status=422, code="INVALID_OP")
    assert field in problem["detail"], problem["detail"]


# -- a correction reissues only the period it changes -----------------------------------------


def test_a_correction_reissues_only_the_period_it_changes(world):
    """A statement lists, and depends on, the submissions with samples in its period or its
    reference period only: correcting June appends June's statement again and no other (before
    the fix in settlement/service.py every later month of the year was reissued too)."""
    document = probe_document(id="window-probe", sections=[{
        "id": "wp-tuojiang", "name": "沱江断面", "river": "沱江", "water_body": "river",
        "upstream": ["SC"], "downstream": ["CQ"]}])
    digest = digest_of(document)
    world.ok("sc-finance", {"op": "agreement.propose", "document": document})
    world.ok("cq-finance", {"op": "agreement.sign", "agreement": "window-probe", "version": 1, "digest": digest})
    submissions = {}
    for month in [f"2024-{m:02d}" for m in range(1, 13)] + PERIODS:
        answer = world.ok("sc-monitor", {"op": "monitoring.submit", "section": "wp-tuojiang",
                                         "samples": hand_samples(month, ("3.2", "0.48", "0.09"))})
        submissions[month] = answer["seq"], answer["results"][0]["submission"]
    world.server.cli("jobs", "run", "settlement")
    latest = current_statements(world, "window-probe")
    assert sorted(latest) == PERIODS
    size = world.log_size()

    world.ok("sc-monitor", {"op": "monitoring.correct", "submission": submissions["2025-06"][1],
                            "samples": hand_samples("2025-06", ("6.4", "0.48", "0.09"))})
    world.server.cli("jobs", "run", "settlement")
    reissued = sorted(op["period"] for _, op in statements_in_log(world, "window-probe", start=size))
    # The statements used: July 2025 uses the samples of July 2025 and July 2024, nothing else.
    july = latest["2025-07"][1]["statement"]
    assert (reissued, sorted(july["submissions"])) == (
        ["2025-06"], [submissions["2024-07"][0], submissions["2025-07"][0]])

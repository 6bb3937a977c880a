"""``ecoledger settle preview``: a statement computed offline from files (specs/agreements.md §2–§5).

Every call is the real console script in a subprocess, in an environment that names no ledger
and a working directory of its own: no server, no database (and nothing may be created there).
Calls are started side by side, since each pays the interpreter's start-up.

* every sample agreement in ``config/agreements/`` with generated monitoring files: the ``--json``
  shape, and means, classes and composite indices recomputed here from the samples and GB 3838;
* transfers computed by hand: qiongjiang (four months), the spec's worked examples 1–5,
  laixihe, chishuihe and a side shared by two parties;
* invalid agreement or monitoring files: exit status 1 and one line naming the file and the field.
"""

import base64
import copy
import decimal
import hashlib
import json
import os
import random
import re
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
import rfc8785

from support.server import ecoledger_command

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "config" / "agreements").glob("*.json"))
MONEY = re.compile(r"-?[0-9]+\.[0-9]{2}")
POSITIVE_MONEY = re.compile(r"[1-9][0-9]*\.[0-9]{2}|0\.(0[1-9]|[1-9][0-9])")
TIMEOUT = 120

# GB 3838-2002 Table 1, class I–V upper limits (mg/L), written out here independently of the code.
GB3838 = {
    "CODMn": ("2", "4", "6", "10", "15"), "COD": ("15", "15", "20", "30", "40"), "BOD5": ("3", "3", "4", "6", "10"),
    "NH3N": ("0.15", "0.5", "1.0", "1.5", "2.0"), "TN": ("0.2", "0.5", "1.0", "1.5", "2.0"),
    "TP:river": ("0.02", "0.1", "0.2", "0.3", "0.4"), "TP:lake": ("0.01", "0.025", "0.05", "0.1", "0.2"),
}


def load(name: str) -> dict:
    return json.loads((ROOT / "config" / "agreements" / f"{name}.json").read_text(encoding="utf-8"))


def digest_of(document: dict) -> str:
    return base64.b64encode(hashlib.sha256(rfc8785.dumps(document)).digest()).decode()


# -- running the command ---------------------------------------------------------------------------


def clean_env(directory: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECOLEDGER_")}
    env["HOME"] = str(directory)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_previews(directory: Path, calls: dict[str, tuple[object, object, str, bool]]) -> dict[str, subprocess.CompletedProcess]:
    """Run ``settle preview`` for every ``name: (agreement, monitoring, period, as_json)`` side by side.

    ``agreement`` and ``monitoring`` are JSON values written to files, or ``str`` written as is."""
    directory.mkdir(parents=True, exist_ok=True)
    workdir = directory / "cwd"
    workdir.mkdir(exist_ok=True)
    started = {}
    for name, (agreement, monitoring, period, as_json) in calls.items():
        files = []
        for what, content in (("agreement", agreement), ("monitoring", monitoring)):
            path = directory / f"{name}.{what}.json"
            path.write_text(content if isinstance(content, str) else json.dumps(content, ensure_ascii=False),
                            encoding="utf-8")
            files.append(path)
        command = [*ecoledger_command(), "settle", "preview", "--agreement", str(files[0]),
                   "--monitoring", str(files[1]), "--period", period, *(["--json"] if as_json else [])]
        started[name] = (command, subprocess.Popen(command, env=clean_env(directory), cwd=workdir,
                                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = {}
    for name, (command, process) in started.items():
        out, err = process.communicate(timeout=TIMEOUT)
        results[name] = subprocess.CompletedProcess(command, process.returncode, out, err)
    assert list(workdir.iterdir()) == [], "settle preview created files (a ledger?) in its working directory"
    return results


def statements(directory: Path, calls: dict[str, tuple[object, object, str]]) -> dict[str, dict]:
    """The ``--json`` statements of successful previews."""
    results = run_previews(directory, {name: (*call, True) for name, call in calls.items()})
    for name, result in results.items():
        assert result.returncode == 0, f"{name}: {' '.join(result.args)}\n{result.stderr}"
        assert result.stderr == "", result.stderr
    return {name: json.loads(result.stdout) for name, result in results.items()}


# -- monitoring data -------------------------------------------------------------------------------


def samples_with_means(first_day: str, means: dict[str, str | None]) -> list[dict]:
    """Two samples (0.75·m and 1.25·m) whose mean is m exactly, for every indicator given."""
    values = [{i: plain(Decimal(m) * f) for i, m in means.items() if m is not None}
              for f in (Decimal("0.75"), Decimal("1.25"))]
    year_month = first_day[:7]
    return [{"date": f"{year_month}-03", "values": values[0]}, {"date": f"{year_month}-17", "values": values[1]}]


def plain(value: Decimal) -> str:
    """A decimal string without an exponent or trailing zeros: 2.8236000 → "2.8236"."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def body(section: str, *sample_lists: list[dict]) -> dict:
    return {"section": section, "samples": [s for samples in sample_lists for s in samples]}


def period_days(period: str) -> list[str]:
    """Days inside a period (month or year) to date samples on."""
    if len(period) == 4:
        return [f"{period}-02-11", f"{period}-06-15", f"{period}-11-28"]
    return [f"{period}-01", f"{period}-15", f"{period}-28"]


def generated(document: dict, period: str, seed: int) -> list[dict]:
    """Three samples per section in the period and in its reference period, with three decimals."""
    rng = random.Random(seed)
    reference = f"{int(period[:4]) - 1:04d}{period[4:]}"
    ranges = {"CODMn": (1.0, 9.0), "COD": (10.0, 35.0), "BOD5": (2.0, 7.0), "NH3N": (0.1, 1.4),
              "TP": (0.02, 0.25), "TN": (0.3, 1.8)}
    bodies = []
    for section in document["sections"]:
        samples = [{"date": day, "values": {i: f"{rng.uniform(*ranges[i]):.3f}" for i in document["indicators"]}}
                   for p in (period, reference) for day in period_days(p)]
        bodies.append({"section": section["id"], "samples": samples})
    return bodies


def a_period_of(document: dict) -> str:
    year = int(document["term"]["from"][:4]) + 1
    return f"{year}-07" if document["period"] == "month" else str(year)


# -- the shape of a statement ----------------------------------------------------------------------


def exact_mean(values: list[Decimal]) -> Decimal:
    with decimal.localcontext(decimal.Context(prec=60)):
        return sum(values, Decimal(0)) / len(values)


def gb_class(indicator: str, mean: Decimal, water_body: str) -> int:
    limits = GB3838[f"TP:{water_body}" if indicator == "TP" else indicator]
    return next((n for n, limit in enumerate(limits, start=1) if mean <= Decimal(limit)), 6)


def in_period(day: str, period: str) -> bool:
    return day.startswith(period + ("-" if len(period) == 4 else ""))


def check_shape(statement: dict, document: dict, bodies: list[dict], period: str) -> None:
    parties = [p["id"] for p in document["parties"]]
    has_pool = any(r["type"] == "pool" for r in document["rules"])
    section_rules = [r["type"] for r in document["rules"] if r["type"] != "pool"]
    expected_keys = {"agreement", "version", "period", "reference_period", "sections", "transfers", "digest"}
    assert set(statement) == expected_keys | ({"pools"} if has_pool else set()), sorted(statement)
    assert (statement["agreement"], statement["version"], statement["period"]) == (
        document["id"], document["version"], period)
    assert statement["reference_period"] == f"{int(period[:4]) - 1:04d}{period[4:]}"
    assert statement["digest"] == digest_of(document)

    # Transfers: {from, to, amount}, one per pair of parties at most, amounts > 0 with 2 decimals.
    pairs = set()
    for transfer in statement["transfers"]:
        assert set(transfer) == {"from", "to", "amount"}, transfer
        assert transfer["from"] in parties and transfer["to"] in parties and transfer["from"] != transfer["to"]
        assert POSITIVE_MONEY.fullmatch(transfer["amount"]), transfer
        pair = frozenset((transfer["from"], transfer["to"]))
        assert pair not in pairs, f"two transfers between {sorted(pair)}"
        pairs.add(pair)

    # Sections: means, classes, class, index recomputed here; every rule's amount.
    assert [s["section"] for s in statement["sections"]] == [s["id"] for s in document["sections"]]
    for section, shown in zip(document["sections"], statement["sections"]):
        assert shown["name"] == section["name"]
        assert MONEY.fullmatch(shown["amount"]), shown
        values = {i: [Decimal(s["values"][i]) for b in bodies if b["section"] == section["id"]
                      for s in b["samples"] if in_period(s["date"], period) and i in s["values"]]
                  for i in document["indicators"]}
        if any(not v for v in values.values()):
            assert shown["status"] == "unsettled" and shown["amount"] == "0.00"
            assert shown["missing"] == [i for i in document["indicators"] if not values[i]]
            continue
        assert shown["status"] == "settled"
        means = {i: exact_mean(v) for i, v in values.items()}
        assert list(shown["means"]) == document["indicators"]
        for indicator, mean in means.items():
            assert abs(Decimal(shown["means"][indicator]) - mean) < Decimal("1e-40"), (indicator, shown["means"])
        classes = {i: gb_class(i, means[i], section["water_body"]) for i in document["indicators"]}
        assert shown["classes"] == classes
        assert shown["class"] == max(classes.values())
        limits = {i: Decimal(GB3838[f"TP:{section['water_body']}" if i == "TP" else i][2]) for i in means}
        with decimal.localcontext(decimal.Context(prec=60)):
            index = sum((means[i] / limits[i] for i in means), Decimal(0))
        assert abs(Decimal(shown["index"]) - index) < Decimal("1e-40"), shown["index"]
        assert "reference_index" in shown
        assert [r["type"] for r in shown["rules"]] == section_rules
        for rule, spec in zip(shown["rules"], [r for r in document["rules"] if r["type"] != "pool"]):
            assert MONEY.fullmatch(rule["amount"]) and isinstance(rule["reason"], str) and rule["reason"]
            if spec["type"] == "p_index":
                assert re.fullmatch(r"-?[0-9]+\.[0-9]{4}", rule["p_display"]), rule
                with decimal.localcontext(decimal.Context(prec=60)):
                    p = Decimal(spec["k0"]) * sum((Decimal(w) * means[i] / Decimal(spec["baselines"][i])
                                                   for i, w in spec["weights"].items()), Decimal(0))
                assert abs(Decimal(rule["p"]) - p) < Decimal("1e-40"), rule
                met = p <= Decimal(spec["threshold"])
                assert rule["amount"] == f"{Decimal(spec['amount_met' if met else 'amount_missed']):.2f}"
            else:
                assert "p" not in rule and "p_display" not in rule
        assert Decimal(shown["amount"]) == sum((Decimal(r["amount"]) for r in shown["rules"]), Decimal(0))
    if has_pool:
        for pool in statement["pools"]:
            assert {"fund", "contributions", "allotments", "deductions", "nets", "payments"} <= set(pool)
            assert sum(Decimal(a) for a in pool["nets"].values()) == 0


def test_the_sample_agreements_are_all_here():
    assert {p.stem for p in SAMPLES} >= {"qiongjiang", "laixihe", "qujiang", "chishuihe"}


def test_every_sample_agreement_previews_with_generated_monitoring(tmp_path):
    calls, inputs = {}, {}
    for index, path in enumerate(SAMPLES):
        document = json.loads(path.read_text(encoding="utf-8"))
        period = a_period_of(document)
        for seed in (1, 2):
            bodies = generated(document, period, seed=index * 10 + seed)
            calls[f"{path.stem}-{seed}"] = (document, bodies, period)
            inputs[f"{path.stem}-{seed}"] = (document, bodies, period)
    for name, statement in statements(tmp_path, calls).items():
        document, bodies, period = inputs[name]
        check_shape(statement, document, bodies, period)


def test_text_output_names_the_transfers(tmp_path):
    document = load("qiongjiang")
    monitoring = [body("qj-guanghui", samples_with_means("2025-07", {"CODMn": "3.2", "NH3N": "0.48", "TP": "0.09"}),
                       samples_with_means("2024-07", {"CODMn": "3.3", "NH3N": "0.5", "TP": "0.1"}))]
    [result] = run_previews(tmp_path, {"text": (document, monitoring, "2025-07", False)}).values()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "qiongjiang v1, period 2025-07 (reference 2024-07)"
    assert lines[-2:] == ["transfers:", "  CQ → SC  1250000.00"]


# -- by hand -----------------------------------------------------------------------------------


def transfers(statement: dict) -> list[tuple[str, str, str]]:
    return [(t["from"], t["to"], t["amount"]) for t in statement["transfers"]]


def rules_of(statement: dict, index: int = 0) -> list[tuple[str, str]]:
    return [(r["type"], r["amount"]) for r in statement["sections"][index]["rules"]]


def test_qiongjiang_by_hand(tmp_path):
    """qiongjiang: 光辉断面, SC upstream, CQ downstream; class_target III (±1,000,000, same 0,
    missed −1,000,000) and index_change 50,000 per whole point, cap 400,000. Class III limits:
    CODMn 6, NH3N 1.0, TP 0.2."""
    document = load("qiongjiang")
    section = "qj-guanghui"
    m = samples_with_means
    monitoring = [
        # July: the worked example's figures.
        body(section, m("2025-07", {"CODMn": "3.2", "NH3N": "0.48", "TP": "0.09"}),
             m("2024-07", {"CODMn": "3.3", "NH3N": "0.5", "TP": "0.1"})),
        # August: class V, worse than a year before.
        body(section, m("2025-08", {"CODMn": "10.5", "NH3N": "0.9", "TP": "0.18"}),
             m("2024-08", {"CODMn": "6.0", "NH3N": "0.9", "TP": "0.18"})),
        # September: no reference data.
        body(section, m("2025-09", {"CODMn": "3.0", "NH3N": "0.3", "TP": "0.05"})),
        # October: no TP at all.
        body(section, m("2025-10", {"CODMn": "3.0", "NH3N": "0.3", "TP": None}),
             m("2024-10", {"CODMn": "3.0", "NH3N": "0.3", "TP": "0.05"})),
    ]
    got = statements(tmp_path, {p: (document, monitoring, p) for p in ("2025-07", "2025-08", "2025-09", "2025-10")})

    # July 2025: means 3.2 / 0.48 / 0.09 → classes II/II/II → class II, met.
    #   I = 3.2/6 + 0.48/1.0 + 0.09/0.2 = 0.5333… + 0.48 + 0.45 = 1.4633…
    #   July 2024: 3.3/6 + 0.5 + 0.1/0.2 = 0.55 + 0.5 + 0.5 = 1.55 → improved → +1,000,000.
    #   Δ = (1.4633… − 1.55)/1.55 × 100 = −5.5913… → −5 whole points → −(−5) × 50,000 = +250,000.
    #   Section +1,250,000: downstream CQ pays upstream SC 1,250,000.00.
    july = got["2025-07"]
    assert july["sections"][0]["classes"] == {"CODMn": 2, "NH3N": 2, "TP": 2}
    assert Decimal(july["sections"][0]["reference_index"]) == Decimal("1.55")
    assert rules_of(july) == [("class_target", "1000000.00"), ("index_change", "250000.00")]
    assert transfers(july) == [("CQ", "SC", "1250000.00")]

    # August 2025: CODMn 10.5 is class V (> 10, ≤ 15) → missed → −1,000,000.
    #   I = 10.5/6 + 0.9 + 0.18/0.2 = 1.75 + 0.9 + 0.9 = 3.55; August 2024: 1 + 0.9 + 0.9 = 2.8.
    #   Δ = 0.75/2.8 × 100 = 26.78… → 26 points → −1,300,000, capped at −400,000.
    #   Section −1,400,000: upstream SC pays downstream CQ 1,400,000.00.
    august = got["2025-08"]
    assert august["sections"][0]["class"] == 5
    assert rules_of(august) == [("class_target", "-1000000.00"), ("index_change", "-400000.00")]
    assert "capped at 400000.00" in august["sections"][0]["rules"][1]["reason"]
    assert transfers(august) == [("SC", "CQ", "1400000.00")]

    # September 2025: class II, met, no reference data → "same" → 0; index change 0, said so.
    #   Nothing owed: no transfer at all (never a zero amount).
    september = got["2025-09"]
    assert september["sections"][0]["reference_index"] is None
    assert rules_of(september) == [("class_target", "0.00"), ("index_change", "0.00")]
    assert "no reference data" in september["sections"][0]["rules"][0]["reason"]
    assert september["sections"][0]["rules"][1]["reason"] == "no reference data: amount 0"
    assert transfers(september) == []

    # October 2025: no TP sample → the section cannot be settled; the statement says which.
    october = got["2025-10"]["sections"][0]
    assert (october["status"], october["missing"], october["amount"]) == ("unsettled", ["TP"], "0.00")
    assert transfers(got["2025-10"]) == []


def class_target_only() -> dict:
    """The worked examples' agreement: class_target III, monthly, CODMn/NH3N/TP on a river."""
    document = load("qiongjiang")
    document["id"] = "worked-example-1"
    document["rules"] = [document["rules"][0]]
    return document


def index_change_only() -> dict:
    document = load("qiongjiang")
    document["id"] = "worked-example-4"
    document["rules"] = [{"type": "index_change", "amount_per_point": "500000", "cap": "3000000", "points": "whole"}]
    return document


def class_steps_per(amount: str) -> dict:
    document = load("laixihe")
    document["rules"] = [{"type": "class_steps", "baseline_class": 3, "amount_per_class": amount}]
    return document


def pool_of_two() -> dict:
    """Worked example 5: parties A (YN) and B (GZ), fund 10,000,000, 1:1 and 1:1; A's only
    section (weight 1, on_fail B: 1), target class II."""
    return {
        "id": "worked-example-5", "version": 1, "title": "资金池示例",
        "parties": [{"id": "YN", "name": "甲", "account": "YN:FIN:treasury"},
                    {"id": "GZ", "name": "乙", "account": "GZ:FIN:treasury"}],
        "sections": [{"id": "pool-a", "name": "甲断面", "river": "示例河", "water_body": "river",
                      "upstream": ["YN"], "downstream": ["GZ"]}],
        "indicators": ["CODMn", "NH3N", "TP"], "period": "year",
        "term": {"from": "2025-01-01", "to": "2025-12-31"},
        "rules": [{"type": "pool", "fund": "10000000", "contributions": {"YN": "1", "GZ": "1"},
                   "allocations": {"YN": "1", "GZ": "1"},
                   "sections": {"pool-a": {"party": "YN", "weight": "1", "target_class": 2, "on_fail": {"GZ": "1"}}}}],
        "responsibilities": "示例", "breach": "示例",
    }


def shared_side() -> dict:
    """Two upstream parties sharing one side half and half, an odd fen to split."""
    document = class_target_only()
    document["id"] = "shared-side"
    document["parties"].append({"id": "YN", "name": "云南省", "account": "YN:FIN:treasury"})
    document["sections"][0].update(upstream=["SC", "YN"], shares={"SC": "0.5", "YN": "0.5"})
    document["rules"][0]["amounts"]["met_improved"] = "1000000.01"
    return document


def test_the_specs_worked_examples_and_the_other_samples_by_hand(tmp_path):
    m = samples_with_means
    qj = "qj-guanghui"
    july_2025 = m("2025-07", {"CODMn": "3.2", "NH3N": "0.48", "TP": "0.09"})
    july_2024 = m("2024-07", {"CODMn": "3.3", "NH3N": "0.5", "TP": "0.1"})  # I_ref = 0.55 + 0.5 + 0.5 = 1.55
    qujiang = load("qujiang")
    baselines = {i: Decimal(b) for i, b in qujiang["rules"][0]["baselines"].items()}

    def at_ratio(ratio: str) -> list[dict]:
        """One qujiang sample of 2025 whose value / baseline is ``ratio`` for every indicator
        (e.g. NH3N 0.45 × 1.1765 = 0.529425: six decimals, the most a concentration has)."""
        return [{"section": "qu-gelan", "samples": [
            {"date": "2025-06-15", "values": {i: plain(b * Decimal(ratio)) for i, b in baselines.items()}}]}]

    class_v = [body("lx-gaodong", m("2025-07", {"COD": "35", "NH3N": "1.2", "TP": "0.25"}))]
    chishui_all_met = [body(s, m("2025-05", {"CODMn": "3.0", "NH3N": "0.3", "TP": "0.05"}))
                       for s in ("cs-qingshuipu", "cs-lixing", "cs-chishui")]
    chishui_yn_fails = [body("cs-qingshuipu", m("2025-05", {"CODMn": "5.0", "NH3N": "0.3", "TP": "0.05"})),
                        *chishui_all_met[1:]]
    calls = {
        "example-1": (class_target_only(), [body(qj, july_2025, july_2024)], "2025-07"),
        "example-2-missed": (qujiang, at_ratio("1.1765"), "2025"),
        "example-2-met": (qujiang, at_ratio("1.1764"), "2025"),
        "example-3": (class_steps_per("10000000"), class_v, "2025-07"),
        "laixihe": (load("laixihe"), class_v, "2025-07"),
        "example-4": (index_change_only(), [body(qj, m("2025-07", {"CODMn": "1.8", "NH3N": "0.3", "TP": "0.06"}),
                                                 m("2024-07", {"CODMn": "2.4", "NH3N": "0.3", "TP": "0.06"}))],
                      "2025-07"),
        "example-5-met": (pool_of_two(), [body("pool-a", m("2025-05", {"CODMn": "3.0", "NH3N": "0.3", "TP": "0.05"}))],
                          "2025"),
        "example-5-failed": (pool_of_two(), [body("pool-a", m("2025-05", {"CODMn": "5.0", "NH3N": "0.3",
                                                                          "TP": "0.05"}))], "2025"),
        "chishuihe-met": (load("chishuihe"), chishui_all_met, "2025"),
        "chishuihe-yn-fails": (load("chishuihe"), chishui_yn_fails, "2025"),
        "shared-side": (shared_side(), [body(qj, july_2025, july_2024)], "2025-07"),
    }
    got = statements(tmp_path, calls)
    for name, (document, monitoring, period) in calls.items():
        check_shape(got[name], document, monitoring, period)

    # 1. July 2025 means 3.2 / 0.48 / 0.09 → II/II/II → class II, met; I = 1.4633… < I_ref 1.55
    #    → improved → met_improved: CQ pays SC 1,000,000.00.
    example = got["example-1"]
    assert example["sections"][0]["classes"] == {"CODMn": 2, "NH3N": 2, "TP": 2}
    assert Decimal(example["sections"][0]["index"]).quantize(Decimal("0.000001")) == Decimal("1.463333")
    assert rules_of(example) == [("class_target", "1000000.00")]
    assert example["sections"][0]["rules"][0]["reason"].endswith("improved")
    assert transfers(example) == [("CQ", "SC", "1000000.00")]

    # 2. P = 0.85 × (4 × 0.25 × 1.1765) = 1.000025 > 1 → missed: upstream SC pays CQ 30,000,000.00;
    #    at 1.1764, P = 0.99994 ≤ 1 → met: downstream CQ pays SC 30,000,000.00. P shown to 4 places.
    missed, met = got["example-2-missed"]["sections"][0]["rules"][0], got["example-2-met"]["sections"][0]["rules"][0]
    assert (Decimal(missed["p"]), missed["p_display"], missed["amount"]) == (Decimal("1.000025"), "1.0000", "-30000000.00")
    assert (Decimal(met["p"]), met["p_display"], met["amount"]) == (Decimal("0.99994"), "0.9999", "30000000.00")
    assert transfers(got["example-2-missed"]) == [("SC", "CQ", "30000000.00")]
    assert transfers(got["example-2-met"]) == [("CQ", "SC", "30000000.00")]

    # 3. COD 35 (V: > 30, ≤ 40), NH3N 1.2 (IV), TP 0.25 (IV) → class V; (3 − 5) × 10,000,000 =
    #    −20,000,000: upstream (CQ on the 濑溪河) pays downstream SC 20,000,000.00.
    #    The laixihe sample (300,000 per class): (3 − 5) × 300,000 → CQ pays SC 600,000.00.
    assert got["example-3"]["sections"][0]["class"] == 5
    assert rules_of(got["example-3"]) == [("class_steps", "-20000000.00")]
    assert transfers(got["example-3"]) == [("CQ", "SC", "20000000.00")]
    assert transfers(got["laixihe"]) == [("CQ", "SC", "600000.00")]

    # 4. I = 1.8/6 + 0.3 + 0.06/0.2 = 0.9 against I_ref = 2.4/6 + 0.3 + 0.3 = 1.0 → Δ = −10 →
    #    10 points × 500,000 = 5,000,000, capped at 3,000,000: downstream CQ pays SC 3,000,000.00.
    assert Decimal(got["example-4"]["sections"][0]["index"]) == Decimal("0.9")
    assert rules_of(got["example-4"]) == [("index_change", "3000000.00")]
    assert transfers(got["example-4"]) == [("CQ", "SC", "3000000.00")]

    # 5. Contributions and allotments 5,000,000 each; no failure → every net 0, nothing moves.
    #    A's section fails (CODMn 5.0 → class III > II) → A's allotment 5,000,000 goes to B:
    #    nets A −5,000,000, B +5,000,000 → A (YN) pays B (GZ) 5,000,000.00.
    pool = got["example-5-met"]["pools"][0]
    assert pool["contributions"] == pool["allotments"] == {"YN": "5000000.00", "GZ": "5000000.00"}
    assert pool["nets"] == {"YN": "0.00", "GZ": "0.00"} and pool["deductions"] == []
    assert transfers(got["example-5-met"]) == []
    pool = got["example-5-failed"]["pools"][0]
    assert pool["nets"] == {"YN": "-5000000.00", "GZ": "5000000.00"}
    assert transfers(got["example-5-failed"]) == [("YN", "GZ", "5000000.00")]

    # chishuihe: fund 200,000,000, contributions YN:GZ:SC = 1:5:4 → 20M / 100M / 80M, allocations
    #   3:4:3 → 60M / 80M / 60M. Every section met (class II) → nets YN +40M, GZ −20M, SC −20M →
    #   the payers in party order pay YN: GZ → YN 20,000,000.00, SC → YN 20,000,000.00.
    pool = got["chishuihe-met"]["pools"][0]
    assert pool["contributions"] == {"YN": "20000000.00", "GZ": "100000000.00", "SC": "80000000.00"}
    assert pool["allotments"] == {"YN": "60000000.00", "GZ": "80000000.00", "SC": "60000000.00"}
    assert sorted(transfers(got["chishuihe-met"])) == [("GZ", "YN", "20000000.00"), ("SC", "YN", "20000000.00")]
    #   清水铺 (YN's, weight 1, on_fail GZ 1 : SC 1) at class III misses II → YN's 60M allotment goes
    #   30M to GZ and 30M to SC → nets YN 40 − 60 = −20M, GZ −20 + 30 = +10M, SC −20 + 30 = +10M →
    #   YN pays GZ 10,000,000.00 and SC 10,000,000.00.
    assert sorted(transfers(got["chishuihe-yn-fails"])) == [("YN", "GZ", "10000000.00"), ("YN", "SC", "10000000.00")]

    # A side shared half and half: met_improved 1,000,000.01 paid by CQ to SC and YN; each half
    #   floored to the fen (500,000.00) and the leftover fen to the first listed (SC).
    assert sorted(transfers(got["shared-side"])) == [("CQ", "SC", "500000.01"), ("CQ", "YN", "500000.00")]


# -- invalid files -----------------------------------------------------------------------------


def _broken(name: str, mutate) -> dict:
    document = load(name)
    mutate(document)
    return document


GOOD_MONITORING = [{"section": "qj-guanghui", "samples": [
    {"date": "2025-07-03", "values": {"CODMn": "3.1", "NH3N": "0.42", "TP": "0.08"}}]}]
GOOD_SAMPLE = GOOD_MONITORING[0]["samples"][0]

INVALID = {
    # name: (agreement, monitoring, period, words that must be on the line)
    "unknown-indicator": (_broken("qiongjiang", lambda d: d["indicators"].append("pH")), GOOD_MONITORING,
                          "2025-07", ["agreement.json", "indicators.3"]),
    "shares-not-one": (_broken("qiongjiang", lambda d: d["sections"][0].update(shares={"SC": "0.6"})),
                       GOOD_MONITORING, "2025-07", ["sections.0.shares", "sum to 1"]),
    "empty-term": (_broken("qiongjiang", lambda d: d.update(term={"from": "2026-01-01", "to": "2025-12-31"})),
                   GOOD_MONITORING, "2025-07", ["term.to", "empty"]),
    "missing-cap": (_broken("qiongjiang", lambda d: d["rules"][1].pop("cap")), GOOD_MONITORING, "2025-07",
                    ["rules.1.cap"]),
    "missing-amount": (_broken("qiongjiang", lambda d: d["rules"][0]["amounts"].pop("met_same")), GOOD_MONITORING,
                       "2025-07", ["rules.0.amounts.met_same"]),
    "zero-ratio": (_broken("qujiang", lambda d: d["rules"][0].update(k0="0")), GOOD_MONITORING, "2025",
                   ["rules.0.k0", "greater than zero"]),
    "negative-weight": (_broken("qujiang", lambda d: d["rules"][0]["weights"].update(TP="-0.25")),
                        GOOD_MONITORING, "2025", ["rules.0.weights"]),
    "party-not-a-party": (_broken("qiongjiang", lambda d: d["sections"][0].update(downstream=["GZ"])),
                          GOOD_MONITORING, "2025-07", ["sections.0.downstream", "GZ"]),
    "agreement-not-json": ("{\"id\": \"qiongjiang\",", GOOD_MONITORING, "2025-07", ["agreement.json", "not JSON"]),
    "negative-concentration": (load("qiongjiang"), [{"section": "qj-guanghui", "samples": [
        GOOD_SAMPLE, {"date": "2025-07-09", "values": {"CODMn": "-3.1"}}]}], "2025-07",
        ["monitoring.json", "0.samples.1.values.CODMn", "non-negative"]),
    "unknown-sample-indicator": (load("qiongjiang"), [{"section": "qj-guanghui", "samples": [
        {"date": "2025-07-09", "values": {"pH": "7.1"}}]}], "2025-07", ["0.samples.0.values.pH"]),
    "number-not-string": (load("qiongjiang"), [{"section": "qj-guanghui", "samples": [
        {"date": "2025-07-09", "values": {"TP": 0.1}}]}], "2025-07", ["0.samples.0.values.TP"]),
    "impossible-date": (load("qiongjiang"), [{"section": "qj-guanghui", "samples": [
        {"date": "2025-02-30", "values": {"TP": "0.1"}}]}], "2025-07", ["0.samples.0.date"]),
    "unknown-section": (load("qiongjiang"), [*GOOD_MONITORING, {"section": "qu-gelan", "samples": [GOOD_SAMPLE]}],
                        "2025-07", ["1.section", "qu-gelan"]),
    "monitoring-not-a-list": (load("qiongjiang"), GOOD_MONITORING[0], "2025-07", ["monitoring.json", "list"]),
    "monitoring-not-json": (load("qiongjiang"), "[{", "2025-07", ["monitoring.json", "not JSON"]),
    "year-for-a-monthly-agreement": (load("qiongjiang"), GOOD_MONITORING, "2025", ["--period", "YYYY-MM"]),
    "month-thirteen": (load("qiongjiang"), GOOD_MONITORING, "2025-13", ["--period"]),
    "month-for-a-yearly-agreement": (load("qujiang"), GOOD_MONITORING, "2025-07", ["--period", "YYYY"]),
}


@pytest.fixture(scope="module")
def invalid_runs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("invalid")
    return run_previews(directory, {name: (a, m, p, True) for name, (a, m, p, _) in INVALID.items()})


@pytest.mark.parametrize("case", sorted(INVALID))
def test_an_invalid_file_exits_with_one_line_naming_the_field(invalid_runs, case):
    result = invalid_runs[case]
    assert result.returncode == 1, f"exit status {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr
    for words in INVALID[case][3]:
        assert words in lines[0], f"{words!r} not in {lines[0]!r}"

"""A day of business between Sichuan and Chongqing, end to end (specs/agreements.md §5–6).

Everything goes through the real processes: ``ecoledger serve`` under gunicorn with two workers,
principals registered with ``ecoledger principal add --json``, every command signed with its
principal's key and sent to ``POST /v1/commands``, and ``ecoledger scheduler`` running the
settlement and clearing jobs. The day:

1. The exchanges open accounts, take CNY deposits and record trades within and across the
   provinces; the other province's exchange confirms the cross-province ones (one stays pending).
2. The finance bureaus propose and sign a small 琼江 agreement (Aug–Oct 2026, monthly); the
   monitoring station submits samples of Aug and Sep 2026 and of their reference months in 2025.
3. CQ's finance bureau asks for the August statement (``settlement.request``); the scheduler's
   settlement job appends September's and October's (no data: nothing owed).
4. The scheduler's clearing job nets each pool into one payment per pair.
5. Both sides of each net payment confirm it: the exchanges for the trade pool, the finance
   bureaus for compensation. The CNY moves; obligations and runs are settled.

Every balance is checked against figures worked by hand in the comments, and the auditor's replay
of the log (fetched over HTTP) reproduces every projection.
"""

import base64
import hashlib
import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from sqlalchemy import select
from sqlmodel import Session
from support.registry import enterprise
from support.scheduler import (SchedulerProcess, audit_replay, check_clearing, check_log, check_statements,
                               scheduler_env, wait_until)
from support.server import DEFAULT_ORIGIN, LedgerServer

from ledger.encoding import canonical
from ledger.keys import read_private_key
from ledger.projections import ClearingPayment, ClearingRun

pytestmark = pytest.mark.slow

S1, S2 = enterprise("SC", 101), enterprise("SC", 102)
C1, C2 = enterprise("CQ", 201), enterprise("CQ", 202)
SC_EXC, CQ_EXC = "SC:EXC:sc-exchange", "CQ:EXC:cq-exchange"
SC_FIN, CQ_FIN = "SC:FIN:treasury", "CQ:FIN:treasury"

AGREEMENT = {
    "id": "qiongjiang-pilot", "version": 1,
    "title": "琼江流域横向生态保护补偿协议（2026 年三季度试点）",
    "parties": [{"id": "SC", "name": "四川省", "account": SC_FIN}, {"id": "CQ", "name": "重庆市", "account": CQ_FIN}],
    "sections": [{"id": "qj-guanghui", "name": "光辉断面", "river": "琼江", "water_body": "river",
                  "upstream": ["SC"], "downstream": ["CQ"]}],
    "indicators": ["CODMn", "NH3N", "TP"], "period": "month",
    "term": {"from": "2026-08-01", "to": "2026-10-31"},
    "rules": [
        {"type": "class_target", "target_class": 3,
         "amounts": {"met_improved": "1000000", "met_same": "0", "met_declined": "-1000000", "missed": "-1000000"}},
        {"type": "index_change", "amount_per_point": "50000", "cap": "400000", "points": "whole"},
    ],
    "responsibilities": "四川省负责琼江上游水污染防治，确保光辉断面水质稳定达到 III 类。",
    "breach": "未按期足额拨付补偿资金的，按日万分之五计收违约金。",
}

SAMPLES = {
    # August 2026: means CODMn (3.0+3.4)/2 = 3.2, NH3N (0.46+0.50)/2 = 0.48, TP (0.08+0.10)/2 = 0.09
    "2026-08": [("2026-08-05", "3.0", "0.46", "0.08"), ("2026-08-20", "3.4", "0.50", "0.10")],
    # its reference, August 2025: I_ref = 3.3/6 + 0.5/1.0 + 0.1/0.2 = 0.55 + 0.5 + 0.5 = 1.55
    "2025-08": [("2025-08-12", "3.3", "0.5", "0.1")],
    # September 2026: CODMn 8 (IV), NH3N 0.9 (III), TP 0.15 (III)
    "2026-09": [("2026-09-10", "8", "0.9", "0.15")],
    # its reference, September 2025: I_ref = 6/6 + 0.8/1.0 + 0.14/0.2 = 1 + 0.8 + 0.7 = 2.5
    "2025-09": [("2025-09-10", "6", "0.8", "0.14")],
}


class Principal:
    def __init__(self, answer: dict):
        self.name = answer["name"]
        self.token = answer["token"]
        self.key = read_private_key(Path(answer["private_key_path"]))


class Day:
    """The server, its principals (from the CLI) and signed commands over HTTP."""

    def __init__(self, server: LedgerServer):
        self.server = server
        self.http = requests.Session()
        self.principals: dict[str, Principal] = {}
        self._ids = 0

    def add(self, name: str, role: str, province: str | None = None, *extra: str) -> Principal:
        args = ["principal", "add", name, "--role", role, "--json", *extra]
        if province:
            args += ["--province", province]
        answer = json.loads(self.server.cli(*args))
        assert answer["name"] == name and answer["role"] == role and answer["province"] == province
        self.principals[name] = Principal(answer)
        return self.principals[name]

    def post(self, actor: str, *ops: dict) -> requests.Response:
        self._ids += 1
        command = {"id": f"day-{self._ids}", "actor": actor, "ops": list(ops)}
        principal = self.principals[actor]
        signature = base64.b64encode(principal.key.sign(canonical(command))).decode()
        return self.http.post(f"{self.server.url}/v1/commands", json={"command": command, "signature": signature},
                              headers={"Authorization": f"Bearer {principal.token}"}, timeout=60)

    def ok(self, actor: str, *ops: dict) -> dict:
        response = self.post(actor, *ops)
        assert response.status_code == 201, f"{actor} {[o['op'] for o in ops]}: {response.status_code} {response.text}"
        return response.json()

    def refused(self, actor: str, op: dict, status: int, code: str) -> None:
        before = self.size()
        response = self.post(actor, op)
        assert response.status_code == status and response.json().get("code") == code, response.text
        assert self.size() == before, f"a refused command ({code}) appended an entry"

    def size(self) -> int:
        return int(self.http.get(f"{self.server.url}/v1/log/checkpoint", timeout=30).text.splitlines()[1])

    def get(self, path: str, **params) -> dict:
        response = self.http.get(f"{self.server.url}{path}", params=params or None, timeout=30,
                                 headers={"Authorization": f"Bearer {self.principals['auditor'].token}"})
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    def cny(self, account: str) -> tuple[Decimal, Decimal]:
        """An account's CNY (total, held) in 元, as the registry serves them."""
        for balance in self.get(f"/v1/accounts/{account}")["balances"]:
            if balance["asset"] == "CNY":
                return Decimal(balance["total"]), Decimal(balance["held"])
        return Decimal(0), Decimal(0)

    def obligations(self) -> list[dict]:
        items, cursor = [], None
        while True:
            page = self.get("/v1/obligations", **({"cursor": cursor} if cursor else {}), limit=100)
            items += page["items"]
            cursor = page.get("next")
            if not cursor:
                return items

    def entries(self) -> list[dict]:
        """The whole log, as an auditor fetches it."""
        items, start = [], 0
        while start is not None:
            page = self.http.get(f"{self.server.url}/v1/log/entries", params={"start": start, "limit": 1000},
                                 timeout=30).json()
            items += [item["entry"] for item in page["entries"]]
            start = page["next"]
        return items


@pytest.fixture
def day(database_url, tmp_path):
    server = LedgerServer.start(home=tmp_path / "home", database_url=database_url, workers=2)
    try:
        yield Day(server)
    finally:
        server.stop()
        print(server.output())


def check_cny(day: Day, expected: dict[str, tuple[str, str]]) -> None:
    got = {account: day.cny(account) for account in expected}
    assert got == {a: (Decimal(total), Decimal(held)) for a, (total, held) in expected.items()}


def test_a_day_of_trades_settlement_and_clearing(day, database_url, tmp_path):
    server = day.server
    # -- the principals, from the command line ------------------------------------------------------
    day.add("sc-exchange", "operator", "SC", "--display-name", "四川联合环境交易所")
    day.add("cq-exchange", "operator", "CQ", "--display-name", "重庆联合产权交易所")
    day.add("sc-sthj", "issuer", "SC", "--instrument", "PDR")
    day.add("cq-sthj", "issuer", "CQ", "--instrument", "PDR")
    day.add("sc-finance", "finance", "SC", "--display-name", "四川省财政厅")
    day.add("cq-finance", "finance", "CQ", "--display-name", "重庆市财政局")
    day.add("sc-monitor", "monitor", "SC")
    day.add("auditor", "auditor")

    # -- accounts, CNY, rights ------------------------------------------------------------------------
    day.ok("sc-exchange", {"op": "account.open", "account": S1, "name": "遂宁甲化工有限公司"},
           {"op": "account.open", "account": S2, "name": "遂宁乙电力有限公司"},
           {"op": "cny.deposit", "account": S1, "amount": "500000.00"},
           {"op": "cny.deposit", "account": S2, "amount": "300000.00"})
    day.ok("cq-exchange", {"op": "account.open", "account": C1, "name": "潼南丙钢铁有限公司"},
           {"op": "account.open", "account": C2, "name": "潼南丁建材有限公司"},
           {"op": "cny.deposit", "account": C1, "amount": "400000.00"},
           {"op": "cny.deposit", "account": C2, "amount": "200000.00"})
    pdr_sc = day.ok("sc-sthj", {"op": "asset.define", "instrument": "PDR", "attributes": {
        "pollutant": "COD", "valid_from": "2025-01-01", "valid_until": "2029-12-31"}})["results"][0]["asset"]
    pdr_cq = day.ok("cq-sthj", {"op": "asset.define", "instrument": "PDR", "attributes": {
        "pollutant": "NH3N", "valid_from": "2025-01-01", "valid_until": "2029-12-31"}})["results"][0]["asset"]
    day.ok("sc-sthj", {"op": "issue", "asset": pdr_sc, "to": S1, "quantity": "100"})
    day.ok("cq-sthj", {"op": "issue", "asset": pdr_cq, "to": C1, "quantity": "50"})
    # each exchange owes its depositors what they deposited
    check_cny(day, {SC_EXC: ("-800000.00", "0"), CQ_EXC: ("-600000.00", "0")})

    # -- trades ----------------------------------------------------------------------------------------
    def trade(actor: str, asset: str, quantity: str, price: str, seller: str, buyer: str) -> dict:
        return day.ok(actor, {"op": "trade", "asset": asset, "quantity": quantity, "price": price,
                              "seller": seller, "buyer": buyer})["results"][0]

    # T1 within SC: S1 → S2 10 t at 1000.00 = 10000.00, settles at once
    assert trade("sc-exchange", pdr_sc, "10", "1000", S1, S2)["status"] == "settled"
    # T2 within CQ: C1 → C2 5 t at 2000.00 = 10000.00
    assert trade("cq-exchange", pdr_cq, "5", "2000", C1, C2)["status"] == "settled"
    # T3 SC → CQ: S1 sells C1 20 t at 1234.56 = 24691.20, recorded by SC, confirmed by CQ
    t3 = trade("sc-exchange", pdr_sc, "20", "1234.56", S1, C1)
    assert (t3["status"], t3["amount"]) == ("pending", "24691.20")
    # T4 CQ → SC: C1 sells S2 8 t at 999.99 = 7999.92, recorded by the buyer's exchange (SC), confirmed by CQ
    t4 = trade("sc-exchange", pdr_cq, "8", "999.99", C1, S2)
    assert t4["amount"] == "7999.92"
    # T5 SC → CQ: S2 sells C2 3.5 t at 1500.005 = 5250.0175 → 5250.02 (half-up), recorded by CQ, confirmed by SC
    t5 = trade("cq-exchange", pdr_sc, "3.5", "1500.005", S2, C2)
    assert t5["amount"] == "5250.02"
    # T6 SC → CQ: S1 sells C2 1 t at 100.00, never confirmed: C2's 100.00 stays held, nobody owes anything
    t6 = trade("sc-exchange", pdr_sc, "1", "100", S1, C2)
    confirmations = [("cq-exchange", t3), ("cq-exchange", t4), ("sc-exchange", t5)]
    trade_obligations = {}
    for actor, pending in confirmations:
        result = day.ok(actor, {"op": "trade.confirm", "trade": pending["trade"]})["results"][0]
        assert result["status"] == "confirmed"
        trade_obligations[pending["trade"]] = result["obligation"]
    day.refused("sc-exchange", {"op": "trade.confirm", "trade": t6["trade"]}, 403, "FORBIDDEN_PROVINCE")

    # S1: 500000.00 + 10000.00 (T1) + 24691.20 (T3)                  = 534691.20
    # S2: 300000.00 − 10000.00 (T1) − 7999.92 (T4) + 5250.02 (T5)    = 287250.10
    # C1: 400000.00 + 10000.00 (T2) − 24691.20 (T3) + 7999.92 (T4)   = 393308.72
    # C2: 200000.00 − 10000.00 (T2) − 5250.02 (T5)                   = 184749.98, of which 100.00 held (T6)
    # SC:EXC: −800000.00 − 24691.20 (paid S1, T3) + 7999.92 (from S2, T4) − 5250.02 (paid S2, T5) = −821941.30
    # CQ:EXC: −600000.00 + 24691.20 (from C1, T3) − 7999.92 (paid C1, T4) + 5250.02 (from C2, T5) = −578058.70
    # (the six sum to 0: 1400000.00 − 1400000.00)
    before_clearing = {S1: ("534691.20", "0"), S2: ("287250.10", "0"), C1: ("393308.72", "0"),
                       C2: ("184749.98", "100.00"), SC_EXC: ("-821941.30", "0"), CQ_EXC: ("-578058.70", "0"),
                       SC_FIN: ("0", "0"), CQ_FIN: ("0", "0")}
    check_cny(day, before_clearing)

    # -- the agreement, the monitoring, the first statement ----------------------------------------------
    proposed = day.ok("sc-finance", {"op": "agreement.propose", "document": AGREEMENT})["results"][0]
    digest = base64.b64encode(hashlib.sha256(canonical(AGREEMENT)).digest()).decode()
    assert (proposed["digest"], proposed["status"]) == (digest, "proposed")
    signed = day.ok("cq-finance", {"op": "agreement.sign", "agreement": AGREEMENT["id"], "version": 1,
                                   "digest": digest})["results"][0]
    assert signed["status"] == "active"
    for month, samples in SAMPLES.items():
        day.ok("sc-monitor", {"op": "monitoring.submit", "section": "qj-guanghui", "samples": [
            {"date": d, "values": {"CODMn": codmn, "NH3N": nh3n, "TP": tp}} for d, codmn, nh3n, tp in samples]})

    # August 2026, asked for by CQ's finance bureau: class II (3.2 ≤ 4, 0.48 ≤ 0.5, 0.09 ≤ 0.1), target III met;
    # I = 3.2/6 + 0.48/1.0 + 0.09/0.2 = 1.46333… < I_ref 1.55: improved → met_improved 1000000.00;
    # Δ = (1.46333… − 1.55)/1.55 × 100 = −5.59… → −5 whole points → −(−5) × 50000 = 250000.00 (cap 400000)
    # → 1250000.00, positive: downstream CQ pays upstream SC.
    request = day.ok("cq-finance", {"op": "settlement.request", "agreement": AGREEMENT["id"], "period": "2026-08"})
    august = day.get(f"/v1/log/entries/{request['seq'] + 1}")["entry"]["command"]
    assert august["actor"] == "ledger"
    [statement_op] = august["ops"]
    assert statement_op["op"] == "settlement.statement" and statement_op["period"] == "2026-08"
    section = statement_op["statement"]["sections"][0]
    assert (section["class"], section["means"]) == (2, {"CODMn": "3.2", "NH3N": "0.48", "TP": "0.09"})
    assert [r["amount"] for r in section["rules"]] == ["1000000.00", "250000.00"]
    assert statement_op["statement"]["transfers"] == [{"from": "CQ", "to": "SC", "amount": "1250000.00"}]
    assert statement_op["obligations"] == [{"from": "CQ", "to": "SC", "amount": "1250000.00"}]

    # -- the scheduler: September's and October's statements, then the clearing --------------------------
    # September 2026: class IV (CODMn 8 ≤ 10) misses target III → missed −1000000.00;
    # I = 8/6 + 0.9/1.0 + 0.15/0.2 = 2.98333…, I_ref 2.5: Δ = 19.33… → 19 points → −950000.00, capped −400000.00
    # → −1400000.00: upstream SC pays downstream CQ. October: no samples, nothing owed.
    # Clearing fires at second 0 of each minute; the scheduler starts early in a minute so its
    # settlement job (every second) is done well before: each pool is cleared in one run.
    while datetime.now(UTC).second > 40:
        time.sleep(0.5)
    env = scheduler_env(home=tmp_path / "home", database_url=database_url, origin=DEFAULT_ORIGIN,
                        settlement="* * * * * *", clearing="0 * * * * *")
    with SchedulerProcess.start(env, directory=tmp_path / "scheduler", name="scheduler") as scheduler:
        def appended_statements() -> list[dict] | None:
            found = [e for e in day.entries() if e["command"]["actor"] == "ledger"
                     and e["command"]["id"].startswith("settlement:")]
            return found if len(found) >= 3 else None

        statements = wait_until(appended_statements, timeout=60, what="the statements of Sep and Oct", processes=[scheduler])
        assert [e["command"]["ops"][0]["period"] for e in statements] == ["2026-08", "2026-09", "2026-10"]
        september = statements[1]["command"]["ops"][0]
        assert september["statement"]["transfers"] == [{"from": "SC", "to": "CQ", "amount": "1400000.00"}]
        assert [r["amount"] for r in september["statement"]["sections"][0]["rules"]] == ["-1000000.00", "-400000.00"]
        assert statements[2]["command"]["ops"][0]["statement"]["transfers"] == []
        wait_until(lambda: all(o["status"] == "cleared" for o in day.obligations()), timeout=90,
                   what="the clearing of both pools", processes=[scheduler])

    obligations = day.obligations()
    assert sorted((o["pool"], o["debtor"], o["creditor"], o["amount"]) for o in obligations) == [
        ("compensation", CQ_FIN, SC_FIN, "1250000.00"), ("compensation", SC_FIN, CQ_FIN, "1400000.00"),
        ("trade", CQ_EXC, SC_EXC, "24691.20"), ("trade", CQ_EXC, SC_EXC, "5250.02"), ("trade", SC_EXC, CQ_EXC, "7999.92")]
    assert {o["id"] for o in obligations if o["pool"] == "trade"} == set(trade_obligations.values())
    found: dict[str, list] = {}
    for entry in day.entries():
        for index, op in enumerate(entry["command"]["ops"]):
            if op["op"] == "clearing.run":
                found.setdefault(op["pool"], []).append((f"C-{entry['seq']}-{index}", op, entry["time"]))
    assert {pool: len(items) for pool, items in found.items()} == {"compensation": 1, "trade": 1}, (
        f"one clearing run per pool expected (statements at {[e['time'] for e in statements]}): {found}")
    runs = {pool: items[0][:2] for pool, items in found.items()}
    assert {o["clearing"] for o in obligations if o["pool"] == "trade"} == {runs["trade"][0]}
    assert {o["clearing"] for o in obligations if o["pool"] == "compensation"} == {runs["compensation"][0]}
    # trade pool: CQ→SC 24691.20 + 5250.02 = 29941.22, SC→CQ 7999.92 → CQ:EXC pays SC:EXC 21941.30
    trade_run = runs["trade"][1]
    assert trade_run["gross"] == [{"from": CQ_EXC, "to": SC_EXC, "amount": 2994122},
                                  {"from": SC_EXC, "to": CQ_EXC, "amount": 799992}]
    assert trade_run["payments"] == [{"from": CQ_EXC, "to": SC_EXC, "amount": 2194130}]
    # compensation: CQ→SC 1250000.00, SC→CQ 1400000.00 → SC:FIN pays CQ:FIN 150000.00
    compensation_run = runs["compensation"][1]
    assert compensation_run["gross"] == [{"from": CQ_FIN, "to": SC_FIN, "amount": 125000000},
                                         {"from": SC_FIN, "to": CQ_FIN, "amount": 140000000}]
    assert compensation_run["payments"] == [{"from": SC_FIN, "to": CQ_FIN, "amount": 15000000}]
    check_cny(day, before_clearing)     # clearing itself moves no money

    # -- confirmations ------------------------------------------------------------------------------------
    trade_payment, compensation_payment = f"{runs['trade'][0]}-0", f"{runs['compensation'][0]}-0"
    day.refused("sc-finance", {"op": "clearing.confirm", "payment": trade_payment}, 403, "FORBIDDEN_ROLE")
    day.refused("sc-exchange", {"op": "clearing.confirm", "payment": compensation_payment}, 403, "FORBIDDEN_ROLE")
    first = day.ok("cq-exchange", {"op": "clearing.confirm", "payment": trade_payment})["results"][0]
    assert (first["confirmed"], first["settled"]) == ("payer", False)
    day.refused("cq-exchange", {"op": "clearing.confirm", "payment": trade_payment}, 409, "ALREADY_CONFIRMED")
    check_cny(day, before_clearing)     # one side's confirmation moves nothing
    last = day.ok("sc-exchange", {"op": "clearing.confirm", "payment": trade_payment})["results"][0]
    assert (last["confirmed"], last["settled"], last["run_settled"]) == ("payee", True, runs["trade"][0])
    first = day.ok("cq-finance", {"op": "clearing.confirm", "payment": compensation_payment})["results"][0]
    assert (first["confirmed"], first["settled"]) == ("payee", False)
    last = day.ok("sc-finance", {"op": "clearing.confirm", "payment": compensation_payment})["results"][0]
    assert (last["confirmed"], last["settled"]) == ("payer", True)
    day.refused("cq-finance", {"op": "clearing.confirm", "payment": compensation_payment}, 409, "ALREADY_SETTLED")

    # SC:EXC: −821941.30 + 21941.30 = −800000.00; CQ:EXC: −578058.70 − 21941.30 = −600000.00 —
    # each exchange again owes exactly its own depositors. SC:FIN 0 − 150000.00; CQ:FIN 0 + 150000.00.
    check_cny(day, {**before_clearing, SC_EXC: ("-800000.00", "0"), CQ_EXC: ("-600000.00", "0"),
                    SC_FIN: ("-150000.00", "0"), CQ_FIN: ("150000.00", "0")})
    assert all(o["status"] == "settled" for o in day.obligations())
    with server.open_store() as store:
        with Session(store.engine) as session:
            assert {r.id: r.status for r in session.execute(select(ClearingRun)).scalars()} == {
                runs["trade"][0]: "settled", runs["compensation"][0]: "settled"}
            assert all(p.settled_seq is not None for p in session.execute(select(ClearingPayment)).scalars())
        check_clearing(store.engine, all_cleared=True)
        assert check_statements(store.engine, grace_days=0) == 3
        size = check_log(store.engine)
        # the auditor: the log as served over HTTP, replayed and compared with every projection
        entries = day.entries()
        assert audit_replay(store.engine, tmp_path / "audit", entries) == size == len(entries)

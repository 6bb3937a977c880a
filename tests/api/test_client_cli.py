"""The HTTP client (api/client.py) and the commands for principals, commands, expiry and the demo.

The CLI runs with Flask's runner on SQLite and PostgreSQL. The client is tested against a tiny
HTTP server started here (signing, pagination, refusals, redirects, timeouts) and against the
real application served over HTTP by werkzeug in a thread.
"""

import json
import os
import stat
import threading
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from api.auth import current_principal
from api.client import Client, ClientError, load_key, principal_key_path, sign_command
from api.demo import ENTERPRISES, PARTIES, run_demo
from api.storage import get_store
from contracts.uscc import check_character, uscc_error
from ledger import verify
from ledger.keys import SigningKey
from ledger.projections import Agreement, Balance, Hold, Trade

SC_ENTERPRISE = "SC:ENT:" + "91510100MA6C00001" + check_character("91510100MA6C00001")
CQ_ENTERPRISE = "CQ:ENT:" + "91500000MA5U00003" + check_character("91500000MA5U00003")


def _ok(result):
    assert result.exit_code == 0, result.output
    return result.output


def _one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    text = result.output.strip()
    assert "\n" not in text and "Traceback" not in text, text
    assert text.startswith("Error: "), text
    return text


def _size(app) -> int:
    with app.app_context():
        return get_store().size()


def _add(runner, name, *args) -> dict:
    return json.loads(_ok(runner.invoke(args=["principal", "add", name, *args, "--json"])))


def _submit(runner, tmp_path, actor, document):
    path = tmp_path / f"command-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return runner.invoke(args=["submit", str(path), "--as", actor])


# -- principals -------------------------------------------------------------------------------


def test_principal_add_prints_its_token_and_key_once(runner, client, app):
    added = _add(runner, "sc-exchange", "--role", "operator", "--province", "SC",
                 "--display-name", "四川联合环境交易所")
    assert set(added) == {"name", "role", "province", "token", "private_key_path", "verifier_key"}
    assert (added["name"], added["role"], added["province"]) == ("sc-exchange", "operator", "SC")

    path = principal_key_path(app.config["ECOLEDGER"].home, "sc-exchange")
    assert added["private_key_path"] == str(path.resolve())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert str(load_key(path, "sc-exchange").verifier) == added["verifier_key"]

    keys = client.get("/v1/log/keys", headers={"Authorization": f"Bearer {added['token']}"}).get_json()
    assert keys["principals"]["sc-exchange"] == [{"key": added["verifier_key"], "from_seq": 1, "until_seq": None}]
    with app.test_request_context(headers={"Authorization": f"Bearer {added['token']}"}):
        assert current_principal().name == "sc-exchange"

    another = _ok(runner.invoke(args=["principal", "token", "sc-exchange"])).strip()
    assert another.startswith("ecl_") and another != added["token"]
    with app.test_request_context(headers={"Authorization": f"Bearer {another}"}):
        assert current_principal().role == "operator"

    listed = json.loads(_ok(runner.invoke(args=["principal", "list", "--json"])))
    assert [(p["name"], p["key"]) for p in listed] == [("sc-exchange", added["verifier_key"])]
    assert "sc-exchange" in _ok(runner.invoke(args=["principal", "list"]))


def test_principal_add_in_text_shows_the_token_once(runner, app):
    output = _ok(runner.invoke(args=["principal", "add", "cd-sthj", "--role", "issuer", "--province", "SC",
                                     "--instrument", "CHTF", "--display-name", "成都市生态环境局"]))
    token = next(line.split()[-1] for line in output.splitlines() if line.startswith("token:"))
    assert output.count(token) == 1
    assert "SC:ISS:cd-sthj" in output


def test_principal_refusals_are_one_line_and_leave_nothing(runner, app):
    home = app.config["ECOLEDGER"].home
    before = _size(app)

    error = _one_line_error(runner.invoke(args=["principal", "add", "op", "--role", "operator"]))
    assert error.startswith("Error: INVALID_OP: principal.add: province:") and error.endswith("(op 0)")
    error = _one_line_error(runner.invoke(args=["principal", "add", "aud", "--role", "auditor", "--province", "SC"]))
    assert "INVALID_OP" in error
    error = _one_line_error(runner.invoke(args=["principal", "add", "iss", "--role", "issuer", "--province", "CQ",
                                                "--instrument", "CHTF"]))
    assert error.startswith("Error: FORBIDDEN_INSTRUMENT: CHTF is issued in SC only")
    assert "not a principal's name" in _one_line_error(runner.invoke(args=["principal", "add", "../x", "--role", "admin"]))
    assert _size(app) == before
    assert not any(principal_key_path(home, n).exists() for n in ("op", "aud", "iss"))

    _add(runner, "admin", "--role", "admin")
    error = _one_line_error(runner.invoke(args=["principal", "add", "admin", "--role", "admin"]))
    assert "exists already; it is not overwritten" in error
    principal_key_path(home, "admin").unlink()
    error = _one_line_error(runner.invoke(args=["principal", "add", "admin", "--role", "admin"]))
    assert error == "Error: PRINCIPAL_EXISTS: there is a principal 'admin' already"
    assert not principal_key_path(home, "admin").exists()

    assert _one_line_error(runner.invoke(args=["principal", "token", "ghost"])) == \
        "Error: UNKNOWN_PRINCIPAL: there is no principal 'ghost'"


# -- submit -----------------------------------------------------------------------------------


def test_submit_signs_and_appends_locally(runner, app, tmp_path):
    _add(runner, "sc-exchange", "--role", "operator", "--province", "SC")
    before = _size(app)

    outcome = json.loads(_ok(_submit(runner, tmp_path, "sc-exchange",
                                     [{"op": "account.open", "account": SC_ENTERPRISE, "name": "成都某化工有限公司"}])))
    assert outcome["seq"] == before and outcome["results"] == [{"account": SC_ENTERPRISE}]
    assert outcome["entry"]["command"]["id"].startswith("sc-exchange-")
    assert verify.verify_entry_signature(outcome["entry"]).name == "sc-exchange"

    document = {"id": "deposit-0001", "ops": [{"op": "cny.deposit", "account": SC_ENTERPRISE, "amount": "100.00"}]}
    first = json.loads(_ok(_submit(runner, tmp_path, "sc-exchange", document)))
    again = json.loads(_ok(_submit(runner, tmp_path, "sc-exchange", document)))
    assert first == again and first["entry"]["command"]["id"] == "deposit-0001"
    assert _size(app) == before + 2


def test_submit_refusals_are_one_line(runner, app, tmp_path):
    _add(runner, "sc-exchange", "--role", "operator", "--province", "SC")
    before = _size(app)
    bad = "SC:ENT:91510100MA6C00001X"
    assert uscc_error(bad[7:])

    error = _one_line_error(_submit(runner, tmp_path, "sc-exchange", [
        {"op": "account.open", "account": SC_ENTERPRISE, "name": "ok"},
        {"op": "account.open", "account": bad, "name": "bad"}]))
    assert error.startswith("Error: INVALID_USCC: the check character of") and error.endswith("(op 1)")
    error = _one_line_error(_submit(runner, tmp_path, "sc-exchange",
                                    [{"op": "account.open", "account": CQ_ENTERPRISE, "name": "CQ"}]))
    assert error.startswith("Error: FORBIDDEN_PROVINCE:") and error.endswith("(op 0)")
    error = _one_line_error(_submit(runner, tmp_path, "sc-exchange", [{"op": "no.such"}]))
    assert error == "Error: UNKNOWN_OP: there is no operation 'no.such' (op 0)"
    assert "INVALID_COMMAND" in _one_line_error(_submit(runner, tmp_path, "sc-exchange", []))
    assert "the file's command is cq-exchange's" in _one_line_error(
        _submit(runner, tmp_path, "sc-exchange", {"actor": "cq-exchange", "ops": []}))
    assert "a JSON list of ops or a command object" in _one_line_error(_submit(runner, tmp_path, "sc-exchange", {"x": 1}))
    assert "no private key for ghost" in _one_line_error(_submit(runner, tmp_path, "ghost", [{"op": "x"}]))
    (tmp_path / "broken.json").write_text("[{", encoding="utf-8")
    assert "is not JSON" in _one_line_error(runner.invoke(args=["submit", str(tmp_path / "broken.json"),
                                                                "--as", "sc-exchange"]))
    (tmp_path / "ops.json").write_text('[{"op": "x"}]', encoding="utf-8")
    assert "needs a token" in _one_line_error(runner.invoke(
        args=["submit", str(tmp_path / "ops.json"), "--as", "sc-exchange", "--url", "http://127.0.0.1:9"],
        env={"ECOLEDGER_TOKEN": ""}))
    assert _size(app) == before


# -- expire -----------------------------------------------------------------------------------


def test_expire_appends_each_expiry_once(runner, app, tmp_path):
    _add(runner, "sc-sthj", "--role", "issuer", "--province", "SC", "--instrument", "PDR")
    _add(runner, "sc-exchange", "--role", "operator", "--province", "SC")
    _ok(_submit(runner, tmp_path, "sc-exchange", [{"op": "account.open", "account": SC_ENTERPRISE, "name": "A"}]))
    old = {"pollutant": "COD", "valid_from": "2020-01-01", "valid_until": "2024-12-31"}
    current = {"pollutant": "COD", "valid_from": "2025-01-01", "valid_until": "2029-12-31"}
    _ok(_submit(runner, tmp_path, "sc-sthj", [
        {"op": "asset.define", "instrument": "PDR", "attributes": old},
        {"op": "asset.define", "instrument": "PDR", "attributes": current},
        {"op": "issue", "asset": "PDR-SC-COD-20200101-20241231", "to": SC_ENTERPRISE, "quantity": "10.5"},
        {"op": "issue", "asset": "PDR-SC-COD-20250101-20291231", "to": SC_ENTERPRISE, "quantity": "7"}]))
    _ok(_submit(runner, tmp_path, "sc-exchange", [{"op": "pledge", "account": SC_ENTERPRISE, "pledgee": "银行",
                                                   "asset": "PDR-SC-COD-20200101-20241231", "quantity": "3"}]))
    size = _size(app)

    output = _ok(runner.invoke(args=["expire"]))
    assert output == f"expired asset PDR-SC-COD-20200101-20241231 at seq {size}\n"
    assert _ok(runner.invoke(args=["expire"])) == "nothing to expire\n"
    assert _size(app) == size + 1
    with app.app_context(), get_store().reader() as session:
        assert session.get(Balance, (SC_ENTERPRISE, "PDR-SC-COD-20200101-20241231")).total == 0
        assert session.get(Balance, ("SC:SINK:expired", "PDR-SC-COD-20200101-20241231")).total == 10500
        assert session.get(Balance, (SC_ENTERPRISE, "PDR-SC-COD-20250101-20291231")).total == 7000
        assert session.exec(select(Hold)).scalars().one().released_seq == size
        entry = get_store().entry(size).entry
    assert entry["command"] == {"id": "expire:PDR-SC-COD-20200101-20241231", "actor": "ledger",
                                "ops": [{"op": "expire", "asset": "PDR-SC-COD-20200101-20241231"}]}


def _clock_ahead(monkeypatch, delta: timedelta) -> None:
    """Run the ledger's clock (entry times) and the expiry command's ``delta`` ahead."""

    class Later(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) + delta

    monkeypatch.setattr("ledger.store.datetime", Later)
    monkeypatch.setattr("api.cli.datetime", Later)


# -- the demo ---------------------------------------------------------------------------------


def test_demo_twice_appends_nothing_the_second_time(runner, client, app):
    first = _ok(runner.invoke(args=["demo"]))
    size = _size(app)
    assert f"appended {size - 1} entries" in first
    home = app.config["ECOLEDGER"].home
    tokens_path = home / "demo-tokens.json"
    tokens = json.loads(tokens_path.read_text(encoding="utf-8"))
    assert stat.S_IMODE(os.stat(tokens_path).st_mode) == 0o600

    second = _ok(runner.invoke(args=["demo"]))
    assert "nothing appended" in second
    assert _size(app) == size
    assert json.loads(tokens_path.read_text(encoding="utf-8")) == tokens

    keys = client.get("/v1/log/keys").get_json()["principals"]
    assert sorted(keys) == sorted(p.name for p in PARTIES)
    for party in PARTIES:
        path = principal_key_path(home, party.name)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert keys[party.name][0]["key"] == str(load_key(path, party.name).verifier)
        with app.test_request_context(headers={"Authorization": f"Bearer {tokens['principals'][party.name]['token']}"}):
            assert current_principal().name == party.name

    entries, start = [], 0
    while start is not None:
        page = client.get(f"/v1/log/entries?start={start}&limit=7").get_json()
        entries += page["entries"]
        start = page["next"]
    assert [e["seq"] for e in entries] == list(range(size))
    actors = {e["entry"]["command"]["actor"] for e in entries[1:]}
    assert actors == {"ledger", "admin", "sc-sthj", "sc-slt", "sc-fgw", "cd-sthj", "cq-sthj", "cq-slj", "cq-fgw",
                      "cq-sthj-thc", "sc-exchange", "cq-exchange", "sc-finance", "cq-finance", "sc-monitor",
                      "cq-monitor"}
    for item in entries[1:]:
        if item["entry"]["command"]["actor"] != "ledger":
            assert verify.verify_entry_signature(item["entry"]).name == item["entry"]["command"]["actor"]
    ops = {op["op"] for e in entries for op in e["entry"]["command"]["ops"]}
    assert {"account.open", "asset.define", "issue", "cny.deposit", "trade", "trade.confirm", "pledge",
            "account.freeze", "transfer", "retire", "surrender", "agreement.propose", "agreement.sign",
            "monitoring.submit", "monitoring.correct", "settlement.statement", "clearing.run",
            "clearing.confirm"} <= ops
    defined = {op["instrument"] for e in entries for op in e["entry"]["command"]["ops"] if op["op"] == "asset.define"}
    assert defined == {"PDR", "WR", "EUR", "CHTF", "CQCER"}
    assert all(uscc_error(e.account.split(":")[2]) is None for e in ENTERPRISES.values())

    with app.app_context(), get_store().reader() as session:
        statuses = sorted(t.status for t in session.exec(select(Trade)).scalars())
        assert statuses == ["confirmed", "pending", "settled", "settled"]
        kinds = sorted(h.kind for h in session.exec(select(Hold).where(Hold.released_seq.is_(None))).scalars())
        assert kinds == ["freeze", "pledge", "trade", "trade"]


DEMO_DAY = date(2025, 9, 1)
"""The demo as run on 1 September 2025: monthly data up to August 2025, yearly up to 2024;
with 10 grace days the statements of January to July 2025 and of 2024 are due."""


def _demo_on(app, day: date = DEMO_DAY, **kwargs):
    with app.app_context():
        return run_demo(get_store(), app.config["ECOLEDGER"].home, today=day, grace_days=10, **kwargs)


def test_demo_loads_the_sample_agreements_settles_and_clears(app, client):
    result = _demo_on(app)
    size = _size(app)
    again = _demo_on(app)
    assert again.appended == 0 and _size(app) == size
    assert again.compensation == result.compensation
    c = result.compensation
    assert (c.agreements, c.notes, sorted(c.runs)) == (
        ["qiongjiang", "qujiang", "laixihe"], [], ["compensation", "trade"])
    # 琼江 and 濑溪河: 2024-01 to 2025-08, 20 months each; 渠江: 2023 and 2024, 24 months.
    assert c.submissions == 20 + 24 + 20
    auditor = {"Authorization": f"Bearer {result.tokens['auditor']}"}

    def read(url, **params):
        response = client.get(url, headers=auditor, query_string=params)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    agreements = read("/v1/agreements")["items"]
    assert [(a["id"], a["status"]) for a in agreements] == [
        ("laixihe", "active"), ("qiongjiang", "active"), ("qujiang", "active")]
    signatures = {a["id"]: [(s["party"], s["principal"]) for s in read(f"/v1/agreements/{a['id']}")[
        "versions"][0]["signatures"]] for a in agreements}
    assert signatures == {"qiongjiang": [("SC", "sc-finance"), ("CQ", "cq-finance")],
                          "qujiang": [("SC", "sc-finance"), ("CQ", "cq-finance")],
                          "laixihe": [("CQ", "cq-finance"), ("SC", "sc-finance")]}

    # Samples are drawn from a generator seeded by section and date: the same on every machine.
    first = read("/v1/monitoring/submissions", limit=1)["items"][0]
    assert (first["section"], first["submitted_by"], first["first_date"]) == ("qj-guanghui", "cq-monitor", "2024-01-08")
    assert read(f"/v1/monitoring/submissions/{first['id']}")["samples"] == [
        {"date": "2024-01-08", "values": {"CODMn": "4.1", "NH3N": "0.360", "TP": "0.105"}},
        {"date": "2024-01-22", "values": {"CODMn": "4.1", "NH3N": "0.415", "TP": "0.105"}}]
    corrected = read("/v1/monitoring/submissions", current="false")["items"]
    assert [(x["section"], x["first_date"]) for x in corrected] == [("qj-guanghui", "2025-06-08")]

    statements = read("/v1/agreements/qiongjiang/statements", current="true")["items"]
    assert [x["period"] for x in statements] == [f"2025-{m:02d}" for m in range(1, 8)]
    june = read("/v1/agreements/qiongjiang/statements/2025-06")
    typo = read(f"/v1/statements/{june['history'][0]['id']}")
    # The typo (TP ten times too high) makes the month 劣V: missed, −1,000,000, and the index
    # change is capped at −400,000: Sichuan owes Chongqing 1,400,000.00, undone by the correction.
    assert (typo["sections"][0]["class"], typo["transfers"]) == (
        6, [{"from": "SC", "to": "CQ", "amount": "1400000.00"}])
    assert [r["amount"] for r in typo["statement"]["sections"][0]["rules"]] == ["-1000000.00", "-400000.00"]
    assert june["sections"][0]["class"] <= 3 and june["supersedes"] == typo["id"]
    # 濑溪河: (III − class) × 300,000 every month; 渠江: the 2024 statement only.
    for item in read("/v1/agreements/laixihe/statements")["items"]:
        section = item["sections"][0]
        assert Decimal(section["amount"]) == (3 - section["class"]) * 300000
    assert [x["period"] for x in read("/v1/agreements/qujiang/statements")["items"]] == ["2024"]

    runs = {r["pool"]: r for r in read("/v1/clearing/runs")["items"]}
    compensation, trade = runs["compensation"], runs["trade"]
    gross = {(g["from"], g["to"]): Decimal(g["amount"]) for g in compensation["gross"]}
    owed = gross.get(("CQ:FIN:treasury", "SC:FIN:treasury"), 0) - gross.get(("SC:FIN:treasury", "CQ:FIN:treasury"), 0)
    [payment] = compensation["payments"]
    assert Decimal(payment["amount"]) == abs(owed) and payment["status"] == "settled"
    assert (payment["payer_confirmed_by"], payment["payee_confirmed_by"]) == (
        ("cq-finance", "sc-finance") if owed > 0 else ("sc-finance", "cq-finance"))
    assert compensation["status"] == "settled"
    assert trade["payments"] == [{
        "id": f"{trade['id']}-0", "payer": "CQ:EXC:cq-exchange", "payee": "SC:EXC:sc-exchange",
        "amount": "428000.00", "payer_confirmed_by": "cq-exchange", "payee_confirmed_by": None,
        "waiting_for": ["payee"], "status": "waiting", "settled_seq": None}]  # 80 t × 5350 元
    assert c.waiting == [payment["id"] for payment in trade["payments"]]
    assert read("/v1/obligations/summary")["items"] == []
    lines = result.compensation_lines()
    assert any("qiongjiang, qujiang, laixihe" in line for line in lines)
    assert any(trade["id"] in line and "trade pool" in line for line in lines)


def test_demo_without_the_sample_agreements_says_so_and_clears_trades(app, tmp_path):
    result = _demo_on(app, agreements_dir=tmp_path / "not-there")
    c = result.compensation
    assert c.agreements == [] and c.submissions == 0 and list(c.runs) == ["trade"]
    assert len(c.notes) == 1 and "no sample agreements" in c.notes[0] and str(tmp_path / "not-there") in c.notes[0]
    assert result.compensation_lines()[0] == c.notes[0]
    with app.app_context(), get_store().reader() as session:
        assert session.exec(select(Agreement)).scalars().all() == []
    size = _size(app)
    assert _demo_on(app, agreements_dir=tmp_path / "not-there").appended == 0 and _size(app) == size


def test_expire_after_the_demo_expires_the_lapsed_asset_and_the_pending_trade(runner, app, monkeypatch):
    _ok(runner.invoke(args=["demo"]))
    size = _size(app)
    _clock_ahead(monkeypatch, timedelta(days=31))
    with app.app_context(), get_store().reader() as session:
        pending = session.exec(select(Trade).where(Trade.status == "pending")).scalars().one().id

    output = _ok(runner.invoke(args=["expire"]))
    assert output.splitlines() == [f"expired trade {pending} at seq {size}",
                                   f"expired asset PDR-CQ-SO2-20210101-20251231 at seq {size + 1}"]
    assert _ok(runner.invoke(args=["expire"])) == "nothing to expire\n"
    assert "nothing appended" in _ok(runner.invoke(args=["demo"]))
    assert _size(app) == size + 2
    with app.app_context(), get_store().reader() as session:
        assert session.get(Trade, pending).status == "expired"
        assert all(b.held == 0 for b in session.exec(select(Balance)).scalars())


# -- the client against a tiny server ---------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    """Answers from ``server.routes[path](handler, query, body) -> (status, headers, body)``."""

    def _answer(self):
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.server.requests.append({"method": self.command, "path": parts.path, "query": parse_qs(parts.query),
                                     "headers": dict(self.headers), "body": body})
        route = self.server.routes.get(parts.path)
        status, headers, answer = route(parse_qs(parts.query), body) if route else (404, {}, {"code": "NOT_FOUND"})
        data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        self.send_response(status)
        headers.setdefault("Content-Type", "application/json" if status < 400 else "application/problem+json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


class _TinyServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() waits for every handler: nothing runs after its test

    def handle_error(self, request, client_address):
        """A client that gave up (the timeout test) is no failure of the server; stay quiet."""


@contextmanager
def tiny_server(routes):
    server = _TinyServer(("127.0.0.1", 0), _Recorder)
    server.routes, server.requests = routes, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


TOKEN = "ecl_test-secret-token-value"


def test_client_signs_commands_its_actor_can_verify():
    key = SigningKey.generate("sc-exchange")
    client = Client("http://127.0.0.1:9", token=TOKEN, name="sc-exchange", key=key)
    command = client.command([{"op": "cny.deposit", "account": SC_ENTERPRISE, "amount": "1.00"}])
    assert command["actor"] == "sc-exchange" and command["id"].startswith("sc-exchange-")
    assert client.command([{"op": "x"}])["id"] != command["id"]
    envelope = client.sign(command)
    assert envelope == sign_command(key, command)
    assert set(envelope) == {"command", "signature"}
    entry = {"seq": 0, "command": envelope["command"], "signature": envelope["signature"], "key": str(key.verifier)}
    assert verify.verify_entry_signature(entry) == key.verifier
    with pytest.raises(verify.VerificationError):
        verify.verify_entry_signature({**entry, "command": {**command, "id": "other"}})
    with pytest.raises(ValueError, match="signs its own only"):
        client.sign({**command, "actor": "cq-exchange"})
    with pytest.raises(ValueError, match="no signing key"):
        Client("http://127.0.0.1:9", token=TOKEN, name="sc-exchange").sign(command)
    with pytest.raises(ValueError, match="http:// or https://"):
        Client("file:///etc/passwd", token=TOKEN, name="sc-exchange")
    assert TOKEN not in repr(client) and "PRIVATE" not in repr(client)


def test_client_posts_envelopes_and_raises_problems_without_secrets():
    key = SigningKey.generate("sc-exchange")
    outcome = {"seq": 7, "leaf_hash": "AA==", "entry": {}, "results": [{}]}
    routes = {
        "/v1/commands": lambda query, body: (201, {}, outcome) if body["command"]["id"] == "good" else (
            409, {}, {"type": "about:blank", "status": 409, "code": "INSUFFICIENT_BALANCE",
                      "detail": "SC:ENT:x would have -1.00 of CNY available", "op": 1}),
        "/v1/commands/batch": lambda query, body: (200, {}, {"results": [
            {"status": 201, "body": outcome}, {"status": 422, "body": {"code": "INVALID_OP", "detail": "no"}}]}),
        "/html": lambda query, body: (502, {"Content-Type": "text/html"}, b"<html>bad gateway</html>"),
    }
    with tiny_server(routes) as (server, url):
        client = Client(url + "/", token=TOKEN, name="sc-exchange", key=key, timeout=5)
        assert client.submit([{"op": "x"}], command_id="good") == outcome
        sent = server.requests[-1]
        assert sent["method"] == "POST" and sent["headers"]["Authorization"] == f"Bearer {TOKEN}"
        assert sent["headers"]["Content-Type"] == "application/json"
        assert verify.verify_entry_signature({**sent["body"], "key": str(key.verifier)}).name == "sc-exchange"

        with pytest.raises(ClientError) as refused:
            client.submit([{"op": "x"}, {"op": "y"}], command_id="bad")
        error = refused.value
        assert (error.status, error.code, error.op) == (409, "INSUFFICIENT_BALANCE", 1)
        assert str(error) == "INSUFFICIENT_BALANCE: SC:ENT:x would have -1.00 of CNY available (op 1)"
        assert TOKEN not in str(error) + repr(error) + repr(client)

        results = client.submit_batch([[{"op": "x"}], {"id": "b-2", "ops": [{"op": "y"}]}])
        assert [r["status"] for r in results] == [201, 422]
        batch = server.requests[-1]["body"]["commands"]
        assert [e["command"]["id"] for e in batch][1] == "b-2"
        assert all(verify.verify_entry_signature({**e, "key": str(key.verifier)}) for e in batch)

        with pytest.raises(ClientError) as not_json:
            client.get("/html")
        assert not_json.value.code == "HTTP_502" and "bad gateway" in str(not_json.value)
        with pytest.raises(ClientError) as missing:
            client.get("/nowhere")
        assert missing.value.status == 404 and missing.value.code == "NOT_FOUND"


def test_client_follows_cursors_and_log_pages():
    items = [f"item-{i}" for i in range(7)]

    def listing(query, body):
        start = int(query.get("cursor", ["0"])[0].removeprefix("c"))
        size = int(query["limit"][0])
        following = start + size
        return 200, {}, {"items": items[start:following], "next": f"c{following}" if following < len(items) else None}

    def log_entries(query, body):
        start, limit = int(query["start"][0]), int(query.get("limit", ["2"])[0])
        seqs = range(start, min(start + limit, 5))
        return 200, {}, {"entries": [{"seq": s, "leaf_hash": "", "entry": {"seq": s}} for s in seqs],
                         "next": seqs[-1] + 1 if seqs[-1] + 1 < 5 else None}

    def stuck(query, body):
        return 200, {}, {"items": [1], "next": "same"}

    with tiny_server({"/v1/things": listing, "/v1/log/entries": log_entries, "/stuck": stuck}) as (server, url):
        client = Client(url, token=TOKEN, name="auditor")
        assert list(client.pages("/v1/things", limit=3, province=None)) == items
        assert [r["query"].get("cursor") for r in server.requests] == [None, ["c3"], ["c6"]]
        assert all("province" not in r["query"] for r in server.requests)
        assert [e["seq"] for e in client.entries()] == [0, 1, 2, 3, 4]
        assert [e["seq"] for e in client.entries(3, limit=1)] == [3, 4]
        with pytest.raises(ClientError, match="same cursor"):
            list(client.pages("/stuck"))


def test_client_follows_no_redirect_and_times_out():
    def slow(query, body):
        time.sleep(0.6)
        return 200, {}, {}

    routes = {"/moved": lambda query, body: (307, {"Location": "/elsewhere"}, b""),
              "/elsewhere": lambda query, body: (200, {}, {"leaked": True}), "/slow": slow}
    with tiny_server(routes) as (server, url):
        client = Client(url, token=TOKEN, name="auditor", timeout=0.3)
        with pytest.raises(ClientError) as moved:
            client.get("/moved")
        assert moved.value.status == 307
        assert [r["path"] for r in server.requests] == ["/moved"]
        with pytest.raises(ClientError) as slow_error:
            client.get("/slow")
        assert slow_error.value.status is None and slow_error.value.code == "UNREACHABLE"
        assert TOKEN not in str(slow_error.value)


# -- the client against the real application over HTTP ---------------------------------------


@contextmanager
def served(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def test_client_and_submit_url_against_the_served_application(runner, app, tmp_path):
    added = _add(runner, "sc-exchange", "--role", "operator", "--province", "SC")
    key = load_key(added["private_key_path"], "sc-exchange")
    with served(app) as url:
        client = Client(url, token=added["token"], name="sc-exchange", key=key)
        ops = [{"op": "account.open", "account": SC_ENTERPRISE, "name": "成都某化工有限公司"}]
        first = client.submit(ops, command_id="open-1")
        assert first["results"] == [{"account": SC_ENTERPRISE}]
        assert client.submit(ops, command_id="open-1") == first
        with pytest.raises(ClientError) as refused:
            client.submit([{"op": "account.open", "account": CQ_ENTERPRISE, "name": "x"}])
        assert (refused.value.status, refused.value.code, refused.value.op) == (403, "FORBIDDEN_PROVINCE", 0)
        with pytest.raises(ClientError) as unauthenticated:
            Client(url, token="ecl_wrong", name="sc-exchange", key=key).submit(ops)
        assert unauthenticated.value.status == 401

        path = tmp_path / "deposit.json"
        path.write_text(json.dumps([{"op": "cny.deposit", "account": SC_ENTERPRISE, "amount": "12.50"}]))
        printed = json.loads(_ok(runner.invoke(args=["submit", str(path), "--as", "sc-exchange", "--url", url],
                                               env={"ECOLEDGER_TOKEN": added["token"]})))
        assert printed["seq"] == first["seq"] + 1
        path.write_text(json.dumps([{"op": "cny.deposit", "account": SC_ENTERPRISE, "amount": "-1"}]))
        error = _one_line_error(runner.invoke(args=["submit", str(path), "--as", "sc-exchange", "--url", url,
                                                    "--token", added["token"]]))
        assert error.startswith("Error: INVALID_QUANTITY:") and error.endswith("(op 0)")
        assert added["token"] not in error

        entries = list(client.entries(limit=1))
        assert [e["seq"] for e in entries] == list(range(_size(app)))
        assert entries[-1]["entry"]["command"]["ops"][0]["op"] == "cny.deposit"

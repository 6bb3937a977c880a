"""The registry's reads (specs/ledger-api.md §5): balances, histories, asset totals, serial traces,
trades, holds, obligations and principals, paginated and scoped to the caller's province.

The world is built by :func:`support.registry.standard_world` (see :class:`support.registry.World`
for every movement); the figures asserted here are worked out by hand from those movements.
"""

import base64
import json
from urllib.parse import quote

import pytest

from support.reads import get, ok, problem, walk
from support.registry import Registry, enterprise, standard_world


@pytest.fixture
def world(app):
    return standard_world(app)


def balances(client, account: str, who) -> dict[str, dict]:
    body = ok(client, f"/v1/accounts/{account}", who)
    return {b["asset"]: {k: b[k] for k in ("total", "available", "frozen", "pledged", "held")}
            for b in body["balances"]}


def row(total, available=None, frozen=None, pledged=None, held=None, zero="0.000") -> dict:
    return {"total": total, "available": available or total, "frozen": frozen or zero,
            "pledged": pledged or zero, "held": held or zero}


# -- balances and totals -------------------------------------------------------------------------


def test_balances_are_what_the_commands_imply(client, world):
    auditor, a = world["auditor"], world.assets
    A, B, C, D = (world.accounts[k] for k in "ABCD")
    cents = "0.00"
    assert balances(client, A, auditor) == {
        # 100.000 issued − 10.500 (to B) − 20.000 (to C); 5.000 held by the pending trade, 30.000 pledged
        a["pdr"]: row("69.500", "34.500", pledged="30.000", held="5.000"),
        # 1296.23 from B (10.5 × 123.45 = 1296.225, half-up) + 2000.00 from C + 300.00 for credits
        "CNY": row("3596.23", zero=cents),
        a["wr"]: row("1000", zero="0"),  # 1000 + 200 − 200 reversed
        a["chtf"]: row("60", zero="0"),  # 100 − 30 to B − 10 to C
    }
    assert balances(client, B, auditor) == {
        a["pdr"]: row("9.500", "7.500", frozen="2.000"),  # 10.500 bought − 1.000 surrendered; 2.000 frozen
        "CNY": row("8703.77", zero=cents),  # 10000.00 − 1296.23
        a["eur"]: row("379.750"),  # 500.000 − 120.250 surrendered
        a["chtf"]: row("25", zero="0"),  # 30 − 5 retired
    }
    assert balances(client, C, auditor) == {
        a["pdr"]: row("20.000"),
        "CNY": row("2700.00", "2450.00", held="250.00", zero=cents),  # 5000 − 2000 − 300; 250.00 held
        a["chtf"]: row("7", zero="0"),  # 10 bought − 3 retired
        a["cqcer"]: row("40", zero="0"),
        a["pdr_cq"]: row("40.000"),
    }
    assert balances(client, D, auditor) == {a["old"]: row("0.000")}  # 7.500 expired
    assert ok(client, f"/v1/accounts/{D}", auditor)["frozen_by"] == world.holds["account_freeze"]
    # The exchanges owe their depositors; the seller's exchange paid the sellers of both cross trades.
    assert balances(client, "SC:EXC:sc-exchange", auditor)["CNY"]["total"] == "-12300.00"
    assert balances(client, "CQ:EXC:cq-exchange", auditor)["CNY"]["total"] == "-2700.00"
    assert balances(client, "SC:ISS:sc-sthj", auditor)[a["pdr"]]["total"] == "-100.000"
    account = ok(client, f"/v1/accounts/{A}", auditor)
    assert {k: account[k] for k in ("id", "province", "kind", "name", "frozen_by")} == {
        "id": A, "province": "SC", "kind": "ENT", "name": "成都甲化工有限公司", "frozen_by": None}


def test_asset_totals_are_what_the_commands_imply(client, world):
    auditor, a = world["auditor"], world.assets

    def totals(asset: str) -> dict:
        return ok(client, f"/v1/assets/{asset}", auditor)["totals"]

    assert totals(a["pdr"]) == {"issued": "100.000", "outstanding": "99.000", "surrendered": "1.000",
                                "retired": "0.000", "expired": "0.000"}
    assert totals(a["eur"]) == {"issued": "500.000", "outstanding": "379.750", "surrendered": "120.250",
                                "retired": "0.000", "expired": "0.000"}
    assert totals(a["wr"]) == {"issued": "1000", "outstanding": "1000", "surrendered": "0", "retired": "0",
                               "expired": "0"}
    # retired in both provinces' sinks: 5 by B in SC, 3 by C in CQ
    assert totals(a["chtf"]) == {"issued": "100", "outstanding": "92", "surrendered": "0", "retired": "8",
                                 "expired": "0"}
    assert totals(a["cqcer"]) == {"issued": "50", "outstanding": "40", "surrendered": "0", "retired": "10",
                                  "expired": "0"}
    assert totals(a["old"]) == {"issued": "7.500", "outstanding": "0.000", "surrendered": "0.000",
                                "retired": "0.000", "expired": "7.500"}
    assert totals("CNY") == {"issued": "15000.00", "outstanding": "15000.00", "surrendered": "0.00",
                             "retired": "0.00", "expired": "0.00"}

    chtf = ok(client, f"/v1/assets/{a['chtf']}", auditor)
    assert {k: chtf[k] for k in ("instrument", "decimals", "issuer", "province", "attributes", "expires_on",
                                 "expired_seq", "last_serial", "unit")} == {
        "instrument": "CHTF", "decimals": 0, "issuer": "cd-sthj", "province": "SC", "unit": "tCO2e",
        "attributes": {"methodology": "cdcer-001", "project": "chengdu-metro", "vintage": 2024},
        "expires_on": None, "expired_seq": None, "last_serial": 100}
    old = ok(client, f"/v1/assets/{a['old']}", auditor)
    assert old["expires_on"] == "2024-12-31" and isinstance(old["expired_seq"], int)
    assert ok(client, f"/v1/assets/{a['pdr']}", auditor)["last_serial"] is None

    # Conservation, for every asset: what was issued is held, surrendered, retired or expired.
    for asset in walk(client, "/v1/assets", auditor, limit=2):
        decimals, t = asset["decimals"], asset["totals"]
        units = {k: int(v.replace(".", "")) for k, v in t.items()}
        assert all(len(v.partition(".")[2]) == decimals for v in t.values())
        assert units["issued"] == sum(units[k] for k in ("outstanding", "surrendered", "retired", "expired"))
    assert {x["id"] for x in walk(client, "/v1/assets", auditor, limit=100, instrument="PDR")} == {
        a["pdr"], a["pdr_cq"], a["old"]}
    assert {x["id"] for x in walk(client, "/v1/assets", auditor, limit=100, province="CQ")} == {
        a["pdr_cq"], a["old"], a["cqcer"]}


def test_history_lists_postings_in_log_order_with_signed_amounts(client, world):
    auditor, a, B = world["auditor"], world.assets, world.accounts["B"]
    items = walk(client, f"/v1/accounts/{B}/history", auditor, limit=3)
    assert [(i["operation"], i["asset"], i["amount"]) for i in items] == [
        ("cny.deposit", "CNY", "10000.00"),
        ("trade", a["pdr"], "10.500"),
        ("trade", "CNY", "-1296.23"),
        ("surrender", a["pdr"], "-1.000"),
        ("issue", a["eur"], "500.000"),
        ("surrender", a["eur"], "-120.250"),
        ("transfer", a["chtf"], "30"),
        ("retire", a["chtf"], "-5"),
    ]
    keys = [(i["seq"], i["n"]) for i in items]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert all(i["time"].endswith("Z") and i["op"] == 0 and i["reversed_by"] is None for i in items)
    assert {i["actor"] for i in items} == {"sc-exchange", "sc-sthj"}
    only_cny = walk(client, f"/v1/accounts/{B}/history", auditor, limit=100, asset="CNY")
    assert [i["amount"] for i in only_cny] == ["10000.00", "-1296.23"]

    # A reversed issuance: the mistake says who reversed it, and the reversal posts the opposite.
    wr = walk(client, f"/v1/accounts/{world.accounts['A']}/history", auditor, limit=100, asset=a["wr"])
    assert [(i["seq"], i["operation"], i["amount"], i["reversed_by"]) for i in wr] == [
        (world.seqs["wr_mistake"] - 1, "issue", "1000", None),
        (world.seqs["wr_mistake"], "issue", "200", world.seqs["wr_reversal"]),
        (world.seqs["wr_reversal"], "reverse", "-200", None),
    ]
    # The postings of every account of an asset sum to its balances.
    for account in (world.accounts[k] for k in "ABCD"):
        sums: dict[str, int] = {}
        for item in walk(client, f"/v1/accounts/{account}/history", auditor, limit=1000):
            sums[item["asset"]] = sums.get(item["asset"], 0) + int(item["amount"].replace(".", ""))
        assert sums == {asset: int(b["total"].replace(".", ""))
                        for asset, b in balances(client, account, auditor).items()}


def test_serial_trace_from_issuance_to_retirement(client, world):
    chtf, A, B, C = world.assets["chtf"], *(world.accounts[k] for k in "ABC")
    cq = world["cq-exchange"]  # a 碳惠天府 serial is readable in Chongqing too (川渝互认)

    def trace(serial, who=cq, **params):
        return ok(client, f"/v1/assets/{chtf}/serials/{serial}", who, **params)

    t = trace(12)
    assert {k: t[k] for k in ("asset", "serial", "holder", "status", "block", "next")} == {
        "asset": chtf, "serial": 12, "holder": "SC:SINK:retired", "status": "retired",
        "block": f"{chtf}-11-15", "next": None}
    assert [(m["kind"], m["from"], m["to"], m["block"]) for m in t["items"]] == [
        ("issue", "SC:ISS:cd-sthj", A, f"{chtf}-1-100"),
        ("transfer", A, B, f"{chtf}-11-40"),
        ("retire", B, "SC:SINK:retired", f"{chtf}-11-15"),
    ]
    assert t["issued_seq"] == t["items"][0]["seq"]
    assert all(m["time"].endswith("Z") for m in t["items"])

    crossed = trace(2)  # sold to Chongqing, retired there
    assert (crossed["holder"], crossed["status"]) == ("CQ:SINK:retired", "retired")
    assert [(m["kind"], m["from"], m["to"]) for m in crossed["items"]] == [
        ("issue", "SC:ISS:cd-sthj", A), ("trade", A, C), ("retire", C, "CQ:SINK:retired")]
    assert [m["block"] for m in walk(client, f"/v1/assets/{chtf}/serials/2", cq, limit=1)] == [
        m["block"] for m in crossed["items"]]

    held = trace(50)
    assert (held["holder"], held["status"], held["block"]) == (A, "held", f"{chtf}-41-100")
    assert [m["kind"] for m in held["items"]] == ["issue"]
    assert trace(100)["holder"] == A

    problem(get(client, f"/v1/assets/{chtf}/serials/101", cq), 404, "UNKNOWN_SERIAL")
    problem(get(client, f"/v1/assets/{world.assets['pdr']}/serials/1", cq), 404, "UNKNOWN_SERIAL")
    problem(get(client, "/v1/assets/CHTF-nope-nope-2024/serials/1", cq), 404, "UNKNOWN_ASSET")
    for bad in ("0", "-1", "abc", "1.5", "٣", "9" * 40):
        problem(get(client, f"/v1/assets/{chtf}/serials/{bad}", cq), 400, "INVALID_PARAMETER")


def test_trades_pledges_freezes_and_obligations(client, world):
    auditor, t, h = world["auditor"], world.trades, world.holds
    A, B, C, D = (world.accounts[k] for k in "ABCD")
    trades = walk(client, "/v1/trades", auditor, limit=2)
    assert [x["id"] for x in trades] == [t["local"], t["confirmed"], t["pending"], t["carbon"]]
    assert [x["status"] for x in trades] == ["settled", "confirmed", "pending", "confirmed"]
    pending = ok(client, "/v1/trades", auditor, status="pending")["items"]
    assert [x["id"] for x in pending] == [t["pending"]]
    assert {k: pending[0][k] for k in ("asset", "quantity", "price", "amount", "seller", "buyer",
                                       "seller_exchange", "buyer_exchange", "closed_seq")} == {
        "asset": world.assets["pdr"], "quantity": "5.000", "price": "50", "amount": "250.00", "seller": A,
        "buyer": C, "seller_exchange": "SC:EXC:sc-exchange", "buyer_exchange": None, "closed_seq": None}
    local = ok(client, f"/v1/trades/{t['local']}", auditor)
    assert (local["quantity"], local["price"], local["amount"]) == ("10.500", "123.45", "1296.23")
    assert [x["id"] for x in ok(client, "/v1/trades", auditor, account=B)["items"]] == [t["local"]]
    assert [x["id"] for x in ok(client, "/v1/trades", auditor, asset=world.assets["chtf"])["items"]] == [t["carbon"]]

    pledges = ok(client, "/v1/pledges", auditor)["items"]
    assert [(p["id"], p["account"], p["quantity"], p["details"]["pledgee"], p["open"]) for p in pledges] == [
        (h["pledge"], A, "30.000", "成都银行", True)]
    freezes = ok(client, "/v1/freezes", auditor)["items"]
    assert [(f["id"], f["account"], f["asset"], f["quantity"]) for f in freezes] == [
        (h["freeze"], B, world.assets["pdr"], "2.000"), (h["account_freeze"], D, None, None)]
    assert ok(client, "/v1/freezes", auditor, account=D)["items"][0]["details"] == {"reason": "司法冻结"}

    world.registry.command("sc-exchange", {"op": "pledge.release", "pledge": h["pledge"]})
    assert ok(client, "/v1/pledges", auditor, open="true")["items"] == []
    released = ok(client, "/v1/pledges", auditor, open="false")["items"]
    assert [(p["id"], p["open"]) for p in released] == [(h["pledge"], False)]
    assert isinstance(released[0]["released_seq"], int)
    assert balances(client, A, auditor)[world.assets["pdr"]]["available"] == "64.500"  # 69.500 − 5.000 held

    obligations = ok(client, "/v1/obligations", auditor)["items"]
    assert [(o["id"], o["pool"], o["debtor"], o["creditor"], o["amount"], o["status"]) for o in obligations] == [
        (world.obligation, "trade", "CQ:EXC:cq-exchange", "SC:EXC:sc-exchange", "2000.00", "open"),
        (obligations[1]["id"], "trade", "CQ:EXC:cq-exchange", "SC:EXC:sc-exchange", "300.00", "open")]
    assert all(o["created_at"].endswith("Z") for o in obligations)
    assert ok(client, "/v1/obligations", auditor, pool="compensation")["items"] == []
    assert len(ok(client, "/v1/obligations", auditor, debtor="CQ:EXC:cq-exchange", status="open")["items"]) == 2
    assert ok(client, "/v1/obligations", auditor, creditor="CQ:EXC:cq-exchange")["items"] == []


# -- pagination ----------------------------------------------------------------------------------

LISTS = ["/v1/accounts", "/v1/accounts/{A}/history", "/v1/accounts/{C}/history", "/v1/assets",
         "/v1/trades", "/v1/freezes", "/v1/obligations", "/v1/principals", "/v1/assets/{chtf}/serials/12"]


def test_pagination_walks_everything_exactly_once(client, world):
    auditor = world["auditor"]
    names = {**world.accounts, **world.assets}
    for template in LISTS:
        url = template.format(**names)
        everything = ok(client, url, auditor, limit=1000)
        assert everything["next"] is None
        assert len(everything["items"]) >= 2, url
        for limit in (1, 2, 3, len(everything["items"])):
            assert walk(client, url, auditor, limit) == everything["items"], (url, limit)
    default = ok(client, "/v1/accounts/{A}/history".format(**names), auditor)
    assert len(default["items"]) == 12 and default["next"] is None  # default limit 100


def test_pagination_picks_up_rows_added_while_walking(client, world):
    auditor, registry = world["auditor"], world.registry
    first = ok(client, "/v1/accounts", auditor, limit=2, kind="ENT")
    assert [x["id"] for x in first["items"]] == sorted([world.accounts["C"], world.accounts["D"]])
    later = enterprise("SC", 9)
    registry.command("sc-exchange", {"op": "account.open", "account": later, "name": "成都壬公司"})
    rest = walk(client, "/v1/accounts", auditor, limit=1, kind="ENT", cursor=first["next"])
    assert [x["id"] for x in rest] == [world.accounts["A"], world.accounts["B"], later]


# -- scoping -------------------------------------------------------------------------------------


def test_a_provincial_principal_reads_its_own_province_only(client, world):
    A, B, C, D = (world.accounts[k] for k in "ABCD")
    t, h = world.trades, world.holds
    sc, cq = world["sc-exchange"], world["cq-exchange"]
    auditor = world["auditor"]
    all_accounts = {x["id"] for x in walk(client, "/v1/accounts", auditor, 1000)}
    for name in ("sc-exchange", "sc-sthj", "sc-finance", "sc-monitor", "cd-sthj"):
        who = world[name]
        assert {x["id"] for x in walk(client, "/v1/accounts", who, 2)} == {
            a for a in all_accounts if a.startswith("SC:")}
        assert ok(client, "/v1/accounts", who, province="CQ")["items"] == []
        assert ok(client, f"/v1/accounts/{A}", who)["id"] == A
    for name in ("cq-exchange", "cq-sthj", "cq-finance"):
        assert {x["id"] for x in walk(client, "/v1/accounts", world[name], 3)} == {
            a for a in all_accounts if a.startswith("CQ:")}

    # Another province's account is exactly as unknown as an account that was never opened.
    never = enterprise("CQ", 99)
    for path in ("/v1/accounts/{}", "/v1/accounts/{}/history"):
        hidden = problem(get(client, path.format(C), sc), 404, "UNKNOWN_ACCOUNT")
        missing = problem(get(client, path.format(never), sc), 404, "UNKNOWN_ACCOUNT")
        assert hidden["detail"].replace(C, "X") == missing["detail"].replace(never, "X")
        assert set(hidden) == set(missing)
    problem(get(client, f"/v1/accounts/{A}", cq), 404, "UNKNOWN_ACCOUNT")
    problem(get(client, "/v1/accounts/SC:EXC:sc-exchange/history", cq), 404, "UNKNOWN_ACCOUNT")

    # Trades where the province is a party; the others do not exist for it.
    assert [x["id"] for x in walk(client, "/v1/trades", cq, 1)] == [t["confirmed"], t["pending"], t["carbon"]]
    assert [x["id"] for x in walk(client, "/v1/trades", sc, 1)] == [
        t["local"], t["confirmed"], t["pending"], t["carbon"]]
    assert ok(client, f"/v1/trades/{t['pending']}", cq)["status"] == "pending"
    problem(get(client, f"/v1/trades/{t['local']}", cq), 404, "UNKNOWN_TRADE")
    problem(get(client, "/v1/trades/T-1-0", cq), 404, "UNKNOWN_TRADE")
    assert ok(client, "/v1/trades", cq, account=B)["items"] == []

    # Pledges and freezes on the province's accounts.
    assert ok(client, "/v1/pledges", cq)["items"] == []
    assert ok(client, "/v1/pledges", cq, account=A)["items"] == []
    assert [p["id"] for p in ok(client, "/v1/pledges", sc)["items"]] == [h["pledge"]]
    assert [f["id"] for f in ok(client, "/v1/freezes", cq)["items"]] == [h["account_freeze"]]
    assert [f["id"] for f in ok(client, "/v1/freezes", sc)["items"]] == [h["freeze"]]

    # Obligations where one side is the province's; a province outside them sees none.
    assert len(ok(client, "/v1/obligations", sc)["items"]) == 2
    assert len(ok(client, "/v1/obligations", world["cq-finance"])["items"]) == 2
    gz = world.registry.principal("gz-exchange", "operator", "GZ")
    assert ok(client, "/v1/obligations", gz)["items"] == []
    assert ok(client, "/v1/trades", gz)["items"] == []
    assert ok(client, "/v1/accounts", gz)["items"] == [
        {"id": "GZ:EXC:gz-exchange", "province": "GZ", "kind": "EXC", "name": "gz-exchange",
         "opened_seq": ok(client, "/v1/accounts/GZ:EXC:gz-exchange", gz)["opened_seq"], "frozen_by": None}]

    # Assets, their totals and serial traces are market-wide.
    assert len(walk(client, "/v1/assets", cq, 1000)) == len(walk(client, "/v1/assets", auditor, 1000))
    assert ok(client, f"/v1/assets/{world.assets['pdr']}", cq)["totals"]["issued"] == "100.000"


def test_auditor_and_admin_read_everything(client, world):
    for name in ("auditor", "admin"):
        who = world[name]
        accounts = {x["id"] for x in walk(client, "/v1/accounts", who, 1000)}
        assert {world.accounts[k] for k in "ABCD"} <= accounts
        assert {a.split(":")[0] for a in accounts} == {"SC", "CQ"}
        assert len(ok(client, "/v1/accounts", who, province="CQ", kind="ENT")["items"]) == 2
        assert len(walk(client, "/v1/trades", who, 1000)) == 4
        assert len(ok(client, "/v1/freezes", who)["items"]) == 2
        for account in world.accounts.values():
            ok(client, f"/v1/accounts/{account}/history", who)


def test_principals_are_read_by_admin_and_auditor_and_each_reads_its_own(client, world):
    sc = world["sc-exchange"]
    names = [p["name"] for p in walk(client, "/v1/principals", world["admin"], 4)]
    assert names == sorted(world.registry.members)
    issuers = ok(client, "/v1/principals", world["auditor"], role="issuer", province="SC")["items"]
    assert [(p["name"], p["instruments"]) for p in issuers] == [
        ("cd-sthj", ["CHTF"]), ("sc-slt", ["WR"]), ("sc-sthj", ["EUR", "PDR"])]

    for who in (sc, world["sc-sthj"], world["cq-finance"], world["sc-monitor"]):
        problem(get(client, "/v1/principals", who), 403, "FORBIDDEN_ROLE")
    problem(get(client, "/v1/principals/cq-exchange", sc), 403, "FORBIDDEN_ROLE")
    problem(get(client, "/v1/principals/nobody", sc), 403, "FORBIDDEN_ROLE")
    problem(get(client, "/v1/principals/nobody", world["admin"]), 404, "UNKNOWN_PRINCIPAL")

    # Key periods: after a rotation the old key signs up to (excluded) the seq the new one starts at.
    from ledger.keys import SigningKey
    new_key = SigningKey.generate("sc-exchange")
    rotated = world.registry.command("sc-exchange", {"op": "principal.rotate_key", "name": "sc-exchange",
                                                     "key": str(new_key.verifier)})
    own = ok(client, "/v1/principals/sc-exchange", sc)
    assert (own["role"], own["province"], own["display_name"]) == ("operator", "SC", "四川联合环境交易所")
    assert own["keys"] == [
        {"key": str(sc.key.verifier), "from_seq": own["added_seq"], "until_seq": rotated.seq + 1},
        {"key": str(new_key.verifier), "from_seq": rotated.seq + 1, "until_seq": None}]
    assert ok(client, "/v1/principals/sc-exchange", world["auditor"]) == own


# -- authentication, parameters, unknown ids -------------------------------------------------------

READS = ["/v1/accounts", "/v1/accounts/SC:ENT:x", "/v1/accounts/SC:ENT:x/history", "/v1/assets", "/v1/assets/x",
         "/v1/assets/x/serials/1", "/v1/trades", "/v1/trades/x", "/v1/pledges", "/v1/freezes", "/v1/obligations",
         "/v1/principals", "/v1/principals/x"]


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer"}, {"Authorization": "Bearer ecl_not-a-token"},
    {"Authorization": "Basic YWRtaW46YWRtaW4="}, {"Authorization": "ecl_not-a-token"}])
def test_every_read_needs_a_valid_token(client, headers):
    for url in READS:
        problem(client.get(url, headers=headers), 401, "UNAUTHENTICATED")
    # before anything else is looked at: bad parameters are still a 401 without a token
    problem(client.get("/v1/accounts?limit=0&bogus=1", headers=headers), 401, "UNAUTHENTICATED")


def test_a_token_of_a_principal_that_does_not_exist_is_refused(app, client):
    token = Registry(app).token("ghost")
    problem(client.get("/v1/assets", headers={"Authorization": f"Bearer {token}"}), 401, "UNAUTHENTICATED")


def test_bad_parameters_are_400_problems(client, world):
    auditor = world["auditor"]
    A = world.accounts["A"]
    history = ok(client, f"/v1/accounts/{A}/history", auditor, limit=1)["next"]
    forged = base64.urlsafe_b64encode(json.dumps(["x\u0000"]).encode()).decode()
    huge = base64.urlsafe_b64encode(json.dumps([2**70, 0]).encode()).decode()
    cases = [
        ("/v1/accounts", {"limit": "0"}), ("/v1/accounts", {"limit": "1001"}), ("/v1/accounts", {"limit": "-5"}),
        ("/v1/accounts", {"limit": "ten"}), ("/v1/accounts", {"cursor": "%%%"}),
        ("/v1/accounts", {"cursor": "bm90IGpzb24"}), ("/v1/accounts", {"cursor": history}),
        ("/v1/accounts", {"cursor": forged}), (f"/v1/accounts/{A}/history", {"cursor": huge}),
        ("/v1/accounts", {"kind": "XYZ"}), ("/v1/accounts", {"province": "sc"}),
        ("/v1/accounts", {"provnce": "SC"}), ("/v1/assets", {"instrument": "BTC"}),
        ("/v1/trades", {"status": "done"}), ("/v1/trades", {"account": "not an account"}),
        ("/v1/pledges", {"open": "maybe"}), ("/v1/freezes", {"account": "SC:ENT:\u0000"}),
        ("/v1/obligations", {"debtor": "x" * 500}), ("/v1/obligations", {"pool": "Trade!"}),
        ("/v1/principals", {"role": "king"}), (f"/v1/accounts/{A}/history", {"asset": "a b"}),
        (f"/v1/assets/{world.assets['chtf']}/serials/1", {"cursor": "W10"}),
    ]
    for url, params in cases:
        body = problem(get(client, url, auditor, **params), 400, "INVALID_PARAMETER")
        assert body["detail"], (url, params)
    assert "limit" in problem(get(client, "/v1/accounts", auditor, limit="1001"), 400, "INVALID_PARAMETER")["errors"]


def test_unknown_ids_are_404_problems(client, world):
    auditor = world["auditor"]
    for url, code in [
        (f"/v1/accounts/{enterprise('SC', 42)}", "UNKNOWN_ACCOUNT"),
        (f"/v1/accounts/{enterprise('SC', 42)}/history", "UNKNOWN_ACCOUNT"),
        ("/v1/accounts/" + quote("SC:ENT:\x00"), "UNKNOWN_ACCOUNT"),
        ("/v1/accounts/" + "S" * 5000, "UNKNOWN_ACCOUNT"),
        ("/v1/accounts/" + quote("重庆"), "UNKNOWN_ACCOUNT"),
        ("/v1/assets/PDR-XX-COD-20250101-20291231", "UNKNOWN_ASSET"),
        ("/v1/assets/" + quote("\x00"), "UNKNOWN_ASSET"),
        ("/v1/trades/T-999-0", "UNKNOWN_TRADE"), ("/v1/trades/" + quote("T\x00"), "UNKNOWN_TRADE"),
        ("/v1/principals/" + quote("\x00"), "UNKNOWN_PRINCIPAL"),
    ]:
        problem(client.get(url, headers=auditor.headers), 404, code)


def test_openapi_documents_every_read(client):
    spec = client.get("/v1/openapi.json").get_json()
    paths = spec["paths"]
    for path in ("/v1/accounts", "/v1/accounts/{account_id}", "/v1/accounts/{account_id}/history",
                 "/v1/assets", "/v1/assets/{asset_id}", "/v1/assets/{asset_id}/serials/{serial}",
                 "/v1/trades", "/v1/trades/{trade_id}", "/v1/pledges", "/v1/freezes", "/v1/obligations",
                 "/v1/principals", "/v1/principals/{name}"):
        get_op = paths[path]["get"]
        assert "200" in get_op["responses"] and "401" in get_op["responses"], path
    schemas = spec["components"]["schemas"]
    for name, field in [("Balance", "available"), ("Posting", "amount"), ("AssetTotals", "issued"),
                        ("Trade", "quantity"), ("Hold", "quantity"), ("Obligation", "amount")]:
        assert schemas[name]["properties"][field]["type"] == "string", (name, field)
    assert set(schemas["AccountPage"]["properties"]) == {"items", "next"}
    parameters = {p["name"]: p for p in paths["/v1/accounts"]["get"]["parameters"]}
    assert parameters["limit"]["schema"]["maximum"] == 1000
    assert {"cursor", "province", "kind"} <= set(parameters)
    assert "400" in paths["/v1/trades"]["get"]["responses"]
    assert "404" in paths["/v1/accounts/{account_id}"]["get"]["responses"]

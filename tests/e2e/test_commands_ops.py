"""Every operation end to end over HTTP: the real server (gunicorn, 2 workers), signed commands
with bearer tokens, and each op's effect checked in the projections (and the registry reads).

One server per engine for the whole module; every test works on accounts (and where it matters
assets) of its own, so the tests do not depend on each other's order.
"""

import base64
import json

import pytest

from contracts.quantities import format_units
from ledger.keys import SigningKey
from ledger.projections import (Account, Asset, Hold, Obligation, Principal, PrincipalKey, Reversal,
                                SerialBlock, Trade)
from ledger.verify import leaf_hash, open_checkpoint, verify_entry_signature
from support.world import (CHTF, CNY, CQ_EXC, CQCER, ENGINES, EUR_SC, PDR_SC, SC_EXC, WR_SC, World,
                           check_problem, enterprise, running_world, units)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=ENGINES)
def world(request, tmp_path_factory):
    with running_world(request.param, tmp_path_factory.mktemp("ops")) as world:
        yield world


def span(block: str) -> tuple[int, int]:
    """``<asset>-<start>-<end>`` → (start, end)."""
    start, end = block.rsplit("-", 2)[1:]
    return int(start), int(end)


def blocks_of(world: World, asset: str, account: str) -> list[tuple[int, int]]:
    rows = world.rows(SerialBlock, SerialBlock.asset == asset, SerialBlock.account == account)
    return sorted((row.start, row.end) for row in rows)


def funded(world: World, province: str = "SC", **holdings: str) -> str:
    """A fresh enterprise of ``province`` holding ``asset=quantity`` (CNY by deposit)."""
    account = world.new_account(province)
    for asset, quantity in holdings.items():
        if asset == CNY:
            world.deposit(account, quantity)
        else:
            world.issue(asset, account, quantity)
    return account


# -- principals ----------------------------------------------------------------------------------


def test_principal_add_by_the_admin_over_http(world):
    key = SigningKey.generate("sc-broker")
    answer = world.ok("admin", {"op": "principal.add", "name": "sc-broker", "role": "operator", "province": "SC",
                                "key": str(key.verifier), "display_name": "成都某交易服务机构"})
    assert answer["results"] == [{"principal": "sc-broker", "account": "SC:EXC:sc-broker"}]
    principal = world.get(Principal, "sc-broker")
    assert (principal.role, principal.province, principal.added_seq) == ("operator", "SC", answer["seq"])
    assert world.get(Account, "SC:EXC:sc-broker").kind == "EXC"
    keys = world.server.get("/v1/log/keys").json()["principals"]["sc-broker"]
    assert keys == [{"key": str(key.verifier), "from_seq": answer["seq"], "until_seq": None}]

    # Its key signs, once it has a token: it deposits from its own EXC account.
    world.adopt("sc-broker", "operator", "SC", key)
    holder = world.new_account("SC")
    world.ok("sc-broker", {"op": "cny.deposit", "account": holder, "amount": "12.34"})
    assert world.total("SC:EXC:sc-broker", CNY) == -1234
    assert world.total(holder, CNY) == 1234

    other = SigningKey.generate("someone-else")
    world.refused("admin", {"op": "principal.add", "name": "sc-broker", "role": "auditor",
                            "key": str(SigningKey.generate("sc-broker").verifier)},
                  status=409, code="PRINCIPAL_EXISTS")
    world.refused("admin", {"op": "principal.add", "name": "cq-thief", "role": "auditor", "key": str(other.verifier)},
                  status=422, code="INVALID_KEY")
    world.refused("admin", {"op": "principal.add", "name": "cq-chtf", "role": "issuer", "province": "CQ",
                            "instruments": ["CHTF"], "key": str(SigningKey.generate("cq-chtf").verifier)},
                  status=403, code="FORBIDDEN_INSTRUMENT")
    world.refused("admin", {"op": "principal.add", "name": "sc-x", "role": "operator",
                            "key": str(SigningKey.generate("sc-x").verifier)},
                  status=422, code="INVALID_OP")  # an operator belongs to a province
    world.refused("sc-exchange", {"op": "principal.add", "name": "sc-y", "role": "auditor",
                                  "key": str(SigningKey.generate("sc-y").verifier)},
                  status=403, code="FORBIDDEN_ROLE")


def test_principal_added_with_the_real_console_script_can_sign(world):
    """``ecoledger principal add … --json`` in a subprocess, exactly as an operator runs it."""
    before = world.log_size()
    principal = world.add_principal("cq-monitor-2", "monitor", "CQ")
    assert world.log_size() == before + 1
    assert principal.private_key_path.is_file()
    assert (principal.private_key_path.stat().st_mode & 0o777) == 0o600
    # Its token authenticates and its key signs: a monitor may rotate its own key.
    world.rotate_key("cq-monitor-2")
    # …and nothing else of this module: a monitor never moves rights.
    world.refused("cq-monitor-2", {"op": "cny.deposit", "account": enterprise("CQ", 1), "amount": "1"},
                  status=403, code="FORBIDDEN_ROLE")


def test_rotate_key_retires_the_old_key(world):
    holder = world.new_account("CQ")
    old = world["cq-exchange"].key
    before_rotation = world.envelope("cq-exchange", {"op": "cny.deposit", "account": holder, "amount": "1.00"})
    first = world.post_envelope(before_rotation, actor="cq-exchange")
    assert first.status_code == 201, first.text

    answer = world.rotate_key("cq-exchange")
    new = world["cq-exchange"].key
    assert answer["results"] == [{"principal": "cq-exchange", "key": str(new.verifier),
                                  "valid_from_seq": answer["seq"] + 1}]
    periods = world.server.get("/v1/log/keys").json()["principals"]["cq-exchange"]
    assert periods[-2:] == [{"key": str(old.verifier), "from_seq": periods[-2]["from_seq"], "until_seq": answer["seq"] + 1},
                            {"key": str(new.verifier), "from_seq": answer["seq"] + 1, "until_seq": None}]

    # A new command signed with the old key: 401 BAD_SIGNATURE, nothing appended.
    problem = world.refused("cq-exchange", {"op": "cny.deposit", "account": holder, "amount": "2.00"},
                            key=old, status=401, code="BAD_SIGNATURE", op=None)
    assert "cq-exchange" in problem["detail"]
    # The new key works.
    world.ok("cq-exchange", {"op": "cny.deposit", "account": holder, "amount": "2.00"})
    assert world.total(holder, CNY) == 300
    # The command appended before the rotation, sent again as it was: its original answer.
    again = world.post_envelope(before_rotation, actor="cq-exchange")
    assert (again.status_code, again.json()) == (200, first.json())


def test_a_rotated_out_key_is_named_as_expired(world):
    old = world["sc-finance"].key
    world.rotate_key("sc-finance")
    problem = world.refused("sc-finance", {"op": "principal.rotate_key", "name": "sc-finance",
                                           "key": str(SigningKey.generate("sc-finance").verifier)},
                            key=old, status=401, code="BAD_SIGNATURE", op=None)
    assert "expired" in problem["detail"] or "rotated" in problem["detail"], problem["detail"]


def test_rotate_key_of_another_principal(world):
    # Only the admin rotates someone else's key.
    world.refused("sc-exchange", {"op": "principal.rotate_key", "name": "sc-monitor",
                                  "key": str(SigningKey.generate("sc-monitor").verifier)},
                  status=403, code="FORBIDDEN_ROLE")
    old = world["sc-monitor"].key
    world.rotate_key("sc-monitor", by="admin")
    stale = SigningKey.generate("sc-monitor")
    world.refused("sc-monitor", {"op": "principal.rotate_key", "name": "sc-monitor", "key": str(stale.verifier)},
                  key=old, status=401, code="BAD_SIGNATURE", op=None)
    world.rotate_key("sc-monitor")  # with the key the admin set
    # A key must carry the principal's name, and be new.
    world.refused("admin", {"op": "principal.rotate_key", "name": "sc-monitor",
                            "key": str(SigningKey.generate("sc-finance").verifier)},
                  status=422, code="INVALID_KEY")
    world.refused("admin", {"op": "principal.rotate_key", "name": "sc-monitor", "key": world["sc-monitor"].verifier},
                  status=422, code="INVALID_KEY")
    world.refused("admin", {"op": "principal.rotate_key", "name": "nobody",
                            "key": str(SigningKey.generate("nobody").verifier)},
                  status=422, code="UNKNOWN_PRINCIPAL")


# -- accounts ------------------------------------------------------------------------------------


def test_account_open(world):
    ent = enterprise("SC", 9001)
    ind = "SC:IND:p-9001"
    answer = world.ok("sc-exchange", {"op": "account.open", "account": ent, "name": "成都某化工有限公司"},
                      {"op": "account.open", "account": ind, "name": "王五"})
    assert answer["results"] == [{"account": ent}, {"account": ind}]
    row = world.get(Account, ent)
    assert (row.province, row.kind, row.name, row.opened_seq, row.frozen_by) == (
        "SC", "ENT", "成都某化工有限公司", answer["seq"], None)
    assert world.get(Account, ind).kind == "IND"

    world.refused("sc-exchange", {"op": "account.open", "account": ent, "name": "again"}, status=409,
                  code="ACCOUNT_EXISTS")
    bad_check = ent[:-1] + ("0" if ent[-1] != "0" else "1")
    world.refused("sc-exchange", {"op": "account.open", "account": bad_check, "name": "x"}, status=422,
                  code="INVALID_USCC")
    world.refused("sc-exchange", {"op": "account.open", "account": "SC:EXC:sc-other", "name": "x"}, status=403,
                  code="FORBIDDEN_ROLE")
    world.refused("sc-exchange", {"op": "account.open", "account": "SC:BANK:x", "name": "x"}, status=422,
                  code="INVALID_ACCOUNT")
    world.refused("cq-exchange", {"op": "account.open", "account": enterprise("SC", 9002), "name": "x"},
                  status=403, code="FORBIDDEN_PROVINCE")
    # The admin opens other kinds too.
    world.ok("admin", {"op": "account.open", "account": "SC:ISS:sc-forestry", "name": "四川省林业和草原局"})
    assert world.get(Account, "SC:ISS:sc-forestry").kind == "ISS"


def test_freeze_a_quantity_and_unfreeze(world):
    holder, other = funded(world, **{PDR_SC: "150"}), world.new_account("SC")
    answer = world.ok("sc-exchange", {"op": "account.freeze", "account": holder, "asset": PDR_SC,
                                      "quantity": "100", "reason": "（2025）川01执保123号"})
    freeze = answer["results"][0]["freeze"]
    assert freeze == f"F-{answer['seq']}-0"
    assert world.balance(holder, PDR_SC) == {"total": 150000, "frozen": 100000, "pledged": 0, "held": 0,
                                             "available": 50000}
    world.refused("sc-exchange", {"op": "transfer", "asset": PDR_SC, "from": holder, "to": other, "quantity": "50.001"},
                  status=409, code="INSUFFICIENT_BALANCE")
    world.ok("sc-exchange", {"op": "transfer", "asset": PDR_SC, "from": holder, "to": other, "quantity": "50"})
    # More than is left cannot be frozen.
    world.refused("sc-exchange", {"op": "account.freeze", "account": holder, "asset": PDR_SC, "quantity": "100.001",
                                  "reason": "x"}, status=409, code="INSUFFICIENT_BALANCE")

    world.ok("admin", {"op": "account.unfreeze", "freeze": freeze})
    assert world.balance(holder, PDR_SC)["frozen"] == 0
    assert world.get(Hold, freeze).released_seq is not None
    world.refused("sc-exchange", {"op": "account.unfreeze", "freeze": freeze}, status=409, code="ALREADY_RELEASED")
    world.refused("sc-exchange", {"op": "account.unfreeze", "freeze": "F-999999-0"}, status=422, code="UNKNOWN_FREEZE")
    # CNY is not frozen by quantity (its lifecycle is deposit, withdraw, trade).
    world.refused("sc-exchange", {"op": "account.freeze", "account": holder, "asset": CNY, "quantity": "1",
                                  "reason": "x"}, status=422, code="NOT_ALLOWED_FOR_INSTRUMENT")


def test_freeze_a_whole_account(world):
    holder = funded(world, **{PDR_SC: "10", CNY: "100"})
    other = world.new_account("SC")
    answer = world.ok("sc-exchange", {"op": "account.freeze", "account": holder, "reason": "司法冻结"})
    freeze = answer["results"][0]["freeze"]
    assert world.get(Account, holder).frozen_by == freeze

    transfer = {"op": "transfer", "asset": PDR_SC, "from": holder, "to": other, "quantity": "1"}
    world.refused("sc-exchange", transfer, status=409, code="ACCOUNT_FROZEN")
    world.refused("sc-exchange", {"op": "cny.withdraw", "account": holder, "amount": "1"}, status=409,
                  code="ACCOUNT_FROZEN")
    world.refused("sc-exchange", {"op": "pledge", "account": holder, "asset": PDR_SC, "quantity": "1",
                                  "pledgee": "bank"}, status=409, code="ACCOUNT_FROZEN")
    world.refused("sc-exchange", {"op": "account.freeze", "account": holder, "reason": "again"}, status=409,
                  code="ACCOUNT_FROZEN")
    # Units still come in.
    world.ok("sc-exchange", {"op": "transfer", "asset": PDR_SC, "from": funded(world, **{PDR_SC: "1"}),
                             "to": holder, "quantity": "1"})
    assert world.total(holder, PDR_SC) == 11000

    world.ok("sc-exchange", {"op": "account.unfreeze", "freeze": freeze})
    assert world.get(Account, holder).frozen_by is None
    world.ok("sc-exchange", transfer)
    assert world.total(other, PDR_SC) == 1000


# -- assets and issuance ---------------------------------------------------------------------------


@pytest.mark.parametrize("issuer, op, asset_id, province, decimals, expires_on", [
    ("sc-sthj", {"instrument": "PDR", "attributes": {"pollutant": "SO2", "valid_from": "2025-01-01",
                                                     "valid_until": "2029-12-31"}},
     "PDR-SC-SO2-20250101-20291231", "SC", 3, "2029-12-31"),
    ("sc-slt", {"instrument": "WR", "attributes": {"right_type": "irrigation", "basin": "tuojiang",
                                                   "term_start": "2025-01-01", "term_end": "2034-12-31"}},
     "WR-SC-tuojiang-irrigation-20250101-20341231", "SC", 0, "2034-12-31"),
    ("sc-sthj", {"instrument": "EUR", "attributes": {"compliance_year": 2026}}, "EUR-SC-2026", "SC", 3, None),
    ("cd-sthj", {"instrument": "CHTF", "attributes": {"methodology": "cdcer", "project": "002-bike", "vintage": 2025}},
     "CHTF-cdcer-002-bike-2025", "SC", 0, None),
    ("cq-thc", {"instrument": "CQCER", "attributes": {"methodology": "cqcer", "project": "003-solar",
                                                      "vintage": 2025}},
     "CQCER-cqcer-003-solar-2025", "CQ", 0, None),
])
def test_asset_define(world, issuer, op, asset_id, province, decimals, expires_on):
    answer = world.ok(issuer, {"op": "asset.define", **op})
    assert answer["results"] == [{"asset": asset_id}]
    asset = world.get(Asset, asset_id)
    assert (asset.instrument, asset.province, asset.decimals, asset.issuer, asset.expires_on, asset.defined_seq) == (
        op["instrument"], province, decimals, issuer, expires_on, answer["seq"])
    assert json.loads(asset.attributes) == op["attributes"]
    world.refused(issuer, {"op": "asset.define", **op}, status=409, code="ASSET_EXISTS")


def test_asset_define_refusals(world):
    world.refused("sc-slt", {"op": "asset.define", "instrument": "PDR", "attributes": {
        "pollutant": "COD", "valid_from": "2025-01-01", "valid_until": "2026-12-31"}},
        status=403, code="FORBIDDEN_INSTRUMENT")
    world.refused("sc-sthj", {"op": "asset.define", "instrument": "PDR", "attributes": {
        "pollutant": "COD", "valid_from": "2025-01-01", "valid_until": "2030-01-01"}},  # more than 5 years
        status=422, code="INVALID_OP")
    world.refused("sc-sthj", {"op": "asset.define", "instrument": "PDR", "attributes": {
        "pollutant": "CO2", "valid_from": "2025-01-01", "valid_until": "2026-12-31"}}, status=422, code="INVALID_OP")
    world.refused("sc-sthj", {"op": "asset.define", "instrument": "CNY", "attributes": {}}, status=422, code="INVALID_OP")
    world.refused("sc-exchange", {"op": "asset.define", "instrument": "EUR", "attributes": {"compliance_year": 2027}},
                  status=403, code="FORBIDDEN_ROLE")


def test_issue(world):
    holder = world.new_account("SC")
    iss_before = world.total("SC:ISS:sc-sthj", PDR_SC)
    answer = world.ok("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": holder, "quantity": "12.345"})
    assert answer["results"] == [{"asset": PDR_SC, "serials": []}]
    assert world.total(holder, PDR_SC) == 12345
    assert world.total("SC:ISS:sc-sthj", PDR_SC) == iss_before - 12345

    # Carbon credits get the next block of serials.
    next_serial = world.get(Asset, CHTF).next_serial
    answer = world.ok("cd-sthj", {"op": "issue", "asset": CHTF, "to": holder, "quantity": "10"})
    assert answer["results"] == [{"asset": CHTF, "serials": [f"{CHTF}-{next_serial}-{next_serial + 9}"]}]
    assert blocks_of(world, CHTF, holder) == [(next_serial, next_serial + 9)]

    world.refused("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_EXC, "quantity": "1"}, status=422,
                  code="INVALID_ACCOUNT")
    world.refused("sc-slt", {"op": "issue", "asset": PDR_SC, "to": holder, "quantity": "1"}, status=403,
                  code="FORBIDDEN_INSTRUMENT")
    world.refused("cq-sthj", {"op": "issue", "asset": "PDR-CQ-COD-20250101-20291231", "to": holder, "quantity": "1"},
                  status=403, code="FORBIDDEN_PROVINCE")
    world.refused("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": holder, "quantity": "1.0001"}, status=422,
                  code="INVALID_QUANTITY")


# -- transfers -------------------------------------------------------------------------------------


def test_transfer_carbon_credits_with_named_serials(world):
    source, target = world.new_account("SC"), world.new_account("SC")
    (block,) = world.issue(CHTF, source, "10")["results"][0]["serials"]
    first, last = span(block)
    named = f"{CHTF}-{first + 2}-{first + 4}"
    answer = world.ok("sc-exchange", {"op": "transfer", "asset": CHTF, "from": source, "to": target,
                                      "quantity": "3", "serials": [named]})
    assert answer["results"] == [{"serials": [named]}]
    assert blocks_of(world, CHTF, source) == [(first, first + 1), (first + 5, last)]
    assert blocks_of(world, CHTF, target) == [(first + 2, first + 4)]
    assert (world.total(source, CHTF), world.total(target, CHTF)) == (7, 3)

    # The trace of a serial, from issuance to its holder (registry read).
    trace = world.read(f"/v1/assets/{CHTF}/serials/{first + 3}").json()
    assert (trace["holder"], trace["status"], trace["block"]) == (target, "held", named)
    assert [(m["kind"], m["from"], m["to"]) for m in trace["items"]] == [
        ("issue", "SC:ISS:cd-sthj", source), ("transfer", source, target)]

    # Serials the source does not hold, or that do not add up to the quantity.
    world.refused("sc-exchange", {"op": "transfer", "asset": CHTF, "from": source, "to": target, "quantity": "1",
                                  "serials": [f"{CHTF}-{first + 3}-{first + 3}"]}, status=409, code="SERIALS_NOT_HELD")
    world.refused("sc-exchange", {"op": "transfer", "asset": CHTF, "from": source, "to": target, "quantity": "2",
                                  "serials": [f"{CHTF}-{first}-{first}"]}, status=422, code="SERIALS_MISMATCH")
    world.refused("sc-exchange", {"op": "transfer", "asset": CHTF, "from": source, "to": target, "quantity": "1",
                                  "serials": [f"{CQCER}-{first}-{first}"]}, status=422, code="INVALID_SERIALS")
    # Without serials: the lowest the source holds.
    answer = world.ok("sc-exchange", {"op": "transfer", "asset": CHTF, "from": source, "to": target, "quantity": "3"})
    assert answer["results"] == [{"serials": [f"{CHTF}-{first}-{first + 1}", f"{CHTF}-{first + 5}-{first + 5}"]}]


def test_transfer_across_provinces_and_its_refusals(world):
    source = funded(world, **{PDR_SC: "5"})
    target = world.new_account("CQ")
    world.ok("sc-exchange", {"op": "transfer", "asset": PDR_SC, "from": source, "to": target, "quantity": "2.5"})
    assert (world.total(source, PDR_SC), world.total(target, PDR_SC)) == (2500, 2500)
    # The CQ exchange cannot move what an SC account holds.
    world.refused("cq-exchange", {"op": "transfer", "asset": PDR_SC, "from": source, "to": target, "quantity": "1"},
                  status=403, code="FORBIDDEN_PROVINCE")
    world.refused("sc-exchange", {"op": "transfer", "asset": PDR_SC, "from": source, "to": source, "quantity": "1"},
                  status=422, code="SAME_ACCOUNT")
    world.refused("sc-exchange", {"op": "transfer", "asset": PDR_SC, "from": source, "to": target, "quantity": "2.501"},
                  status=409, code="INSUFFICIENT_BALANCE")
    world.refused("sc-exchange", {"op": "transfer", "asset": CNY, "from": source, "to": target, "quantity": "1"},
                  status=422, code="NOT_ALLOWED_FOR_INSTRUMENT")


# -- trades ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("asset, price, quantity, amount", [
    # amount = price × quantity, rounded half-up to the fen — computed by hand:
    (PDR_SC, "10.25", "0.5", "5.13"),        # 5.125: exactly half a fen, rounds up (half-even would give 5.12)
    (PDR_SC, "12.3456", "1.001", "12.36"),   # 12.3579456
    (WR_SC, "3.3333", "3", "10.00"),         # 9.9999
    (CHTF, "45.6789", "7", "319.75"),        # 319.7523
    (EUR_SC, "199.995", "0.001", "0.20"),    # 0.199995
    (PDR_SC, "0.015", "1", "0.02"),          # 0.015: half a fen again
    (PDR_SC, "1000", "0.999", "999.00"),
])
def test_trade_within_a_province_settles_at_once(world, asset, price, quantity, amount):
    seller = funded(world, **{asset: "10"})
    buyer = funded(world, **{CNY: "2000"})
    fen, qty = units(amount, 2), units(quantity, {PDR_SC: 3, EUR_SC: 3}.get(asset, 0))
    answer = world.ok("sc-exchange", {"op": "trade", "asset": asset, "quantity": quantity, "price": price,
                                      "seller": seller, "buyer": buyer})
    (result,) = answer["results"]
    assert (result["trade"], result["amount"], result["status"]) == (f"T-{answer['seq']}-0", amount, "settled")
    assert world.total(seller, CNY) == fen
    assert world.total(buyer, CNY) == 200000 - fen
    assert world.total(buyer, asset) == qty
    assert world.total(seller, asset) == units("10", world.get(Asset, asset).decimals) - qty
    trade = world.get(Trade, result["trade"])
    assert (trade.status, trade.amount, trade.price, trade.closed_seq) == ("settled", fen, price, answer["seq"])


def test_trade_refusals(world):
    seller = funded(world, **{PDR_SC: "1"})
    buyer = funded(world, **{CNY: "10"})
    trade = {"op": "trade", "asset": PDR_SC, "quantity": "1", "price": "10.01", "seller": seller, "buyer": buyer}
    world.refused("sc-exchange", trade, status=409, code="INSUFFICIENT_BALANCE")  # 10.01 元 > 10.00 元
    world.refused("sc-exchange", {**trade, "price": "10.00001"}, status=422, code="INVALID_QUANTITY")
    world.refused("sc-exchange", {**trade, "price": "0"}, status=422, code="INVALID_QUANTITY")
    world.refused("sc-exchange", {**trade, "price": "1", "buyer": seller}, status=422, code="SAME_ACCOUNT")
    world.refused("sc-exchange", {**trade, "price": "1", "buyer": SC_EXC}, status=422, code="INVALID_ACCOUNT")
    world.refused("sc-exchange", {**trade, "asset": CNY, "price": "1"}, status=422, code="NOT_ALLOWED_FOR_INSTRUMENT")
    world.refused("cq-exchange", {**trade, "price": "1"}, status=403, code="FORBIDDEN_PROVINCE")
    world.ok("sc-exchange", {**trade, "price": "10"})


def test_trade_across_provinces_pending_then_confirmed(world):
    seller = funded(world, **{PDR_SC: "3"})
    buyer = funded(world, "CQ", **{CNY: "1000"})
    sc_exc, cq_exc = world.total(SC_EXC, CNY), world.total(CQ_EXC, CNY)
    answer = world.ok("sc-exchange", {"op": "trade", "asset": PDR_SC, "quantity": "2", "price": "100.005",
                                      "seller": seller, "buyer": buyer})
    (result,) = answer["results"]
    trade_id = result["trade"]
    assert (result["status"], result["amount"]) == ("pending", "200.01")  # 200.010
    assert "expires_at" in result
    assert world.balance(seller, PDR_SC) == {"total": 3000, "frozen": 0, "pledged": 0, "held": 2000, "available": 1000}
    assert world.balance(buyer, CNY) == {"total": 100000, "frozen": 0, "pledged": 0, "held": 20001, "available": 79999}
    # Held units do not move.
    world.refused("sc-exchange", {"op": "transfer", "asset": PDR_SC, "from": seller, "to": world.new_account("SC"),
                                  "quantity": "1.001"}, status=409, code="INSUFFICIENT_BALANCE")
    # The other province's exchange confirms, not the one that recorded it.
    world.refused("sc-exchange", {"op": "trade.confirm", "trade": trade_id}, status=403, code="FORBIDDEN_PROVINCE")

    answer = world.ok("cq-exchange", {"op": "trade.confirm", "trade": trade_id})
    (result,) = answer["results"]
    assert result == {"trade": trade_id, "status": "confirmed", "serials": [], "obligation": f"O-{answer['seq']}-0"}
    assert world.balance(seller, PDR_SC) == {"total": 1000, "frozen": 0, "pledged": 0, "held": 0, "available": 1000}
    assert world.total(buyer, PDR_SC) == 2000
    assert world.balance(buyer, CNY) == {"total": 100000 - 20001, "frozen": 0, "pledged": 0, "held": 0,
                                         "available": 100000 - 20001}
    assert world.total(seller, CNY) == 20001
    # The buyer paid its exchange; the seller's exchange paid the seller; CQ owes SC.
    assert world.total(CQ_EXC, CNY) == cq_exc + 20001
    assert world.total(SC_EXC, CNY) == sc_exc - 20001
    obligation = world.get(Obligation, result["obligation"])
    assert (obligation.pool, obligation.debtor, obligation.creditor, obligation.amount, obligation.status) == (
        "trade", CQ_EXC, SC_EXC, 20001, "open")
    record = world.get(Trade, trade_id)
    assert (record.status, record.seller_exchange, record.buyer_exchange) == ("confirmed", SC_EXC, CQ_EXC)

    world.refused("cq-exchange", {"op": "trade.confirm", "trade": trade_id}, status=409, code="TRADE_NOT_PENDING")
    world.refused("admin", {"op": "reverse", "seq": answer["seq"], "reason": "x"}, status=409, code="IRREVERSIBLE")


def test_trade_recorded_by_the_buyers_exchange_waits_for_the_sellers(world):
    seller = funded(world, **{WR_SC: "100"})
    buyer = funded(world, "CQ", **{CNY: "500"})
    answer = world.ok("cq-exchange", {"op": "trade", "asset": WR_SC, "quantity": "40", "price": "2.5",
                                      "seller": seller, "buyer": buyer})
    trade_id = answer["results"][0]["trade"]
    assert answer["results"][0]["amount"] == "100.00"
    world.refused("cq-exchange", {"op": "trade.confirm", "trade": trade_id}, status=403, code="FORBIDDEN_PROVINCE")
    answer = world.ok("sc-exchange", {"op": "trade.confirm", "trade": trade_id})
    obligation = world.get(Obligation, answer["results"][0]["obligation"])
    assert (obligation.debtor, obligation.creditor, obligation.amount) == (CQ_EXC, SC_EXC, 10000)
    assert (world.total(seller, WR_SC), world.total(buyer, WR_SC)) == (60, 40)
    assert (world.total(seller, CNY), world.total(buyer, CNY)) == (10000, 40000)


def test_trade_across_provinces_cancelled_releases_the_holds(world):
    seller = funded(world, "CQ", **{"PDR-CQ-COD-20250101-20291231": "5"})
    buyer = funded(world, **{CNY: "100"})
    answer = world.ok("cq-exchange", {"op": "trade", "asset": "PDR-CQ-COD-20250101-20291231", "quantity": "5",
                                      "price": "20", "seller": seller, "buyer": buyer, "hold_hours": 1})
    trade_id = answer["results"][0]["trade"]
    assert world.balance(buyer, CNY)["held"] == 10000
    assert world.balance(seller, "PDR-CQ-COD-20250101-20291231")["held"] == 5000
    # Either province's exchange may cancel; the buyer's (SC) does.
    answer = world.ok("sc-exchange", {"op": "trade.cancel", "trade": trade_id})
    assert answer["results"] == [{"trade": trade_id, "status": "cancelled"}]
    assert world.balance(buyer, CNY) == {"total": 10000, "frozen": 0, "pledged": 0, "held": 0, "available": 10000}
    assert world.balance(seller, "PDR-CQ-COD-20250101-20291231")["held"] == 0
    assert world.get(Hold, f"{trade_id}/buyer").released_seq == answer["seq"]
    world.refused("sc-exchange", {"op": "trade.confirm", "trade": trade_id}, status=409, code="TRADE_NOT_PENDING")
    world.refused("sc-exchange", {"op": "trade.cancel", "trade": "T-999999-0"}, status=422, code="UNKNOWN_TRADE")


# -- pledges, surrender, retirement ----------------------------------------------------------------------


def test_pledge_and_release(world):
    holder = funded(world, **{WR_SC: "150"})
    answer = world.ok("sc-exchange", {"op": "pledge", "account": holder, "asset": WR_SC, "quantity": "100",
                                      "pledgee": "中国银行成都分行", "reference": "ZY-2025-001"})
    pledge = answer["results"][0]["pledge"]
    assert pledge == f"P-{answer['seq']}-0"
    assert world.balance(holder, WR_SC) == {"total": 150, "frozen": 0, "pledged": 100, "held": 0, "available": 50}
    move = {"op": "transfer", "asset": WR_SC, "from": holder, "to": world.new_account("SC"), "quantity": "51"}
    world.refused("sc-exchange", move, status=409, code="INSUFFICIENT_BALANCE")
    world.refused("sc-exchange", {"op": "pledge", "account": holder, "asset": CHTF, "quantity": "1", "pledgee": "b"},
                  status=422, code="NOT_ALLOWED_FOR_INSTRUMENT")
    world.refused("cq-exchange", {"op": "pledge.release", "pledge": pledge}, status=403, code="FORBIDDEN_PROVINCE")
    world.ok("sc-exchange", {"op": "pledge.release", "pledge": pledge})
    assert world.balance(holder, WR_SC)["pledged"] == 0
    world.ok("sc-exchange", move)
    world.refused("sc-exchange", {"op": "pledge.release", "pledge": pledge}, status=409, code="ALREADY_RELEASED")


def test_surrender_for_the_compliance_year(world):
    holder = funded(world, **{EUR_SC: "10"})
    sink_before = world.total("SC:SINK:surrendered", EUR_SC)
    answer = world.ok("sc-exchange", {"op": "surrender", "account": holder, "asset": EUR_SC, "quantity": "4.5",
                                      "compliance_year": 2025})
    assert answer["results"] == [{"to": "SC:SINK:surrendered", "serials": []}]
    assert world.total(holder, EUR_SC) == 5500
    assert world.total("SC:SINK:surrendered", EUR_SC) == sink_before + 4500
    world.refused("sc-exchange", {"op": "surrender", "account": holder, "asset": EUR_SC, "quantity": "1",
                                  "compliance_year": 2024}, status=422, code="WRONG_COMPLIANCE_YEAR")
    world.refused("sc-exchange", {"op": "surrender", "account": holder, "asset": EUR_SC, "quantity": "5.501",
                                  "compliance_year": 2025}, status=409, code="INSUFFICIENT_BALANCE")
    world.refused("sc-exchange", {"op": "surrender", "account": funded(world, **{WR_SC: "1"}), "asset": WR_SC,
                                  "quantity": "1", "compliance_year": 2025}, status=422, code="NOT_ALLOWED_FOR_INSTRUMENT")
    # The issuer may surrender too; nothing leaves a sink, so it cannot be reversed.
    world.ok("sc-sthj", {"op": "surrender", "account": holder, "asset": EUR_SC, "quantity": "0.5",
                         "compliance_year": 2025})
    assert world.total(holder, EUR_SC) == 5000
    world.refused("admin", {"op": "reverse", "seq": answer["seq"], "reason": "x"}, status=409, code="IRREVERSIBLE")


def test_retire_once_per_serial(world):
    holder = world.new_account("SC")
    (block,) = world.issue(CHTF, holder, "10")["results"][0]["serials"]
    first, _ = span(block)
    named = f"{CHTF}-{first}-{first + 4}"
    answer = world.ok("sc-exchange", {"op": "retire", "account": holder, "asset": CHTF, "quantity": "5",
                                      "purpose": "大型活动碳中和", "beneficiary": "成都大运会", "serials": [named]})
    assert answer["results"] == [{"to": "SC:SINK:retired", "serials": [named], "purpose": "大型活动碳中和",
                                  "beneficiary": "成都大运会"}]
    assert (first, first + 4) in blocks_of(world, CHTF, "SC:SINK:retired")
    assert world.read(f"/v1/assets/{CHTF}/serials/{first}").json()["status"] == "retired"
    # The same serial a second time: refused, though the account still holds 5 others.
    world.refused("sc-exchange", {"op": "retire", "account": holder, "asset": CHTF, "quantity": "1",
                                  "purpose": "again", "beneficiary": "x", "serials": [f"{CHTF}-{first}-{first}"]},
                  status=409, code="SERIALS_NOT_HELD")
    world.refused("sc-exchange", {"op": "retire", "account": holder, "asset": PDR_SC, "quantity": "1",
                                  "purpose": "p", "beneficiary": "b"}, status=422, code="NOT_ALLOWED_FOR_INSTRUMENT")


def test_cqcer_retired_in_sichuan_once_ever(world):
    """川渝互认: a 碳惠通 credit moved to Sichuan is retired there, and never again anywhere."""
    cq_holder, sc_holder = world.new_account("CQ"), world.new_account("SC")
    (block,) = world.issue(CQCER, cq_holder, "4")["results"][0]["serials"]
    first, _ = span(block)
    world.ok("cq-exchange", {"op": "transfer", "asset": CQCER, "from": cq_holder, "to": sc_holder, "quantity": "2",
                             "serials": [f"{CQCER}-{first}-{first + 1}"]})
    world.ok("sc-exchange", {"op": "retire", "account": sc_holder, "asset": CQCER, "quantity": "1",
                             "purpose": "碳中和", "beneficiary": "某公司", "serials": [f"{CQCER}-{first}-{first}"]})
    for actor, account in (("cq-exchange", cq_holder), ("sc-exchange", sc_holder)):
        world.refused(actor, {"op": "retire", "account": account, "asset": CQCER, "quantity": "1",
                              "purpose": "again", "beneficiary": "x", "serials": [f"{CQCER}-{first}-{first}"]},
                      status=409, code="SERIALS_NOT_HELD")


# -- CNY -----------------------------------------------------------------------------------------------


def test_cny_deposit_and_withdraw(world):
    holder = world.new_account("SC")
    exchange_before = world.total(SC_EXC, CNY)
    answer = world.ok("sc-exchange", {"op": "cny.deposit", "account": holder, "amount": "1234.56"})
    assert answer["results"] == [{"account": holder}]
    assert world.total(holder, CNY) == 123456
    assert world.total(SC_EXC, CNY) == exchange_before - 123456
    world.ok("sc-exchange", {"op": "cny.withdraw", "account": holder, "amount": "34.5"})
    assert world.total(holder, CNY) == 120006
    assert world.total(SC_EXC, CNY) == exchange_before - 120006
    world.refused("sc-exchange", {"op": "cny.withdraw", "account": holder, "amount": "1200.07"}, status=409,
                  code="INSUFFICIENT_BALANCE")
    world.refused("sc-exchange", {"op": "cny.deposit", "account": holder, "amount": "1.234"}, status=422,
                  code="INVALID_QUANTITY")
    world.refused("sc-exchange", {"op": "cny.deposit", "account": "SC:ISS:sc-sthj", "amount": "1"}, status=422,
                  code="INVALID_ACCOUNT")
    world.refused("cq-exchange", {"op": "cny.deposit", "account": holder, "amount": "1"}, status=403,
                  code="FORBIDDEN_PROVINCE")
    # The registry serves the same balance as a decimal string.
    assert world.registry_balances(holder)[CNY]["total"] == "1200.06"


# -- reversal ------------------------------------------------------------------------------------------


def test_reverse_posts_the_exact_opposite(world):
    source, target = world.new_account("SC"), world.new_account("SC")
    (block,) = world.issue(CHTF, source, "6")["results"][0]["serials"]
    first, last = span(block)
    world.issue(PDR_SC, source, "2")
    moved = world.ok("sc-exchange", {"op": "transfer", "asset": CHTF, "from": source, "to": target, "quantity": "2",
                                     "serials": [f"{CHTF}-{first + 1}-{first + 2}"]},
                     {"op": "transfer", "asset": PDR_SC, "from": source, "to": target, "quantity": "0.75"})
    answer = world.ok("admin", {"op": "reverse", "seq": moved["seq"], "reason": "录入错误"})
    assert answer["results"] == [{"reversed": moved["seq"]}]
    assert (world.total(source, CHTF), world.total(target, CHTF)) == (6, 0)
    assert (world.total(source, PDR_SC), world.total(target, PDR_SC)) == (2000, 0)
    assert sorted(s for b in blocks_of(world, CHTF, source) for s in range(b[0], b[1] + 1)) == list(range(first, last + 1))
    assert world.get(Reversal, moved["seq"]).by_seq == answer["seq"]
    # The original entry is still in the log, unchanged.
    assert world.server.get(f"/v1/log/entries/{moved['seq']}").json()["entry"] == moved["entry"]

    world.refused("admin", {"op": "reverse", "seq": moved["seq"], "reason": "x"}, status=409, code="ALREADY_REVERSED")
    opened = world.ok("sc-exchange", {"op": "account.open", "account": enterprise("SC", 9100), "name": "x"})
    world.refused("admin", {"op": "reverse", "seq": opened["seq"], "reason": "x"}, status=409,
                  code="NOTHING_TO_REVERSE")
    world.refused("admin", {"op": "reverse", "seq": 10**9, "reason": "x"}, status=422, code="UNKNOWN_ENTRY")
    world.refused("sc-exchange", {"op": "reverse", "seq": moved["seq"], "reason": "x"}, status=403,
                  code="FORBIDDEN_ROLE")


# -- expiry (an op of the ledger itself) ------------------------------------------------------------------


def test_expire_moves_every_unit_to_the_sink_and_stops_the_asset(world):
    """``ecoledger expire`` appends, as the ledger, ``expire`` for assets past their validity."""
    answer = world.ok("sc-sthj", {"op": "asset.define", "instrument": "PDR", "attributes": {
        "pollutant": "TP", "valid_from": "2020-01-01", "valid_until": "2021-12-31"}})
    asset = answer["results"][0]["asset"]
    holder, other = world.new_account("SC"), world.new_account("SC")
    world.issue(asset, holder, "3")
    world.issue(asset, other, "1")
    pledge = world.ok("sc-exchange", {"op": "pledge", "account": holder, "asset": asset, "quantity": "1",
                                      "pledgee": "bank"})["results"][0]["pledge"]
    world.ok("sc-exchange", {"op": "account.freeze", "account": other, "reason": "司法冻结"})
    before = world.log_size()
    output = world.cli_in_process(["expire"])
    assert f"expired asset {asset} at seq" in output
    (entry,) = [e["entry"] for e in world.entries(before)
                if e["entry"]["command"]["ops"] == [{"op": "expire", "asset": asset}]]
    assert entry["command"]["actor"] == "ledger"
    # Everything went to the sink, frozen account and pledge included: they lapse.
    assert world.total(holder, asset) == world.total(other, asset) == 0
    assert world.total("SC:SINK:expired", asset) == 4000
    assert world.get(Hold, pledge).released_seq == entry["seq"]
    assert world.get(Asset, asset).expired_seq == entry["seq"]
    world.refused("sc-sthj", {"op": "issue", "asset": asset, "to": holder, "quantity": "1"}, status=409,
                  code="ASSET_EXPIRED")
    # Expiring again appends nothing.
    assert asset not in world.cli_in_process(["expire"])


# -- atomicity -------------------------------------------------------------------------------------------


def test_a_command_failing_at_its_second_op_appends_nothing(world):
    holder = funded(world, **{PDR_SC: "1"})
    other = world.new_account("SC")
    before = {a: world.balance(a, asset) for a in (holder, other) for asset in (PDR_SC, CNY)}
    problem = world.refused("sc-exchange",
                            {"op": "cny.deposit", "account": holder, "amount": "100"},
                            {"op": "transfer", "asset": PDR_SC, "from": holder, "to": other, "quantity": "1.001"},
                            status=409, code="INSUFFICIENT_BALANCE", op=1)
    assert holder in problem["detail"]
    problem = world.refused("sc-exchange",
                            {"op": "cny.deposit", "account": holder, "amount": "100"},
                            {"op": "transfer", "asset": PDR_SC, "from": holder, "to": other, "quantity": "1"},
                            {"op": "transfer", "asset": PDR_SC, "from": holder, "to": other, "quantity": "-1"},
                            status=422, code="INVALID_QUANTITY", op=2)
    world.refused("sc-exchange",
                  {"op": "cny.deposit", "account": holder, "amount": "100"},
                  {"op": "no.such.op"}, status=422, code="UNKNOWN_OP", op=1)
    assert {a: world.balance(a, asset) for a in (holder, other) for asset in (PDR_SC, CNY)} == before


# -- the log the module wrote --------------------------------------------------------------------------------


def test_zz_every_entry_is_signed_and_in_the_checkpoint(world):
    """Runs last in the module (by name): the whole log verifies as an auditor checks it."""
    entries = world.entries()
    assert [item["seq"] for item in entries] == list(range(world.log_size()))
    for item in entries:
        assert leaf_hash(item["entry"]) == base64.b64decode(item["leaf_hash"])
        if item["entry"]["command"]["actor"] != "ledger":
            key = verify_entry_signature(item["entry"])
            valid = [k for k in world.rows(PrincipalKey, PrincipalKey.principal == key.name)
                     if k.from_seq <= item["seq"] and (k.until_seq is None or item["seq"] < k.until_seq)]
            assert [k.verifier for k in valid] == [str(key)], f"entry {item['seq']} signed with a key not valid then"
    checkpoint = open_checkpoint(world.checkpoint(), [world.log_key()])
    assert checkpoint.size == len(entries)


def test_zz_registry_balances_match_the_projections(world):
    """The registry's balances (GET /v1/accounts/<id>) are the projections, formatted."""
    from ledger.projections import Balance

    rows = world.rows(Balance)
    decimals = {a.id: a.decimals for a in world.rows(Asset)}
    accounts = sorted({row.account for row in rows})
    for account in accounts:
        served = world.registry_balances(account)
        for row in (r for r in rows if r.account == account):
            d = decimals[row.asset]
            assert served[row.asset] == {
                "total": format_units(row.total, d), "frozen": format_units(row.frozen, d),
                "pledged": format_units(row.pledged, d), "held": format_units(row.held, d),
                "available": format_units(row.total - row.frozen - row.pledged - row.held, d)}, (account, row.asset)
    # Reads are scoped like writes: the SC exchange does not see CQ accounts.
    cq_account = next(a for a in accounts if a.startswith("CQ:ENT:"))
    check_problem(world.read(f"/v1/accounts/{cq_account}", as_="sc-exchange", expect=None), 404, "UNKNOWN_ACCOUNT")

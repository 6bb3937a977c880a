"""Accounts (contracts/accounts.py): opening them, freezing quantities and whole accounts."""

import json

from contract_book import CQ_C, PDR_SC, SC_A, SC_B, SC_P, uscc

from ledger.projections import Account, Hold


def test_account_open(standard_book):
    book = standard_book
    new_ent = f"SC:ENT:{uscc('91510100MA6C00077')}"
    outcome = book.do("sc-exchange", {"op": "account.open", "account": new_ent, "name": "成都某公司"},
                      {"op": "account.open", "account": "SC:IND:p-0002", "name": "张三"})
    assert outcome.results == [{"account": new_ent}, {"account": "SC:IND:p-0002"}]
    account = book.get(Account, new_ent)
    assert (account.province, account.kind, account.name, account.opened_seq, account.frozen_by) == (
        "SC", "ENT", "成都某公司", outcome.seq, None)
    # admin opens any kind but SINK, in any province
    outcome = book.do("admin", {"op": "account.open", "account": "CQ:ISS:cq-fgw", "name": "重庆市发改委"},
                      {"op": "account.open", "account": "SC:FIN:reserve", "name": "x"},
                      {"op": "account.open", "account": "CQ:IND:p-9", "name": "x"})
    assert [r["account"] for r in outcome.results] == ["CQ:ISS:cq-fgw", "SC:FIN:reserve", "CQ:IND:p-9"]
    assert book.get(Account, "CQ:ISS:cq-fgw").kind == "ISS"

    def code(actor, account, **extra):
        return book.refused(actor, {"op": "account.open", "account": account, "name": "x", **extra}).code

    assert code("sc-exchange", f"CQ:ENT:{uscc('91500000MA5U00099')}") == "FORBIDDEN_PROVINCE"
    assert code("sc-exchange", "CQ:IND:p-1") == "FORBIDDEN_PROVINCE"
    assert code("cq-exchange", "SC:IND:p-1") == "FORBIDDEN_PROVINCE"
    for kind in ("ISS", "EXC", "FIN", "SINK"):
        assert code("sc-exchange", f"SC:{kind}:x") == "FORBIDDEN_ROLE", kind
    assert code("admin", "SC:SINK:retired") == "FORBIDDEN_ROLE"
    assert code("sc-exchange", SC_A) == "ACCOUNT_EXISTS"
    assert code("sc-exchange", SC_P) == "ACCOUNT_EXISTS"
    assert code("admin", "SC:EXC:sc-exchange") == "ACCOUNT_EXISTS"
    for malformed in ("SC-IND-x", "sc:IND:x", "SC:ABC:x", "SC:IND:", "SC:IND:has space", "SCX:IND:x",
                      "SC:IND:x:y", "SC:IND:" + "x" * 65, ""):
        assert code("sc-exchange", malformed) in ("INVALID_ACCOUNT", "INVALID_OP"), malformed
    assert code("sc-exchange", "SC:ENT:not-a-uscc") == "INVALID_USCC"
    assert code("sc-exchange", SC_A[:-1] + ("0" if SC_A[-1] != "0" else "1")) == "INVALID_USCC"
    assert book.refused("sc-exchange", {"op": "account.open", "account": "SC:IND:p-3"}).code == "INVALID_OP"


def test_freeze_a_quantity(standard_book):
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "100"})
    outcome = book.do("sc-exchange", {"op": "account.freeze", "account": SC_A, "asset": PDR_SC,
                                      "quantity": "30", "reason": "(2025)川01执保123号"})
    freeze_id = outcome.results[0]["freeze"]
    assert freeze_id == f"F-{outcome.seq}-0"
    assert book.balance(SC_A, PDR_SC) == {"total": 100000, "frozen": 30000, "pledged": 0, "held": 0}
    hold = book.hold(freeze_id)
    assert (hold.kind, hold.account, hold.asset, hold.quantity, hold.released_seq) == (
        "freeze", SC_A, PDR_SC, 30000, None)
    assert json.loads(hold.details) == {"reason": "(2025)川01执保123号"}

    transfer = {"op": "transfer", "asset": PDR_SC, "from": SC_A, "to": SC_B}
    assert book.refused("sc-exchange", {**transfer, "quantity": "70.001"}).code == "INSUFFICIENT_BALANCE"
    assert book.refused("sc-exchange", {"op": "account.freeze", "account": SC_A, "asset": PDR_SC,
                                        "quantity": "70.001", "reason": "x"}).code == "INSUFFICIENT_BALANCE"
    book.do("sc-exchange", {**transfer, "quantity": "70"})
    assert book.balance(SC_A, PDR_SC) == {"total": 30000, "frozen": 30000, "pledged": 0, "held": 0}
    assert book.refused("sc-exchange", {**transfer, "quantity": "0.001"}).code == "INSUFFICIENT_BALANCE"

    assert book.refused("cq-exchange", {"op": "account.unfreeze", "freeze": freeze_id}).code == "FORBIDDEN_PROVINCE"
    outcome = book.do("sc-exchange", {"op": "account.unfreeze", "freeze": freeze_id})
    assert outcome.results == [{"freeze": freeze_id}]
    assert book.hold(freeze_id).released_seq == outcome.seq
    assert book.balance(SC_A, PDR_SC)["frozen"] == 0
    assert book.refused("sc-exchange", {"op": "account.unfreeze", "freeze": freeze_id}).code == "ALREADY_RELEASED"
    book.do("sc-exchange", {**transfer, "quantity": "30"})
    assert book.total(SC_A, PDR_SC) == 0 and book.total(SC_B, PDR_SC) == 100000


def test_freeze_refusals(standard_book):
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "10"})
    base = {"op": "account.freeze", "account": SC_A, "asset": PDR_SC, "quantity": "1", "reason": "x"}
    cases = [
        ("cq-exchange", base, "FORBIDDEN_PROVINCE"),
        ("sc-exchange", {**base, "account": "SC:IND:nobody"}, "UNKNOWN_ACCOUNT"),
        ("sc-exchange", {**base, "asset": "PDR-SC-COD-20990101-20991231"}, "UNKNOWN_ASSET"),
        ("sc-exchange", {**base, "quantity": "0"}, "INVALID_QUANTITY"),
        ("sc-exchange", {**base, "quantity": "0.0001"}, "INVALID_QUANTITY"),
        ("sc-exchange", {k: v for k, v in base.items() if k != "quantity"}, "INVALID_OP"),
        ("sc-exchange", {k: v for k, v in base.items() if k != "asset"}, "INVALID_OP"),
        ("sc-exchange", {k: v for k, v in base.items() if k != "reason"}, "INVALID_OP"),
        ("sc-exchange", {**base, "asset": "CNY", "quantity": "1.00"}, "NOT_ALLOWED_FOR_INSTRUMENT"),
        ("sc-sthj", base, "FORBIDDEN_ROLE"),
        ("sc-exchange", {"op": "account.unfreeze", "freeze": "F-1-0"}, "UNKNOWN_FREEZE"),
    ]
    for actor, op, code in cases:
        assert book.refused(actor, op).code == code, (actor, op)
    pledge = book.do("sc-exchange", {"op": "pledge", "account": SC_A, "asset": PDR_SC, "quantity": "1",
                                     "pledgee": "bank"}).results[0]["pledge"]
    assert book.refused("sc-exchange", {"op": "account.unfreeze", "freeze": pledge}).code == "UNKNOWN_FREEZE"
    # admin freezes and unfreezes in any province
    freeze = book.do("admin", base).results[0]["freeze"]
    book.do("admin", {"op": "account.unfreeze", "freeze": freeze})


def test_freeze_a_whole_account(standard_book):
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "10"})
    book.do("sc-exchange", {"op": "cny.deposit", "account": SC_A, "amount": "100"})
    outcome = book.do("sc-exchange", {"op": "account.freeze", "account": SC_A, "reason": "司法冻结"})
    freeze_id = outcome.results[0]["freeze"]
    assert book.get(Account, SC_A).frozen_by == freeze_id
    hold = book.hold(freeze_id)
    assert (hold.kind, hold.asset, hold.quantity) == ("freeze", None, 0)
    assert book.balance(SC_A, PDR_SC) == {"total": 10000, "frozen": 0, "pledged": 0, "held": 0}

    out_of_a = [
        {"op": "transfer", "asset": PDR_SC, "from": SC_A, "to": SC_B, "quantity": "1"},
        {"op": "trade", "asset": PDR_SC, "quantity": "1", "price": "1", "seller": SC_A, "buyer": SC_B},
        {"op": "cny.withdraw", "account": SC_A, "amount": "1"},
        {"op": "pledge", "account": SC_A, "asset": PDR_SC, "quantity": "1", "pledgee": "bank"},
        {"op": "surrender", "account": SC_A, "asset": PDR_SC, "quantity": "1", "compliance_year": 2025},
        {"op": "account.freeze", "account": SC_A, "reason": "again"},
    ]
    for op in out_of_a:
        assert book.refused("sc-exchange", op).code == "ACCOUNT_FROZEN", op
    assert book.refused("sc-exchange", {"op": "trade", "asset": PDR_SC, "quantity": "1", "price": "1",
                                        "seller": SC_B, "buyer": SC_A}).code in ("ACCOUNT_FROZEN",
                                                                                 "INSUFFICIENT_BALANCE")
    assert book.refused("cq-exchange", {"op": "trade", "asset": PDR_SC, "quantity": "1", "price": "1",
                                        "seller": SC_A, "buyer": CQ_C}).code == "ACCOUNT_FROZEN"
    # units still come in, and a quantity freeze may be added (by a court) on top
    book.do("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "1"})
    book.do("sc-exchange", {"op": "cny.deposit", "account": SC_A, "amount": "1"})
    book.do("sc-exchange", {"op": "account.freeze", "account": SC_A, "asset": PDR_SC, "quantity": "2",
                            "reason": "x"})
    assert book.refused("cq-exchange", {"op": "account.unfreeze", "freeze": freeze_id}).code == "FORBIDDEN_PROVINCE"
    book.do("sc-exchange", {"op": "account.unfreeze", "freeze": freeze_id})
    assert book.get(Account, SC_A).frozen_by is None
    book.do("sc-exchange", out_of_a[0], out_of_a[2])
    assert book.balance(SC_A, PDR_SC) == {"total": 10000, "frozen": 2000, "pledged": 0, "held": 0}
    assert book.total(SC_A, "CNY") == 10000
    assert len(book.rows(Hold, Hold.account == SC_A, Hold.released_seq.is_(None))) == 1

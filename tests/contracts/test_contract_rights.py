"""The rights' lifecycle (contracts/rights.py, contracts/instruments.py): define, issue, transfer,
pledge, surrender, expire."""

import json

import pytest
from contract_book import (CHTF, CQ_C, CQ_ISS, CQCER, EUR_SC, PDR_CQ, PDR_OLD, PDR_SC, SC_A, SC_B, SC_EXC,
                           SC_ISS, SC_P, WR_SC)

from ledger.projections import Account, Asset, Balance, Hold, Posting


def define(instrument, **attributes):
    return {"op": "asset.define", "instrument": instrument, "attributes": attributes}


def pdr(valid_from, valid_until, pollutant="SO2"):
    return define("PDR", pollutant=pollutant, valid_from=valid_from, valid_until=valid_until)


def wr(term_start, term_end, basin="tuojiang", right_type="irrigation"):
    return define("WR", right_type=right_type, basin=basin, term_start=term_start, term_end=term_end)


def test_defined_assets(standard_book):
    book = standard_book
    assets = {a.id: a for a in book.rows(Asset)}
    expected = {  # id: (instrument, province, decimals, issuer, expires_on)
        PDR_SC: ("PDR", "SC", 3, "sc-sthj", "2029-12-31"),
        PDR_OLD: ("PDR", "SC", 3, "sc-sthj", "2021-12-31"),
        PDR_CQ: ("PDR", "CQ", 3, "cq-sthj", "2029-12-31"),
        EUR_SC: ("EUR", "SC", 3, "sc-sthj", None),
        WR_SC: ("WR", "SC", 0, "sc-sthj", "2034-12-31"),
        CHTF: ("CHTF", "SC", 0, "sc-sthj", None),
        CQCER: ("CQCER", "CQ", 0, "cq-sthj", None),
    }
    assert set(assets) == set(expected)
    for asset_id, (instrument, province, decimals, issuer, expires_on) in expected.items():
        asset = assets[asset_id]
        assert (asset.instrument, asset.province, asset.decimals, asset.issuer, asset.expires_on) == (
            instrument, province, decimals, issuer, expires_on), asset_id
        assert asset.expired_seq is None and asset.next_serial == 1
    assert json.loads(assets[EUR_SC].attributes) == {"compliance_year": 2025}


def test_asset_define_terms_and_attributes(standard_book):
    book = standard_book
    ok = [
        (pdr("2026-01-01", "2030-12-31"), "PDR-SC-SO2-20260101-20301231"),         # 5 years exactly
        (pdr("2024-02-29", "2029-02-28", "TN"), "PDR-SC-TN-20240229-20290228"),    # from 29 February
        (pdr("2026-03-01", "2026-03-01", "VOCS"), "PDR-SC-VOCS-20260301-20260301"),  # one day
        (wr("2025-01-01", "2034-12-31"), "WR-SC-tuojiang-irrigation-20250101-20341231"),  # 10 years
        (define("EUR", compliance_year=2026), "EUR-SC-2026"),
        (define("CHTF", methodology="cdcer-002", project="bus", vintage=2025), "CHTF-cdcer-002-bus-2025"),
    ]
    for op, asset_id in ok:
        assert book.do("sc-sthj", op).results == [{"asset": asset_id}]
    assert book.do("cq-sthj", pdr("2026-01-01", "2030-12-31")).results == [{"asset": "PDR-CQ-SO2-20260101-20301231"}]

    refusals = [
        ("sc-sthj", pdr("2026-01-01", "2031-01-01"), "INVALID_OP"),     # 5 years and a day
        ("sc-sthj", pdr("2024-02-29", "2029-03-01"), "INVALID_OP"),
        ("sc-sthj", pdr("2026-01-02", "2026-01-01"), "INVALID_OP"),     # ends before it starts
        ("sc-sthj", wr("2025-01-01", "2035-01-01"), "INVALID_OP"),      # 10 years and a day
        ("sc-sthj", define("PDR", pollutant="CO2", valid_from="2026-01-01", valid_until="2026-12-31"), "INVALID_OP"),
        ("sc-sthj", define("PDR", pollutant="COD", valid_from="2026-01-01"), "INVALID_OP"),
        ("sc-sthj", define("PDR", pollutant="COD", valid_from="2026-01-01", valid_until="2026-12-31",
                           colour="blue"), "INVALID_OP"),
        ("sc-sthj", define("PDR", pollutant="COD", valid_from="2026-01-01", valid_until="31/12/2026"), "INVALID_OP"),
        ("sc-sthj", define("WR", right_type="industrial", basin="minjiang", term_start="2026-01-01",
                           term_end="2026-12-31"), "INVALID_OP"),
        ("sc-sthj", define("EUR", compliance_year="2027"), "INVALID_OP"),   # a string, not an integer
        ("sc-sthj", define("EUR", compliance_year=1999), "INVALID_OP"),
        ("sc-sthj", define("EUR"), "INVALID_OP"),
        ("sc-sthj", define("CHTF", methodology="cdcer-002", project="bus", vintage=1999), "INVALID_OP"),
        ("sc-sthj", define("CHTF", methodology="Cdcer", project="bus", vintage=2025), "INVALID_OP"),
        ("sc-sthj", define("CNY"), "INVALID_OP"),
        ("sc-sthj", define("XYZ"), "INVALID_OP"),
        ("sc-sthj", {"op": "asset.define", "instrument": "EUR"}, "INVALID_OP"),
        ("sc-sthj", {"op": "asset.define", "instrument": "EUR", "attributes": [2027]}, "INVALID_OP"),
        ("sc-sthj", define("CQCER", methodology="x", project="y", vintage=2025), "FORBIDDEN_INSTRUMENT"),
        ("cq-sthj", define("EUR", compliance_year=2027), "FORBIDDEN_INSTRUMENT"),
        ("cq-sthj", define("CHTF", methodology="x", project="y", vintage=2025), "FORBIDDEN_INSTRUMENT"),
        ("sc-sthj", define("EUR", compliance_year=2025), "ASSET_EXISTS"),
        ("sc-sthj", pdr("2025-01-01", "2029-12-31", "COD"), "ASSET_EXISTS"),
    ]
    for actor, op, code in refusals:
        assert book.refused(actor, op).code == code, op


def test_attribute_slugs_are_matched_whole(standard_book):
    """Regression: SLUG was a prefix match (found by these tests; fixed with contracts/fields.py ``whole``)."""
    for basin in ("minjiang river", "min/../jiang", "mINJIANG", "m" + "x" * 60, "minjiang\n", "岷江"):
        assert standard_book.refused("sc-sthj", wr("2026-01-01", "2026-12-31", basin=basin)).code == "INVALID_OP"


def test_issue(standard_book):
    book = standard_book
    outcome = book.do("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "100.5"},
                      {"op": "issue", "asset": WR_SC, "to": SC_P, "quantity": "2000"})
    assert outcome.results == [{"asset": PDR_SC, "serials": []}, {"asset": WR_SC, "serials": []}]
    assert book.balance(SC_A, PDR_SC) == {"total": 100500, "frozen": 0, "pledged": 0, "held": 0}
    assert book.total(SC_ISS, PDR_SC) == -100500
    assert book.total(SC_P, WR_SC) == 2000 and book.total(SC_ISS, WR_SC) == -2000
    postings = [(p.op, p.account, p.asset, p.amount) for p in book.rows(Posting, Posting.seq == outcome.seq)]
    assert sorted(postings) == sorted([(0, SC_ISS, PDR_SC, -100500), (0, SC_A, PDR_SC, 100500),
                                       (1, SC_ISS, WR_SC, -2000), (1, SC_P, WR_SC, 2000)])
    book.do("cq-sthj", {"op": "issue", "asset": PDR_CQ, "to": CQ_C, "quantity": "1"})
    assert book.total(CQ_ISS, PDR_CQ) == -1000

    issue = {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "1"}
    for actor, op, code in [
        ("cq-sthj", issue, "FORBIDDEN_INSTRUMENT"),                       # someone else's asset
        ("sc-sthj", {**issue, "to": CQ_C}, "FORBIDDEN_PROVINCE"),         # another province's holder
        ("sc-sthj", {**issue, "to": SC_ISS}, "INVALID_ACCOUNT"),
        ("sc-sthj", {**issue, "to": SC_EXC}, "INVALID_ACCOUNT"),
        ("sc-sthj", {**issue, "to": "SC:IND:nobody"}, "UNKNOWN_ACCOUNT"),
        ("sc-sthj", {**issue, "asset": "PDR-SC-COD-20990101-20991231"}, "UNKNOWN_ASSET"),
        ("sc-sthj", {**issue, "asset": "CNY"}, "NOT_ALLOWED_FOR_INSTRUMENT"),
        ("sc-sthj", {**issue, "quantity": "0.0001"}, "INVALID_QUANTITY"),
        ("sc-sthj", {**issue, "quantity": "0"}, "INVALID_QUANTITY"),
        ("sc-sthj", {**issue, "to": None}, "INVALID_OP"),
        ("sc-sthj", {**issue, "from": SC_ISS}, "INVALID_OP"),
    ]:
        assert book.refused(actor, op).code == code, (actor, op)


def test_transfer(standard_book):
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "100"})
    transfer = {"op": "transfer", "asset": PDR_SC, "from": SC_A, "to": SC_B, "quantity": "40.25"}
    assert book.do("sc-exchange", transfer).results == [{"serials": []}]
    # across provinces at once (the source's exchange moves it)
    book.do("sc-exchange", {**transfer, "to": CQ_C, "quantity": "9.75"})
    book.do("sc-exchange", {**transfer, "to": SC_P, "quantity": "50"})
    assert [book.total(a, PDR_SC) for a in (SC_A, SC_B, CQ_C, SC_P)] == [0, 40250, 9750, 50000]
    book.do("cq-exchange", {**transfer, "from": CQ_C, "to": SC_A, "quantity": "9.75"})
    assert book.total(SC_A, PDR_SC) == 9750

    for actor, op, code in [
        ("cq-exchange", {**transfer, "from": SC_B}, "FORBIDDEN_PROVINCE"),   # not the source's exchange
        ("sc-exchange", {**transfer, "from": SC_B, "to": SC_B}, "SAME_ACCOUNT"),
        ("sc-exchange", {**transfer, "from": SC_B, "to": SC_A, "quantity": "40.251"}, "INSUFFICIENT_BALANCE"),
        ("sc-exchange", {**transfer, "to": SC_ISS, "quantity": "1"}, "INVALID_ACCOUNT"),
        ("sc-exchange", {**transfer, "to": SC_EXC, "quantity": "1"}, "INVALID_ACCOUNT"),
        ("sc-exchange", {**transfer, "to": "SC:SINK:retired", "quantity": "1"}, "UNKNOWN_ACCOUNT"),
        ("sc-exchange", {**transfer, "to": "SC:IND:nobody"}, "UNKNOWN_ACCOUNT"),
        ("sc-exchange", {**transfer, "from": "SC:IND:nobody"}, "UNKNOWN_ACCOUNT"),
        ("sc-exchange", {**transfer, "asset": "CNY", "quantity": "1"}, "NOT_ALLOWED_FOR_INSTRUMENT"),
        ("sc-exchange", {**transfer, "quantity": "1.0001"}, "INVALID_QUANTITY"),
        ("sc-exchange", {**transfer, "quantity": "-1"}, "INVALID_QUANTITY"),
    ]:
        assert book.refused(actor, op).code == code, (actor, op)
    # nothing ever leaves a sink
    book.do("sc-exchange", {"op": "surrender", "account": SC_A, "asset": PDR_SC, "quantity": "1",
                            "compliance_year": 2025})
    assert book.refused("sc-exchange", {**transfer, "from": "SC:SINK:surrendered",
                                        "quantity": "1"}).code == "SINK_RECEIVES_ONLY"


def test_bug_operator_cannot_move_units_out_of_an_issuing_account(standard_book):
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "1"})
    minted = []
    for op in [
        {"op": "transfer", "asset": PDR_SC, "from": SC_ISS, "to": SC_B, "quantity": "5"},
        {"op": "surrender", "asset": PDR_SC, "account": SC_ISS, "quantity": "5", "compliance_year": 2025},
    ]:
        try:
            book.refused("sc-exchange", op)
        except AssertionError:
            minted.append(op["op"])
    assert not minted, f"{minted} debited {SC_ISS}: it now holds {book.total(SC_ISS, PDR_SC)}"


def test_pledge_and_release(standard_book):
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "100"},
            {"op": "issue", "asset": CHTF, "to": SC_A, "quantity": "10"})
    outcome = book.do("sc-exchange", {"op": "pledge", "account": SC_A, "asset": PDR_SC, "quantity": "60",
                                      "pledgee": "中国农业银行成都分行", "reference": "ZY-2025-001"})
    pledge_id = outcome.results[0]["pledge"]
    assert pledge_id == f"P-{outcome.seq}-0"
    assert book.balance(SC_A, PDR_SC) == {"total": 100000, "frozen": 0, "pledged": 60000, "held": 0}
    hold = book.hold(pledge_id)
    assert (hold.kind, hold.account, hold.asset, hold.quantity) == ("pledge", SC_A, PDR_SC, 60000)
    assert json.loads(hold.details) == {"pledgee": "中国农业银行成都分行", "reference": "ZY-2025-001"}
    transfer = {"op": "transfer", "asset": PDR_SC, "from": SC_A, "to": SC_B}
    assert book.refused("sc-exchange", {**transfer, "quantity": "40.001"}).code == "INSUFFICIENT_BALANCE"
    book.do("sc-exchange", {**transfer, "quantity": "40"})

    pledge = {"op": "pledge", "account": SC_A, "asset": PDR_SC, "quantity": "1", "pledgee": "bank"}
    for actor, op, code in [
        ("sc-exchange", pledge, "INSUFFICIENT_BALANCE"),                   # all 60 left are pledged
        ("cq-exchange", {**pledge, "quantity": "0.001"}, "FORBIDDEN_PROVINCE"),
        ("sc-exchange", {**pledge, "asset": CHTF}, "NOT_ALLOWED_FOR_INSTRUMENT"),
        ("sc-exchange", {**pledge, "asset": "CNY"}, "NOT_ALLOWED_FOR_INSTRUMENT"),
        ("sc-exchange", {k: v for k, v in pledge.items() if k != "pledgee"}, "INVALID_OP"),
        ("sc-exchange", {**pledge, "account": "SC:IND:nobody"}, "UNKNOWN_ACCOUNT"),
        ("sc-sthj", pledge, "FORBIDDEN_ROLE"),
        ("cq-exchange", {"op": "pledge.release", "pledge": pledge_id}, "FORBIDDEN_PROVINCE"),
        ("sc-exchange", {"op": "pledge.release", "pledge": "P-999-0"}, "UNKNOWN_PLEDGE"),
    ]:
        assert book.refused(actor, op).code == code, (actor, op)
    outcome = book.do("sc-exchange", {"op": "pledge.release", "pledge": pledge_id})
    assert outcome.results == [{"pledge": pledge_id}]
    assert book.hold(pledge_id).released_seq == outcome.seq
    assert book.balance(SC_A, PDR_SC) == {"total": 60000, "frozen": 0, "pledged": 0, "held": 0}
    assert book.refused("sc-exchange", {"op": "pledge.release", "pledge": pledge_id}).code == "ALREADY_RELEASED"
    book.do("sc-exchange", {**transfer, "quantity": "60"})


def test_surrender(standard_book):
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "10"},
            {"op": "issue", "asset": EUR_SC, "to": SC_A, "quantity": "5.5"},
            {"op": "issue", "asset": WR_SC, "to": SC_A, "quantity": "5"})
    outcome = book.do("sc-exchange", {"op": "surrender", "account": SC_A, "asset": EUR_SC, "quantity": "2.5",
                                      "compliance_year": 2025})
    assert outcome.results == [{"to": "SC:SINK:surrendered", "serials": []}]
    sink = book.get(Account, "SC:SINK:surrendered")
    assert (sink.kind, sink.province, sink.opened_seq) == ("SINK", "SC", outcome.seq)
    assert book.total(SC_A, EUR_SC) == 3000 and book.total("SC:SINK:surrendered", EUR_SC) == 2500
    # the issuer may surrender too (清缴 recorded by the authority); PDR has no compliance-year rule
    book.do("sc-sthj", {"op": "surrender", "account": SC_A, "asset": PDR_SC, "quantity": "4",
                        "compliance_year": 2024})
    assert book.total("SC:SINK:surrendered", PDR_SC) == 4000

    surrender = {"op": "surrender", "account": SC_A, "asset": EUR_SC, "quantity": "1", "compliance_year": 2025}
    for actor, op, code in [
        ("sc-exchange", {**surrender, "compliance_year": 2024}, "WRONG_COMPLIANCE_YEAR"),
        ("sc-exchange", {**surrender, "compliance_year": "2025"}, "INVALID_OP"),
        ("sc-exchange", {k: v for k, v in surrender.items() if k != "compliance_year"}, "INVALID_OP"),
        ("sc-exchange", {**surrender, "quantity": "3.001"}, "INSUFFICIENT_BALANCE"),
        ("sc-exchange", {**surrender, "asset": WR_SC}, "NOT_ALLOWED_FOR_INSTRUMENT"),
        ("cq-exchange", surrender, "FORBIDDEN_PROVINCE"),
        ("cq-sthj", surrender, "FORBIDDEN_PROVINCE"),
        ("sc-exchange", {**surrender, "account": "SC:SINK:surrendered"}, "SINK_RECEIVES_ONLY"),
        ("admin", surrender, "FORBIDDEN_ROLE"),
    ]:
        assert book.refused(actor, op).code == code, (actor, op)


def test_expire_refused_before_valid_until(standard_book):
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "1"})
    for asset, code in [(PDR_SC, "NOT_EXPIRED"), (WR_SC, "NOT_EXPIRED"), (EUR_SC, "NOT_ALLOWED_FOR_INSTRUMENT"),
                        (CHTF, "NOT_ALLOWED_FOR_INSTRUMENT"), ("PDR-XX", "UNKNOWN_ASSET")]:
        assert book.ledger_refused({"op": "expire", "asset": asset}).code == code, asset


def test_expire_after_valid_until(standard_book):
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": PDR_OLD, "to": SC_A, "quantity": "10"},
            {"op": "issue", "asset": PDR_OLD, "to": SC_B, "quantity": "5"})
    book.do("sc-exchange", {"op": "transfer", "asset": PDR_OLD, "from": SC_B, "to": CQ_C, "quantity": "1"})
    pledge = book.do("sc-exchange", {"op": "pledge", "account": SC_A, "asset": PDR_OLD, "quantity": "2",
                                     "pledgee": "bank"}).results[0]["pledge"]
    freeze = book.do("sc-exchange", {"op": "account.freeze", "account": SC_B, "asset": PDR_OLD, "quantity": "1",
                                     "reason": "court"}).results[0]["freeze"]
    whole = book.do("sc-exchange", {"op": "account.freeze", "account": SC_B, "reason": "court"}).results[0]["freeze"]
    outcome = book.ledger({"op": "expire", "asset": PDR_OLD})
    assert outcome.results == [{"asset": PDR_OLD, "holders": sorted([SC_A, SC_B, CQ_C]), "trades": []}]
    for account in (SC_A, SC_B, CQ_C):
        assert book.balance(account, PDR_OLD) == {"total": 0, "frozen": 0, "pledged": 0, "held": 0}
    assert book.total("SC:SINK:expired", PDR_OLD) == 14000
    assert book.total("CQ:SINK:expired", PDR_OLD) == 1000     # the holder's province's sink
    assert book.total(SC_ISS, PDR_OLD) == -15000
    assert book.hold(pledge).released_seq == outcome.seq
    assert book.hold(freeze).released_seq == outcome.seq
    assert book.hold(whole).released_seq is None              # the account freeze stays
    assert book.get(Asset, PDR_OLD).expired_seq == outcome.seq
    postings = book.rows(Posting, Posting.seq == outcome.seq)
    assert sum(p.amount for p in postings) == 0 and len(postings) == 6

    assert book.ledger_refused({"op": "expire", "asset": PDR_OLD}).code == "ASSET_EXPIRED"
    for actor, op in [
        ("sc-sthj", {"op": "issue", "asset": PDR_OLD, "to": SC_A, "quantity": "1"}),
        ("sc-exchange", {"op": "transfer", "asset": PDR_OLD, "from": SC_A, "to": SC_B, "quantity": "1"}),
        ("sc-exchange", {"op": "pledge", "asset": PDR_OLD, "account": SC_A, "quantity": "1", "pledgee": "x"}),
    ]:
        assert book.refused(actor, op).code == "ASSET_EXPIRED"
    assert book.refused("sc-exchange", {"op": "pledge.release", "pledge": pledge}).code == "ALREADY_RELEASED"


def test_expire_at_the_end_of_the_last_day_in_shanghai(standard_book):
    """valid_until 2029-12-31 is the last valid day in Asia/Shanghai (UTC+8): it expires from
    2029-12-31T16:00:00Z, not at UTC midnight."""
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "1"})
    with book.at("2029-12-31T15:59:59.999999Z"):
        assert book.ledger_refused({"op": "expire", "asset": PDR_SC}).code == "NOT_EXPIRED"
    with book.at("2029-12-31T16:00:00.000000Z"):
        book.ledger({"op": "expire", "asset": PDR_SC})
    assert book.total("SC:SINK:expired", PDR_SC) == 1000
    with book.at("2034-12-31T16:00:00.000000Z"):
        book.ledger({"op": "expire", "asset": WR_SC})          # nothing issued: expires all the same
    assert book.get(Asset, WR_SC).expired_seq is not None
    assert book.rows(Balance, Balance.asset == WR_SC) == []
    assert book.rows(Hold, Hold.asset == WR_SC) == []


def test_bug_a_balance_beyond_64_bits_is_refused(standard_book):
    book = standard_book
    biggest = str(2**62 - 1)
    for holder in (SC_A, SC_B):
        book.do("sc-sthj", {"op": "issue", "asset": WR_SC, "to": holder, "quantity": biggest})
    try:
        book.refused("sc-sthj", {"op": "issue", "asset": WR_SC, "to": SC_P, "quantity": biggest})
    except AssertionError:
        raise
    except Exception as error:
        pytest.fail(f"{type(error).__name__} instead of a refusal: {str(error)[:200]}")

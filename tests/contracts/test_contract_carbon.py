"""碳惠天府 / 碳惠通 credits (contracts/carbon.py, serial blocks in contracts/context.py): every tonne
has a serial; retirement sends serials to SINK:retired, at most once, whichever programme."""

import pytest
from contract_book import CHTF, CQ_C, CQ_ISS, CQCER, PDR_SC, SC_A, SC_B, SC_ISS

from contracts.carbon import serial_trace
from contracts.errors import Refused
from ledger.projections import SerialBlock, SerialMove


def blocks(book, asset):
    return sorted((b.start, b.end, b.account) for b in book.rows(SerialBlock, SerialBlock.asset == asset))


def retire(account, quantity, asset=CHTF, **extra):
    return {"op": "retire", "account": account, "asset": asset, "quantity": quantity,
            "purpose": "2025成都大运会碳中和", "beneficiary": "成都大运会执委会", **extra}


def test_issue_transfer_and_retire_serials(standard_book):
    book = standard_book
    outcome = book.do("sc-sthj", {"op": "issue", "asset": CHTF, "to": SC_A, "quantity": "100"})
    assert outcome.results == [{"asset": CHTF, "serials": [f"{CHTF}-1-100"]}]
    assert blocks(book, CHTF) == [(1, 100, SC_A)]
    outcome = book.do("sc-exchange", {"op": "transfer", "asset": CHTF, "from": SC_A, "to": SC_B,
                                      "quantity": "30", "serials": [f"{CHTF}-11-40"]})
    assert outcome.results == [{"serials": [f"{CHTF}-11-40"]}]
    assert blocks(book, CHTF) == [(1, 10, SC_A), (11, 40, SC_B), (41, 100, SC_A)]
    # without serials named, the lowest the source holds move, across blocks
    outcome = book.do("sc-exchange", {"op": "transfer", "asset": CHTF, "from": SC_A, "to": SC_B, "quantity": "15"})
    assert outcome.results == [{"serials": [f"{CHTF}-1-10", f"{CHTF}-41-45"]}]
    assert book.total(SC_A, CHTF) == 55 and book.total(SC_B, CHTF) == 45

    outcome = book.do("sc-exchange", retire(SC_B, "5"))
    assert outcome.results == [{"to": "SC:SINK:retired", "serials": [f"{CHTF}-1-5"],
                                "purpose": "2025成都大运会碳中和", "beneficiary": "成都大运会执委会"}]
    outcome = book.do("sc-exchange", retire(SC_B, "3", serials=[f"{CHTF}-12-13", f"{CHTF}-20-20"]))
    assert outcome.results[0]["serials"] == [f"{CHTF}-12-13", f"{CHTF}-20-20"]
    assert book.total("SC:SINK:retired", CHTF) == 8 and book.total(SC_B, CHTF) == 37
    assert [b for b in blocks(book, CHTF) if b[2] == "SC:SINK:retired"] == [
        (1, 5, "SC:SINK:retired"), (12, 13, "SC:SINK:retired"), (20, 20, "SC:SINK:retired")]

    with book.session() as session:
        trace = [(m.kind, m.from_account, m.to_account, m.start, m.end) for m in serial_trace(session, CHTF, 12)]
    assert trace == [("issue", SC_ISS, SC_A, 1, 100), ("transfer", SC_A, SC_B, 11, 40),
                     ("retire", SC_B, "SC:SINK:retired", 12, 13)]

    # a serial is retired at most once: its holder no longer holds it, and nothing leaves the sink
    for actor, op, code in [
        ("sc-exchange", retire(SC_B, "2", serials=[f"{CHTF}-12-13"]), "SERIALS_NOT_HELD"),
        ("sc-exchange", retire(SC_B, "1", serials=[f"{CHTF}-1-1"]), "SERIALS_NOT_HELD"),
        ("sc-exchange", retire("SC:SINK:retired", "1"), "SINK_RECEIVES_ONLY"),
        ("sc-exchange", {"op": "transfer", "asset": CHTF, "from": "SC:SINK:retired", "to": SC_A, "quantity": "1",
                         "serials": [f"{CHTF}-1-1"]}, "SINK_RECEIVES_ONLY"),
        ("sc-exchange", {"op": "surrender", "asset": CHTF, "account": "SC:SINK:retired", "quantity": "1",
                         "compliance_year": 2025}, "SINK_RECEIVES_ONLY"),
    ]:
        assert book.refused(actor, op).code == code, op
    assert book.total("SC:SINK:retired", CHTF) == 8


def test_retire_refusals(standard_book):
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": CHTF, "to": SC_A, "quantity": "10"},
            {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "10"})
    book.do("sc-exchange", {"op": "transfer", "asset": CHTF, "from": SC_A, "to": SC_B, "quantity": "2"})
    book.do("sc-exchange", {"op": "account.freeze", "account": SC_A, "asset": CHTF, "quantity": "3",
                            "reason": "court"})
    for actor, op, code in [
        ("sc-exchange", retire(SC_A, "1", asset=PDR_SC), "NOT_ALLOWED_FOR_INSTRUMENT"),   # carbon only
        ("sc-exchange", retire(SC_A, "6"), "INSUFFICIENT_BALANCE"),       # 8 held, 3 of them frozen
        ("cq-exchange", retire(SC_A, "1"), "FORBIDDEN_PROVINCE"),
        ("sc-sthj", retire(SC_A, "1"), "FORBIDDEN_ROLE"),
        ("sc-exchange", retire(SC_A, "1.5"), "INVALID_QUANTITY"),
        ("sc-exchange", {k: v for k, v in retire(SC_A, "1").items() if k != "purpose"}, "INVALID_OP"),
        ("sc-exchange", {k: v for k, v in retire(SC_A, "1").items() if k != "beneficiary"}, "INVALID_OP"),
        ("sc-exchange", retire(SC_A, "1", purpose=""), "INVALID_OP"),
        ("sc-exchange", retire(SC_A, "1", serials=[]), "INVALID_OP"),
        ("sc-exchange", retire(SC_A, "1", serials=[f"{CQCER}-3-3"]), "INVALID_SERIALS"),
        ("sc-exchange", retire(SC_A, "1", serials=[f"{CHTF}-4-3"]), "INVALID_SERIALS"),
        ("sc-exchange", retire(SC_A, "1", serials=[f"{CHTF}-0-0"]), "INVALID_SERIALS"),
        ("sc-exchange", retire(SC_A, "1", serials=[f"{CHTF}-x-3"]), "INVALID_SERIALS"),
        ("sc-exchange", retire(SC_A, "1", serials=[f"{CHTF}-3-4"]), "SERIALS_MISMATCH"),
        ("sc-exchange", retire(SC_A, "1", serials=[f"{CHTF}-1-1"]), "SERIALS_NOT_HELD"),   # B holds 1–2
        ("sc-exchange", retire(SC_A, "1", serials=[f"{CHTF}-11-11"]), "SERIALS_NOT_HELD"),  # never issued
        ("sc-exchange", retire(SC_A, "2", serials=[f"{CHTF}-3-3", f"{CHTF}-3-3"]), "SERIALS_NOT_HELD"),
    ]:
        assert book.refused(actor, op).code == code, op
    book.do("sc-exchange", retire(SC_A, "5"))
    assert book.balance(SC_A, CHTF) == {"total": 3, "frozen": 3, "pledged": 0, "held": 0}


def test_cross_recognition_one_retirement_per_serial_ever(standard_book):
    """川渝互认: a 碳惠通 credit held in Sichuan is retired there, and never again in Chongqing."""
    book = standard_book
    assert book.do("cq-sthj", {"op": "issue", "asset": CQCER, "to": CQ_C, "quantity": "10"}).results == [
        {"asset": CQCER, "serials": [f"{CQCER}-1-10"]}]
    book.do("cq-exchange", {"op": "transfer", "asset": CQCER, "from": CQ_C, "to": SC_A, "quantity": "4"})
    outcome = book.do("sc-exchange", retire(SC_A, "4", asset=CQCER))
    assert outcome.results[0]["to"] == "SC:SINK:retired"
    assert outcome.results[0]["serials"] == [f"{CQCER}-1-4"]
    assert book.refused("cq-exchange", retire(CQ_C, "1", asset=CQCER,
                                              serials=[f"{CQCER}-2-2"])).code == "SERIALS_NOT_HELD"
    book.do("cq-exchange", retire(CQ_C, "6", asset=CQCER))
    assert book.total("CQ:SINK:retired", CQCER) == 6 and book.total("SC:SINK:retired", CQCER) == 4
    assert book.total(CQ_ISS, CQCER) == -10
    moves = book.rows(SerialMove, SerialMove.asset == CQCER, SerialMove.kind == "retire")
    retired = sorted(s for m in moves for s in range(m.start, m.end + 1))
    assert retired == list(range(1, 11))


def test_bug_a_holder_can_name_a_range_it_holds_in_two_blocks(standard_book):
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": CHTF, "to": SC_A, "quantity": "10"})
    move = {"op": "transfer", "asset": CHTF, "quantity": "3", "serials": [f"{CHTF}-4-6"]}
    book.do("sc-exchange", {**move, "from": SC_A, "to": SC_B})
    book.do("sc-exchange", {**move, "from": SC_B, "to": SC_A})
    assert book.total(SC_A, CHTF) == 10       # A holds 1–3, 4–6 and 7–10 again
    book.do("sc-exchange", retire(SC_A, "10", serials=[f"{CHTF}-1-10"]))


def test_bug_too_many_credits_is_insufficient_balance(standard_book):
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": CHTF, "to": SC_A, "quantity": "10"})
    try:
        code = book.refused("sc-exchange", retire(SC_A, "11")).code
    except Refused as refusal:  # pragma: no cover
        code = refusal.code
    assert code == "INSUFFICIENT_BALANCE"

"""CNY in and out (contracts/cash.py) and reversal (contracts/reverse.py)."""

import pytest
from contract_book import CHTF, CQ_C, PDR_OLD, PDR_SC, SC_A, SC_B, SC_EXC, SC_ISS, SC_P

from ledger.projections import Asset, Posting, Reversal, SerialBlock


def test_cny_deposit_and_withdraw(standard_book):
    book = standard_book
    assert book.get(Asset, "CNY") is None
    deposit = {"op": "cny.deposit", "account": SC_A, "amount": "1000.50"}
    outcome = book.do("sc-exchange", deposit, {**deposit, "account": SC_P, "amount": "0.01"})
    assert outcome.results == [{"account": SC_A}, {"account": SC_P}]
    cny = book.get(Asset, "CNY")
    assert (cny.instrument, cny.decimals) == ("CNY", 2)
    assert book.total(SC_A, "CNY") == 100050 and book.total(SC_P, "CNY") == 1
    assert book.total(SC_EXC, "CNY") == -100051                     # the exchange owes its depositors
    postings = sorted((p.account, p.amount) for p in book.rows(Posting, Posting.seq == outcome.seq))
    assert postings == sorted([(SC_EXC, -100050), (SC_A, 100050), (SC_EXC, -1), (SC_P, 1)])

    outcome = book.do("sc-exchange", {"op": "cny.withdraw", "account": SC_A, "amount": "0.50"})
    assert outcome.results == [{"account": SC_A}]
    assert book.total(SC_A, "CNY") == 100000 and book.total(SC_EXC, "CNY") == -100001
    withdraw = {"op": "cny.withdraw", "account": SC_A, "amount": "1000.01"}
    for actor, op, code in [
        ("sc-exchange", withdraw, "INSUFFICIENT_BALANCE"),
        ("cq-exchange", {**withdraw, "amount": "1"}, "FORBIDDEN_PROVINCE"),
        ("cq-exchange", {**deposit, "account": SC_B}, "FORBIDDEN_PROVINCE"),
        ("sc-exchange", {**deposit, "account": CQ_C}, "FORBIDDEN_PROVINCE"),
        ("sc-exchange", {**deposit, "account": SC_ISS}, "INVALID_ACCOUNT"),
        ("sc-exchange", {**deposit, "account": SC_EXC}, "INVALID_ACCOUNT"),
        ("sc-exchange", {**deposit, "account": "SC:IND:nobody"}, "UNKNOWN_ACCOUNT"),
        ("sc-exchange", {**deposit, "amount": "0.001"}, "INVALID_QUANTITY"),
        ("sc-exchange", {**deposit, "amount": "0.00"}, "INVALID_QUANTITY"),
        ("sc-exchange", {**deposit, "amount": "-5"}, "INVALID_QUANTITY"),
        ("sc-exchange", {**deposit, "amount": 5}, "INVALID_OP"),
        ("sc-exchange", {**deposit, "quantity": "5"}, "INVALID_OP"),
        ("sc-sthj", deposit, "FORBIDDEN_ROLE"),
        ("sc-finance", deposit, "FORBIDDEN_ROLE"),
    ]:
        assert book.refused(actor, op).code == code, (actor, op)
    book.do("sc-exchange", {**withdraw, "amount": "1000.00"})
    assert book.total(SC_A, "CNY") == 0 and book.total(SC_EXC, "CNY") == -1


def test_reverse_posts_the_exact_opposite_once(standard_book):
    book = standard_book
    issued = book.do("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "100"})
    moved = book.do("sc-exchange", {"op": "transfer", "asset": PDR_SC, "from": SC_A, "to": SC_B,
                                    "quantity": "30"},
                    {"op": "cny.deposit", "account": SC_B, "amount": "12.34"})
    outcome = book.do("admin", {"op": "reverse", "seq": moved.seq, "reason": "录入错误"})
    assert outcome.results == [{"reversed": moved.seq}]
    original = sorted((p.account, p.asset, p.amount) for p in book.rows(Posting, Posting.seq == moved.seq))
    opposite = sorted((p.account, p.asset, -p.amount) for p in book.rows(Posting, Posting.seq == outcome.seq))
    assert original == opposite and len(original) == 4
    assert book.total(SC_A, PDR_SC) == 100000 and book.total(SC_B, PDR_SC) == 0
    assert book.total(SC_B, "CNY") == 0 and book.total(SC_EXC, "CNY") == 0
    assert book.get(Reversal, moved.seq).by_seq == outcome.seq
    assert book.refused("admin", {"op": "reverse", "seq": moved.seq, "reason": "again"}).code == "ALREADY_REVERSED"
    # the original entry is still in the log: nothing is deleted
    assert book.store.entry(moved.seq).entry["command"]["ops"][0]["op"] == "transfer"

    # reversing the reversal puts the movements back; the original stays reversed once
    again = book.do("admin", {"op": "reverse", "seq": outcome.seq, "reason": "the correction was wrong"})
    assert book.total(SC_B, PDR_SC) == 30000
    assert book.refused("admin", {"op": "reverse", "seq": outcome.seq, "reason": "x"}).code == "ALREADY_REVERSED"
    assert again.results == [{"reversed": outcome.seq}]
    # a reversal that would take units the holder no longer has is refused
    book.do("sc-exchange", {"op": "transfer", "asset": PDR_SC, "from": SC_A, "to": SC_P, "quantity": "70"})
    assert book.refused("admin", {"op": "reverse", "seq": issued.seq, "reason": "x"}).code == "INSUFFICIENT_BALANCE"


def test_reverse_moves_serials_back(standard_book):
    book = standard_book
    issued = book.do("sc-sthj", {"op": "issue", "asset": CHTF, "to": SC_A, "quantity": "10"})
    moved = book.do("sc-exchange", {"op": "transfer", "asset": CHTF, "from": SC_A, "to": SC_B, "quantity": "4",
                                    "serials": [f"{CHTF}-3-6"]})
    book.do("admin", {"op": "reverse", "seq": moved.seq, "reason": "x"})
    assert book.total(SC_A, CHTF) == 10 and book.total(SC_B, CHTF) == 0
    held = sorted((b.start, b.end) for b in book.rows(SerialBlock, SerialBlock.account == SC_A))
    assert sum(end - start + 1 for start, end in held) == 10 and held[0][0] == 1 and held[-1][1] == 10
    second = book.do("sc-sthj", {"op": "issue", "asset": CHTF, "to": SC_A, "quantity": "5"})
    assert second.results[0]["serials"] == [f"{CHTF}-11-15"]
    book.do("admin", {"op": "reverse", "seq": second.seq, "reason": "issued in error"})
    assert book.total(SC_A, CHTF) == 10 and book.total(SC_ISS, CHTF) == -10
    assert [(b.start, b.end) for b in book.rows(SerialBlock, SerialBlock.account == SC_ISS)] == [(11, 15)]
    assert issued.results[0]["serials"] == [f"{CHTF}-1-10"]


def test_bug_reverse_an_issuance_after_a_reversed_transfer(standard_book):
    book = standard_book
    issued = book.do("sc-sthj", {"op": "issue", "asset": CHTF, "to": SC_A, "quantity": "10"})
    moved = book.do("sc-exchange", {"op": "transfer", "asset": CHTF, "from": SC_A, "to": SC_B, "quantity": "4",
                                    "serials": [f"{CHTF}-3-6"]})
    book.do("admin", {"op": "reverse", "seq": moved.seq, "reason": "x"})
    book.do("admin", {"op": "reverse", "seq": issued.seq, "reason": "issued in error"})
    assert book.total(SC_A, CHTF) == 0 and book.total(SC_ISS, CHTF) == 0


def test_reverse_refusals(standard_book):
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "100"},
            {"op": "issue", "asset": CHTF, "to": SC_A, "quantity": "10"},
            {"op": "issue", "asset": PDR_OLD, "to": SC_A, "quantity": "1"})
    book.do("cq-exchange", {"op": "cny.deposit", "account": CQ_C, "amount": "100"})
    surrendered = book.do("sc-exchange", {"op": "surrender", "account": SC_A, "asset": PDR_SC, "quantity": "1",
                                          "compliance_year": 2025})
    retired = book.do("sc-exchange", {"op": "retire", "account": SC_A, "asset": CHTF, "quantity": "1",
                                      "purpose": "x", "beneficiary": "y"})
    expired = book.ledger({"op": "expire", "asset": PDR_OLD})
    trade_id = book.do("sc-exchange", {"op": "trade", "asset": PDR_SC, "quantity": "1", "price": "10",
                                       "seller": SC_A, "buyer": CQ_C}).results[0]["trade"]
    pending = book.size() - 1
    confirmed = book.do("cq-exchange", {"op": "trade.confirm", "trade": trade_id})
    opened = book.do("sc-exchange", {"op": "account.open", "account": "SC:IND:p-77", "name": "x"})
    for op, code in [
        ({"seq": surrendered.seq}, "IRREVERSIBLE"),          # into a sink
        ({"seq": retired.seq}, "IRREVERSIBLE"),
        ({"seq": expired.seq}, "IRREVERSIBLE"),
        ({"seq": confirmed.seq}, "IRREVERSIBLE"),            # created an obligation
        ({"seq": pending}, "NOTHING_TO_REVERSE"),            # holds only
        ({"seq": opened.seq}, "NOTHING_TO_REVERSE"),
        ({"seq": 0}, "NOTHING_TO_REVERSE"),                  # genesis
        ({"seq": book.size()}, "UNKNOWN_ENTRY"),             # this very entry
        ({"seq": book.size() + 5}, "UNKNOWN_ENTRY"),
        ({"seq": -1}, "INVALID_OP"),
        ({"seq": "3"}, "INVALID_OP"),
    ]:
        assert book.refused("admin", {"op": "reverse", "reason": "x", **op}).code == code, op
    assert book.refused("admin", {"op": "reverse", "seq": surrendered.seq}).code == "INVALID_OP"   # no reason

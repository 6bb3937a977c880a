"""Trades (contracts/trades.py): settled at once within a province; across provinces held until
the other province's exchange confirms, or either cancels, or the ledger expires the hold."""

from datetime import timedelta

import pytest
from contract_book import CHTF, CQ_C, CQ_EXC, PDR_OLD, PDR_SC, SC_A, SC_B, SC_EXC, SC_ISS, WR_SC

from contracts.errors import Refused
from ledger.entry import format_time, parse_time
from ledger.projections import Obligation, Trade

EMPTY = {"total": 0, "frozen": 0, "pledged": 0, "held": 0}


def bal(total=0, frozen=0, pledged=0, held=0):
    return {"total": total, "frozen": frozen, "pledged": pledged, "held": held}


def trade(seller, buyer, quantity, price, asset=PDR_SC, **extra):
    return {"op": "trade", "asset": asset, "quantity": quantity, "price": price, "seller": seller,
            "buyer": buyer, **extra}


def test_trade_within_a_province_settles_at_once(standard_book):
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "100"})
    book.do("sc-exchange", {"op": "cny.deposit", "account": SC_B, "amount": "2000"})
    outcome = book.do("sc-exchange", trade(SC_A, SC_B, "10.5", "123.45"))
    trade_id = f"T-{outcome.seq}-0"
    assert outcome.results == [{"trade": trade_id, "amount": "1296.23", "serials": [], "status": "settled"}]
    assert book.balance(SC_A, PDR_SC) == bal(89500) and book.balance(SC_B, PDR_SC) == bal(10500)
    assert book.balance(SC_B, "CNY") == bal(200000 - 129623) and book.balance(SC_A, "CNY") == bal(129623)
    record = book.get(Trade, trade_id)
    assert (record.status, record.closed_seq, record.amount, record.quantity, record.price) == (
        "settled", outcome.seq, 129623, 10500, "123.45")
    assert (record.seller_exchange, record.buyer_exchange, record.expires_at) == (SC_EXC, SC_EXC, None)
    assert book.rows(Obligation) == []
    # a price that rounds to nothing still trades (0.0049 元 for 1 m³)
    book.do("sc-sthj", {"op": "issue", "asset": WR_SC, "to": SC_A, "quantity": "1"})
    outcome = book.do("sc-exchange", trade(SC_A, SC_B, "1", "0.0049", asset=WR_SC))
    assert outcome.results[0]["amount"] == "0.00"
    outcome = book.do("sc-exchange", trade(SC_A, SC_B, "0.001", "5"))
    assert outcome.results[0]["amount"] == "0.01"       # 0.005 → 0.01, half-up

    for actor, op, code in [
        ("sc-exchange", trade(SC_A, SC_B, "89.499", "100"), "INSUFFICIENT_BALANCE"),   # B has 703.75 − 0.01
        ("sc-exchange", trade(SC_A, SC_B, "89.5", "1"), "INSUFFICIENT_BALANCE"),       # A has 89.499
        ("sc-exchange", trade(SC_A, SC_A, "1", "1"), "SAME_ACCOUNT"),
        ("sc-exchange", trade(SC_ISS, SC_B, "1", "1"), "INVALID_ACCOUNT"),
        ("sc-exchange", trade(SC_A, SC_EXC, "1", "1"), "INVALID_ACCOUNT"),
        ("sc-exchange", trade(SC_A, "SC:IND:nobody", "1", "1"), "UNKNOWN_ACCOUNT"),
        ("sc-exchange", trade(SC_A, SC_B, "1", "1", asset="CNY"), "NOT_ALLOWED_FOR_INSTRUMENT"),
        ("sc-exchange", trade(SC_A, SC_B, "1", "1", asset="PDR-X"), "UNKNOWN_ASSET"),
        ("cq-exchange", trade(SC_A, SC_B, "1", "1"), "FORBIDDEN_PROVINCE"),   # the exchange of neither
        ("sc-exchange", trade(SC_A, SC_B, "1", "0"), "INVALID_QUANTITY"),
        ("sc-exchange", trade(SC_A, SC_B, "1", "1.00001"), "INVALID_QUANTITY"),
        ("sc-exchange", trade(SC_A, SC_B, "1.0001", "1"), "INVALID_QUANTITY"),
        ("sc-exchange", trade(SC_A, SC_B, "1", "1", hold_hours=0), "INVALID_OP"),
        ("sc-exchange", trade(SC_A, SC_B, "1", "1", hold_hours=721), "INVALID_OP"),
        ("sc-exchange", trade(SC_A, SC_B, "1", 1), "INVALID_OP"),
    ]:
        assert book.refused(actor, op).code == code, (actor, op)


def test_trade_across_provinces_held_then_confirmed_by_the_other_province(standard_book):
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "100"})
    book.do("cq-exchange", {"op": "cny.deposit", "account": CQ_C, "amount": "5000"})
    outcome = book.do("sc-exchange", trade(SC_A, CQ_C, "20", "100"))
    trade_id = f"T-{outcome.seq}-0"
    expires_at = format_time(parse_time(outcome.entry["time"]) + timedelta(hours=72))
    assert outcome.results == [{"trade": trade_id, "amount": "2000.00", "expires_at": expires_at,
                                "status": "pending"}]
    assert book.balance(SC_A, PDR_SC) == bal(100000, held=20000)
    assert book.balance(CQ_C, "CNY") == bal(500000, held=200000)
    assert book.balance(CQ_C, PDR_SC) == EMPTY
    seller_hold, buyer_hold = book.hold(f"{trade_id}/seller"), book.hold(f"{trade_id}/buyer")
    assert (seller_hold.kind, seller_hold.account, seller_hold.asset, seller_hold.quantity) == (
        "trade", SC_A, PDR_SC, 20000)
    assert (buyer_hold.kind, buyer_hold.account, buyer_hold.asset, buyer_hold.quantity) == (
        "trade", CQ_C, "CNY", 200000)
    record = book.get(Trade, trade_id)
    assert (record.status, record.seller_exchange, record.buyer_exchange) == ("pending", SC_EXC, None)
    # held units cannot move, held CNY cannot leave
    assert book.refused("sc-exchange", {"op": "transfer", "asset": PDR_SC, "from": SC_A, "to": SC_B,
                                        "quantity": "80.001"}).code == "INSUFFICIENT_BALANCE"
    assert book.refused("cq-exchange", {"op": "cny.withdraw", "account": CQ_C,
                                        "amount": "3000.01"}).code == "INSUFFICIENT_BALANCE"
    # only the other province confirms
    assert book.refused("sc-exchange", {"op": "trade.confirm", "trade": trade_id}).code == "FORBIDDEN_PROVINCE"
    outcome = book.do("cq-exchange", {"op": "trade.confirm", "trade": trade_id})
    obligation_id = f"O-{outcome.seq}-0"
    assert outcome.results == [{"trade": trade_id, "status": "confirmed", "serials": [],
                                "obligation": obligation_id}]
    assert book.balance(SC_A, PDR_SC) == bal(80000) and book.balance(CQ_C, PDR_SC) == bal(20000)
    assert book.balance(CQ_C, "CNY") == bal(300000) and book.balance(SC_A, "CNY") == bal(200000)
    assert book.total(CQ_EXC, "CNY") == -500000 + 200000     # owes C less, is owed by nobody
    assert book.total(SC_EXC, "CNY") == -200000              # paid its seller
    obligation = book.get(Obligation, obligation_id)
    assert (obligation.pool, obligation.debtor, obligation.creditor, obligation.amount, obligation.source_seq,
            obligation.status) == ("trade", CQ_EXC, SC_EXC, 200000, outcome.seq, "open")
    record = book.get(Trade, trade_id)
    assert (record.status, record.closed_seq, record.seller_exchange, record.buyer_exchange) == (
        "confirmed", outcome.seq, SC_EXC, CQ_EXC)
    assert book.hold(f"{trade_id}/seller").released_seq == outcome.seq
    assert book.hold(f"{trade_id}/buyer").released_seq == outcome.seq
    for actor, op in [("cq-exchange", "trade.confirm"), ("sc-exchange", "trade.cancel")]:
        assert book.refused(actor, {"op": op, "trade": trade_id}).code == "TRADE_NOT_PENDING"
    assert book.ledger_refused({"op": "trade.expire", "trade": trade_id}).code == "TRADE_NOT_PENDING"


def test_trade_recorded_by_the_buyers_exchange_waits_for_the_sellers(standard_book):
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": CHTF, "to": SC_A, "quantity": "100"})
    book.do("cq-exchange", {"op": "cny.deposit", "account": CQ_C, "amount": "100"})
    trade_id = book.do("cq-exchange", trade(SC_A, CQ_C, "30", "2.5", asset=CHTF)).results[0]["trade"]
    assert book.refused("cq-exchange", {"op": "trade.confirm", "trade": trade_id}).code == "FORBIDDEN_PROVINCE"
    outcome = book.do("sc-exchange", {"op": "trade.confirm", "trade": trade_id})
    assert outcome.results[0]["serials"] == [f"{CHTF}-1-30"]
    assert book.total(CQ_C, CHTF) == 30 and book.total(CQ_C, "CNY") == 10000 - 7500
    obligation = book.get(Obligation, outcome.results[0]["obligation"])
    assert (obligation.debtor, obligation.creditor, obligation.amount) == (CQ_EXC, SC_EXC, 7500)


def test_trade_cancel(standard_book):
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "100"})
    book.do("cq-exchange", {"op": "cny.deposit", "account": CQ_C, "amount": "5000"})
    for canceller in ("sc-exchange", "cq-exchange"):
        trade_id = book.do("sc-exchange", trade(SC_A, CQ_C, "20", "100")).results[0]["trade"]
        assert book.refused("sc-sthj", {"op": "trade.cancel", "trade": trade_id}).code == "FORBIDDEN_ROLE"
        outcome = book.do(canceller, {"op": "trade.cancel", "trade": trade_id})
        assert outcome.results == [{"trade": trade_id, "status": "cancelled"}]
        assert book.balance(SC_A, PDR_SC) == bal(100000) and book.balance(CQ_C, "CNY") == bal(500000)
        assert book.hold(f"{trade_id}/seller").released_seq == outcome.seq
        record = book.get(Trade, trade_id)
        assert (record.status, record.closed_seq) == ("cancelled", outcome.seq)
        assert book.refused("cq-exchange", {"op": "trade.confirm", "trade": trade_id}).code == "TRADE_NOT_PENDING"
    assert book.refused("sc-exchange", {"op": "trade.cancel", "trade": "T-999-0"}).code == "UNKNOWN_TRADE"
    assert book.refused("cq-exchange", {"op": "trade.confirm", "trade": "T-999-0"}).code == "UNKNOWN_TRADE"
    assert book.rows(Obligation) == []


def test_trade_expire_only_after_expires_at(standard_book):
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "100"})
    book.do("cq-exchange", {"op": "cny.deposit", "account": CQ_C, "amount": "5000"})
    first = book.do("sc-exchange", trade(SC_A, CQ_C, "20", "100", hold_hours=1)).results[0]
    second = book.do("sc-exchange", trade(SC_A, CQ_C, "1", "100", hold_hours=2)).results[0]
    assert book.ledger_refused({"op": "trade.expire", "trade": first["trade"]}).code == "NOT_EXPIRED"
    assert book.refused("sc-exchange", {"op": "trade.expire", "trade": first["trade"]}).code == "FORBIDDEN_ROLE"
    just_before = format_time(parse_time(first["expires_at"]) - timedelta(microseconds=1))
    with book.at(just_before):
        assert book.ledger_refused({"op": "trade.expire", "trade": first["trade"]}).code == "NOT_EXPIRED"
    with book.at(first["expires_at"]):
        # at expires_at the hold is over: no confirmation, and the ledger may expire it
        assert book.refused("cq-exchange", {"op": "trade.confirm",
                                            "trade": first["trade"]}).code == "HOLD_EXPIRED"
        outcome = book.ledger({"op": "trade.expire", "trade": first["trade"]})
    assert outcome.results == [{"trade": first["trade"], "status": "expired"}]
    assert book.balance(SC_A, PDR_SC) == bal(100000, held=1000)
    assert book.balance(CQ_C, "CNY") == bal(500000, held=10000)
    assert book.get(Trade, first["trade"]).status == "expired"
    assert book.ledger_refused({"op": "trade.expire", "trade": first["trade"]}).code == "TRADE_NOT_PENDING"
    # past its hold a trade can still be cancelled by a party's exchange
    with book.at(format_time(parse_time(second["expires_at"]) + timedelta(days=1))):
        assert book.refused("cq-exchange", {"op": "trade.confirm",
                                            "trade": second["trade"]}).code == "HOLD_EXPIRED"
        book.do("cq-exchange", {"op": "trade.cancel", "trade": second["trade"]})
    assert book.balance(SC_A, PDR_SC) == bal(100000) and book.balance(CQ_C, "CNY") == bal(500000)


def test_expiry_closes_the_assets_pending_trades(standard_book):
    """Regression: expire() used to release a pending trade's seller hold and leave the trade
    pending, so trade.cancel / trade.expire released it a second time and balances.held went
    negative (found by these tests; fixed upstream with trades.lapse_trades)."""
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": PDR_OLD, "to": SC_A, "quantity": "10"})
    book.do("cq-exchange", {"op": "cny.deposit", "account": CQ_C, "amount": "1000"})
    trade_id = book.do("sc-exchange", trade(SC_A, CQ_C, "4", "10", asset=PDR_OLD)).results[0]["trade"]
    outcome = book.ledger({"op": "expire", "asset": PDR_OLD})
    assert outcome.results == [{"asset": PDR_OLD, "holders": [SC_A], "trades": [trade_id]}]
    record = book.get(Trade, trade_id)
    assert (record.status, record.closed_seq) == ("expired", outcome.seq)
    assert book.hold(f"{trade_id}/seller").released_seq == outcome.seq
    assert book.hold(f"{trade_id}/buyer").released_seq == outcome.seq
    assert book.balance(CQ_C, "CNY") == bal(100000)          # the buyer's CNY is free again
    assert book.balance(SC_A, PDR_OLD) == EMPTY
    assert book.total("SC:SINK:expired", PDR_OLD) == 10000
    for actor, op in [("cq-exchange", "trade.cancel"), ("cq-exchange", "trade.confirm")]:
        assert book.refused(actor, {"op": op, "trade": trade_id}).code == "TRADE_NOT_PENDING"
    assert book.ledger_refused({"op": "trade.expire", "trade": trade_id}).code == "TRADE_NOT_PENDING"
    assert book.balance(SC_A, PDR_OLD) == EMPTY and book.balance(CQ_C, "CNY") == bal(100000)


def test_bug_an_enormous_trade_amount_is_refused(standard_book):
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "1"})
    try:
        refusal = book.refused("sc-exchange", trade(SC_A, SC_B, "4000000000000", "400000000000000"))
    except Refused:
        raise
    except Exception as error:
        pytest.fail(f"{type(error).__name__}: {error!r} instead of a refusal")
    assert refusal.code in ("INVALID_QUANTITY", "INSUFFICIENT_BALANCE")

"""money.split and statement.net_transfers: examples worked by hand, then properties.

The property oracle for split is the spec sentence itself, computed independently with Fraction:
"floors each share to the fen and gives the leftover fen one at a time to the parties in the
order listed."
"""

import math
import re
from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settlement.money import fmt, split, to_fen
from settlement.statement import net_transfers

D = Decimal
FAST = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


# -- split, by hand --------------------------------------------------------------------------------

def test_split_100_three_ways():
    # 100.00 / 3 = 33.333… → 33.33 × 3 = 99.99; leftover 0.01 → first party
    assert split(D("100.00"), [("A", D(1)), ("B", D(1)), ("C", D(1))]) == [
        ("A", D("33.34")), ("B", D("33.33")), ("C", D("33.33"))]


def test_split_negative_amount_keeps_the_sign():
    assert split(D("-100.00"), [("A", D(1)), ("B", D(1)), ("C", D(1))]) == [
        ("A", D("-33.34")), ("B", D("-33.33")), ("C", D("-33.33"))]


def test_split_two_fen_three_ways():
    # 0.02 / 3 = 0.00666… → 0.00 × 3; leftover 0.02 → A, then B
    assert split(D("0.02"), [("A", D(1)), ("B", D(1)), ("C", D(1))]) == [
        ("A", D("0.01")), ("B", D("0.01")), ("C", D("0.00"))]


def test_split_by_unequal_ratios():
    # 1.00 × 0.7 = 0.70, × 0.3 = 0.30: nothing left over
    assert split(D("1.00"), [("A", D("0.7")), ("B", D("0.3"))]) == [("A", D("0.70")), ("B", D("0.30"))]
    # 0.05 × 1/2 = 0.025 → 0.02 each, leftover 0.01 → A
    assert split(D("0.05"), [("A", D(1)), ("B", D(1))]) == [("A", D("0.03")), ("B", D("0.02"))]
    # 10.00 × 1/3 = 3.333… → 3.33, × 2/3 = 6.666… → 6.66 (floored, not rounded); leftover 0.01 → A
    assert split(D("10.00"), [("A", D(1)), ("B", D(2))]) == [("A", D("3.34")), ("B", D("6.66"))]


def test_to_fen_and_fmt():
    # half-up: 0.005 → 0.01, 0.004999 → 0.00, 2.675 → 2.68 (a float would say 2.67)
    assert to_fen(D("0.005")) == D("0.01")
    assert to_fen(D("0.004999")) == D("0.00")
    assert to_fen(D("2.675")) == D("2.68")
    assert fmt(D("1000000")) == "1000000.00"
    assert fmt(D("-2.5")) == "-2.50"


# -- split, properties ----------------------------------------------------------------------------

FEN = Fraction(1, 100)

ratio_strategy = st.builds(lambda n, places: D(n).scaleb(-places),
                           st.integers(1, 10 ** 6), st.integers(0, 6))


@FAST
@given(fen=st.integers(-10 ** 14, 10 ** 14),
       ratios=st.lists(ratio_strategy, min_size=1, max_size=7))
def test_split_properties(fen, ratios):
    amount = D(fen).scaleb(-2)
    shares = [(f"P{i}", r) for i, r in enumerate(ratios)]
    parts = split(amount, shares)

    assert [p for p, _ in parts] == [p for p, _ in shares]
    values = [v for _, v in parts]
    # fen amounts that add up exactly
    assert all(v == v.quantize(D("0.01")) for v in values)
    assert sum(values, D(0)) == amount

    total = sum((Fraction(r) for r in ratios), Fraction(0))
    whole = abs(Fraction(amount))
    sign = -1 if amount < 0 else 1
    exact = [whole * Fraction(r) / total for r in ratios]
    floors = [Fraction(math.floor(e / FEN)) * FEN for e in exact]
    leftover = int((whole - sum(floors)) / FEN)
    assert 0 <= leftover < len(ratios)
    for i, (v, e, f) in enumerate(zip(values, exact, floors)):
        # each part within one fen of its exact share, same sign as the amount
        assert abs(Fraction(v) - sign * e) < FEN
        assert v == 0 or (v > 0) == (amount > 0)
        # the floor plus one leftover fen for each of the first `leftover` parties
        assert Fraction(v) == sign * (f + (FEN if i < leftover else 0))


# -- net_transfers, by hand ----------------------------------------------------------------------

def test_net_transfers_nets_a_pair():
    # SC → CQ 10, CQ → SC 3 → SC pays CQ 7.00
    assert net_transfers([("SC", "CQ", D("10")), ("CQ", "SC", D("3"))], ["SC", "CQ"]) == [
        {"from": "SC", "to": "CQ", "amount": "7.00"}]


def test_net_transfers_direction_follows_the_net_not_the_party_order():
    # CQ → SC 10, SC → CQ 3 → CQ pays SC 7.00 (CQ listed second)
    assert net_transfers([("CQ", "SC", D("10")), ("SC", "CQ", D("3"))], ["SC", "CQ"]) == [
        {"from": "CQ", "to": "SC", "amount": "7.00"}]


def test_net_transfers_drops_pairs_that_cancel():
    # SC/CQ cancel; GZ → SC 0.5 → 0.50
    payments = [("SC", "CQ", D("2.5")), ("CQ", "SC", D("2.5")), ("GZ", "SC", D("0.5"))]
    assert net_transfers(payments, ["SC", "CQ", "GZ"]) == [{"from": "GZ", "to": "SC", "amount": "0.50"}]


def test_net_transfers_of_nothing():
    assert net_transfers([], ["SC", "CQ"]) == []


# -- net_transfers, properties --------------------------------------------------------------------

PARTIES = ["SC", "CQ", "GZ", "YN", "XZ"]


@st.composite
def payment_lists(draw):
    parties = draw(st.lists(st.sampled_from(PARTIES), min_size=2, max_size=5, unique=True))
    n = len(parties)
    payment = st.builds(lambda i, k, fen: (parties[i], parties[(i + k) % n], D(fen).scaleb(-2)),
                        st.integers(0, n - 1), st.integers(1, n - 1), st.integers(1, 10 ** 12))
    return parties, draw(st.lists(payment, max_size=30))


@FAST
@given(payment_lists())
def test_net_transfers_properties(case):
    parties, payments = case
    transfers = net_transfers(payments, parties)

    def positions(items):
        net = {p: D(0) for p in parties}
        for payer, payee, amount in items:
            net[payer] -= amount
            net[payee] += amount
        return net

    # each party's net position is conserved
    assert positions((t["from"], t["to"], D(t["amount"])) for t in transfers) == positions(payments)
    pairs = [frozenset((t["from"], t["to"])) for t in transfers]
    # at most one transfer per pair, never to oneself, never zero, always two decimals
    assert len(pairs) == len(set(pairs))
    for t in transfers:
        assert t["from"] != t["to"]
        assert re.fullmatch(r"\d+\.\d{2}", t["amount"]) and D(t["amount"]) > 0
    # and for every pair, its transfer is exactly the pair's net, in its direction
    for a in parties:
        for b in parties:
            if a < b:
                net = sum((x if (p, q) == (a, b) else -x for p, q, x in payments if {p, q} == {a, b}), D(0))
                got = [t for t in transfers if {t["from"], t["to"]} == {a, b}]
                if net == 0:
                    assert got == []
                else:
                    assert got == [{"from": a if net > 0 else b, "to": b if net > 0 else a, "amount": fmt(abs(net))}]

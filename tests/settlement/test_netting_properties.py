"""Netting and clearing, as properties (specs/agreements.md §6).

First :func:`settlement.netting.net` alone: for any set of obligations among 2–6 parties (fen),
netting conserves every party's net position, makes at most one payment per unordered pair, never
a zero or negative one, and its gross totals are the obligations' sums per ordered pair.

Then :func:`settlement.clearing.clear` on a real database, through the contracts layer: trades
across four provinces (five exchanges) give trade-pool obligations, settlement statements of a
four-party agreement (and their corrections) give compensation obligations, and clearing runs with
the same, earlier, overlapping and later cut-offs, in any order, must clear every obligation
exactly once — checked on the obligations' rows and on every clearing run's body — and the log
must still replay for the auditor.
"""

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlmodel import Session
from support.registry import Registry, enterprise
from support.scheduler import audit_replay, check_clearing, check_log, check_statements

from api import create_app
from api.storage import get_store, initialise
from contracts.errors import Refused
from ledger.entry import format_time, parse_time
from ledger.models import LogEntry
from ledger.projections import ClearingPayment, ClearingRun, MonitoringSubmission, Obligation, Statement, Trade
from settlement.clearing import clear
from settlement.netting import net
from settlement.service import settle

ORIGIN = "ecoledger.test/log"

# -- net(), the pure function ------------------------------------------------------------------------

PARTY_NAMES = ["SC:EXC:sc-exchange", "CQ:EXC:cq-exchange", "GZ:EXC:gz", "YN:EXC:yn", "SC:FIN:treasury",
               "CQ:FIN:treasury", "CN:FIN:central", "HB:EXC:hb"]
FEN = st.one_of(st.integers(1, 100), st.integers(1, 10**9), st.integers(1, 10**15))


@st.composite
def obligation_sets(draw, max_size: int = 40):
    parties = draw(st.lists(st.sampled_from(PARTY_NAMES), min_size=2, max_size=6, unique=True))
    pair = st.tuples(st.sampled_from(parties), st.sampled_from(parties)).filter(lambda p: p[0] != p[1])
    items = draw(st.lists(st.tuples(pair, FEN), max_size=max_size))
    return parties, [(a, b, amount) for (a, b), amount in items]


def positions(flows) -> Counter:
    """Each party's Σ incoming − Σ outgoing."""
    total: Counter = Counter()
    for debtor, creditor, amount in flows:
        total[debtor] -= amount
        total[creditor] += amount
    return total


def nonzero(counter: Counter) -> dict:
    return {k: v for k, v in counter.items() if v}


NET = settings(max_examples=200, deadline=None, database=None)


@NET
@given(obligation_sets())
def test_net_conserves_every_partys_position(case):
    _, obligations = case
    netting = net(obligations)
    assert nonzero(positions(obligations)) == nonzero(positions(netting.payments))


@NET
@given(obligation_sets())
def test_net_pays_once_per_pair_never_zero_or_negative(case):
    parties, obligations = case
    netting = net(obligations)
    pairs = [frozenset((payer, payee)) for payer, payee, _ in netting.payments]
    assert len(pairs) == len(set(pairs)), netting.payments
    for payer, payee, amount in netting.payments:
        assert payer != payee and payer in parties and payee in parties
        assert isinstance(amount, int) and amount > 0, netting.payments
    # sorted by pair, as the docstring promises (the run's body depends on it)
    assert [tuple(sorted(p[:2])) for p in netting.payments] == sorted(tuple(sorted(p[:2])) for p in netting.payments)


@NET
@given(obligation_sets())
def test_net_gross_totals_are_the_obligations_per_ordered_pair(case):
    _, obligations = case
    netting = net(obligations)
    expected: Counter = Counter()
    for debtor, creditor, amount in obligations:
        expected[(debtor, creditor)] += amount
    assert netting.gross == dict(expected)
    assert list(netting.gross) == sorted(netting.gross)
    # each pair's payment is the difference of its two gross totals, from the net payer
    for a, b in {tuple(sorted(pair)) for pair in expected}:
        balance = expected[(a, b)] - expected[(b, a)]
        paid = [(x, y, amount) for x, y, amount in netting.payments if {x, y} == {a, b}]
        assert paid == ([] if balance == 0 else [(a, b, balance)] if balance > 0 else [(b, a, -balance)])
    # nothing is paid between parties that owe each other nothing
    assert {frozenset(p[:2]) for p in netting.payments} <= {frozenset(pair) for pair in expected}


@NET
@given(obligation_sets(), st.randoms(use_true_random=False))
def test_net_does_not_depend_on_the_obligations_order(case, random):
    _, obligations = case
    shuffled = list(obligations)
    random.shuffle(shuffled)
    assert net(shuffled) == net(obligations)


@NET
@given(obligation_sets())
def test_netting_the_payments_again_changes_nothing(case):
    _, obligations = case
    payments = net(obligations).payments
    assert net(payments).payments == payments
    assert sum(p[2] for p in payments) <= sum(o[2] for o in obligations)


@NET
@given(obligation_sets(max_size=10), st.sampled_from([0, -1, -10**6]))
def test_net_refuses_zero_or_negative_amounts(case, bad):
    parties, obligations = case
    with pytest.raises(ValueError):
        net([*obligations, (parties[0], parties[1], bad)])


def test_net_refuses_an_obligation_to_oneself():
    with pytest.raises(ValueError):
        net([("SC:EXC:sc-exchange", "SC:EXC:sc-exchange", 100)])


def test_net_by_hand():
    sc, cq, gz = "SC:EXC:sc-exchange", "CQ:EXC:cq-exchange", "GZ:EXC:gz"
    netting = net([(cq, sc, 2469120), (sc, cq, 799992), (cq, sc, 525002), (gz, sc, 100), (sc, gz, 100)])
    # CQ→SC 24691.20 + 5250.02 = 29941.22; SC→CQ 7999.92 → CQ pays SC 21941.30. GZ and SC: 1.00 each way → nothing.
    assert netting.gross == {(cq, sc): 2994122, (gz, sc): 100, (sc, cq): 799992, (sc, gz): 100}
    assert netting.payments == [(cq, sc, 2194130)]
    assert net([]) == net(())
    assert net([]).payments == [] and net([]).gross == {}


# -- clear() on a real database ------------------------------------------------------------------------

PROVINCES = ("SC", "CQ", "GZ", "YN")
EXCHANGES = {"SC": ("sc-exchange", "sc-exchange-2"), "CQ": ("cq-exchange",), "GZ": ("gz-exchange",),
             "YN": ("yn-exchange",)}
"""Five exchanges, so five EXC parties in the trade pool (two in Sichuan)."""
SECTIONS = [("r-1", ["SC"], ["CQ"]), ("r-2", ["CQ"], ["GZ"]), ("r-3", ["GZ"], ["YN"]), ("r-4", ["YN"], ["SC"]),
            ("r-5", ["SC", "GZ"], ["YN", "CQ"])]
CLASS_VALUES = {1: ("1.5", "0.1", "0.01"), 2: ("3.5", "0.4", "0.08"), 3: ("5.5", "0.9", "0.15"),
                4: ("9", "1.4", "0.25"), 5: ("14", "1.9", "0.35"), 6: ("20", "3", "0.5")}
"""CODMn, NH3N, TP (river) of each water-quality class (GB 3838-2002)."""
PERIODS = [f"{year}-{month:02d}" for year in (2024, 2025) for month in range(1, 13)]


def ring_agreement() -> dict:
    return {
        "id": "ring", "version": 1, "title": "四省环线流域横向生态保护补偿协议（测试）",
        "parties": [{"id": p, "name": p, "account": f"{p}:FIN:treasury"} for p in PROVINCES],
        "sections": [{"id": sid, "name": f"断面 {sid}", "river": "环河", "water_body": "river",
                      "upstream": up, "downstream": down} for sid, up, down in SECTIONS],
        "indicators": ["CODMn", "NH3N", "TP"], "period": "month",
        "term": {"from": "2024-01-01", "to": "2025-12-31"},
        "rules": [{"type": "class_steps", "baseline_class": 3, "amount_per_class": "123456.78"}],
        "responsibilities": "测试", "breach": "测试",
    }


class Ledger:
    """A four-province ledger on the test database, driven through the contracts layer."""

    def __init__(self, app):
        self.app = app
        self.registry = Registry(app)
        self.assets: dict[str, str] = {}
        self.holders = {p: [enterprise(p, n) for n in (1, 2)] for p in PROVINCES}
        self._quantities = count(1)
        r = self.registry
        for province in PROVINCES:
            low = province.lower()
            for name in EXCHANGES[province]:
                r.principal(name, "operator", province)
            r.principal(f"{low}-sthj", "issuer", province, ["PDR"])
            r.principal(f"{low}-finance", "finance", province)
            r.principal(f"{low}-monitor", "monitor", province)
            operator = EXCHANGES[province][0]
            r.command(operator, *({"op": "account.open", "account": a, "name": f"enterprise {a[-4:]}"}
                                  for a in self.holders[province]),
                      *({"op": "cny.deposit", "account": a, "amount": "100000000"} for a in self.holders[province]))
            asset = r.result(f"{low}-sthj", {"op": "asset.define", "instrument": "PDR", "attributes": {
                "pollutant": "COD", "valid_from": "2025-01-01", "valid_until": "2029-12-31"}})["asset"]
            self.assets[province] = asset
            r.command(f"{low}-sthj", *({"op": "issue", "asset": asset, "to": a, "quantity": "1000000"}
                                       for a in self.holders[province]))
        document = ring_agreement()
        digest = r.result("sc-finance", {"op": "agreement.propose", "document": document})["digest"]
        for province in PROVINCES[1:]:
            r.command(f"{province.lower()}-finance",
                      {"op": "agreement.sign", "agreement": "ring", "version": 1, "digest": digest})

    # -- reads ---------------------------------------------------------------------------------------

    @property
    def engine(self):
        with self.app.app_context():
            return get_store().engine

    def size(self) -> int:
        with self.app.app_context():
            return get_store().size()

    def latest_time(self) -> str:
        with Session(self.engine) as session:
            leaf = session.execute(select(LogEntry.leaf).order_by(LogEntry.seq.desc()).limit(1)).scalar_one()
        return json.loads(bytes(leaf))["time"]

    def obligation_times(self) -> list[str]:
        with Session(self.engine) as session:
            return list(session.execute(select(Obligation.created_at).order_by(Obligation.created_at)).scalars())

    def open_up_to(self, pool: str, cutoff: str) -> set[str]:
        with Session(self.engine) as session:
            return set(session.execute(select(Obligation.id).where(
                Obligation.pool == pool, Obligation.status == "open", Obligation.created_at <= cutoff)).scalars())

    # -- writes --------------------------------------------------------------------------------------

    def trades(self, specs: list[tuple[int, int, int, int, int]], batched: bool) -> list[str]:
        """Cross-province trades (seller province, buyer province, which exchange, quantity in t,
        price in fen), each recorded by one side's exchange and confirmed by the other's."""
        recorded = []
        for seller_p, buyer_p, which, quantity, price in specs:
            seller_prov, buyer_prov = PROVINCES[seller_p], PROVINCES[buyer_p]
            recorder_side = which % 2
            recorder_prov, confirmer_prov = ((seller_prov, buyer_prov) if recorder_side == 0
                                             else (buyer_prov, seller_prov))
            recorder = EXCHANGES[recorder_prov][which % len(EXCHANGES[recorder_prov])]
            confirmer = EXCHANGES[confirmer_prov][(which // 2) % len(EXCHANGES[confirmer_prov])]
            op = {"op": "trade", "asset": self.assets[seller_prov], "quantity": str(quantity),
                  "price": f"{price // 100}.{price % 100:02d}", "seller": self.holders[seller_prov][which % 2],
                  "buyer": self.holders[buyer_prov][(which // 2) % 2]}
            recorded.append((recorder, confirmer, op))
        if batched:
            # one command per recording exchange, then one per confirming exchange
            by_recorder: dict[str, list] = {}
            for recorder, confirmer, op in recorded:
                by_recorder.setdefault(recorder, []).append((confirmer, op))
            confirms: dict[str, list[str]] = {}
            for recorder, items in by_recorder.items():
                outcome = self.registry.command(recorder, *(op for _, op in items))
                for (confirmer, _), result in zip(items, outcome.results):
                    confirms.setdefault(confirmer, []).append(result["trade"])
            for confirmer, trade_ids in confirms.items():
                self.registry.command(confirmer, *({"op": "trade.confirm", "trade": t} for t in trade_ids))
            return [t for ids in confirms.values() for t in ids]
        ids = []
        for recorder, confirmer, op in recorded:
            trade = self.registry.result(recorder, op)["trade"]
            self.registry.command(confirmer, {"op": "trade.confirm", "trade": trade})
            ids.append(trade)
        return ids

    def settle(self, period: str, classes: list[int]) -> None:
        """Monitoring of every section for ``period`` (a correction if it has data already), then
        the statement of the period."""
        for (section, up, _), klass in zip(SECTIONS, classes):
            codmn, nh3n, tp = CLASS_VALUES[klass]
            samples = [{"date": f"{period}-{day:02d}", "values": {"CODMn": codmn, "NH3N": nh3n, "TP": tp}}
                       for day in (3, 17)]
            monitor = f"{up[0].lower()}-monitor"
            with Session(self.engine) as session:
                earlier = session.execute(select(MonitoringSubmission.id).where(
                    MonitoringSubmission.section == section, MonitoringSubmission.superseded_by.is_(None),
                    MonitoringSubmission.first_date >= f"{period}-01",
                    MonitoringSubmission.last_date <= f"{period}-31")).scalars().first()
            if earlier is None:
                self.registry.command(monitor, {"op": "monitoring.submit", "section": section, "samples": samples})
            else:
                self.registry.command(monitor, {"op": "monitoring.correct", "submission": earlier, "samples": samples})
        with self.app.app_context():
            with get_store().writer() as writer:
                settle(writer, "ring", period)

    def clear(self, pool: str, cutoff: str):
        with self.app.app_context():
            with get_store().writer() as writer:
                return clear(writer, pool, cutoff)


@pytest.fixture
def ledger(database_url, tmp_path):
    app = create_app({"home": tmp_path / "home", "database_url": database_url, "origin": ORIGIN})
    initialise(app.config["ECOLEDGER"])
    yield Ledger(app)
    app.extensions["ecoledger.store"].engine.dispose()


def check_clear(ledger: Ledger, pool: str, cutoff: str) -> str | None:
    """clear() once, checking that it covers exactly the open obligations up to the cut-off
    (and appends nothing if there are none), then again with the same cut-off: nothing more."""
    expected = ledger.open_up_to(pool, cutoff)
    before = ledger.size()
    outcome = ledger.clear(pool, cutoff)
    if not expected:
        assert outcome is None and ledger.size() == before, f"clear({pool}, {cutoff}) appended with nothing open"
        run_id = None
    else:
        assert outcome is not None and not outcome.replayed and ledger.size() == before + 1
        run_id = outcome.results[0]["clearing"]
        with Session(ledger.engine) as session:
            run = session.get(ClearingRun, run_id)
            assert set(json.loads(run.body)["obligations"]) == expected
            assert (run.pool, run.cutoff) == (pool, cutoff)
    again = ledger.clear(pool, cutoff)
    assert again is None and ledger.size() == before + (1 if expected else 0), "the same cut-off cleared again"
    assert not ledger.open_up_to(pool, cutoff)
    return run_id


def shifted(time: str, microseconds: int) -> str:
    return format_time(parse_time(time) + timedelta(microseconds=microseconds))


def cutoff_for(ledger: Ledger, choice: str, used: list[str], index: int) -> str:
    """A cut-off no later than the log's latest entry: at, just before or just after an
    obligation's creation, a cut-off used before, the latest entry's time, the scheduler's
    minute, or a time before everything."""
    times = ledger.obligation_times()
    latest = ledger.latest_time()
    if choice == "at" and times:
        return times[index % len(times)]
    if choice == "just-before" and times:
        return shifted(times[index % len(times)], -1)
    if choice == "just-after" and times:
        return min(shifted(times[index % len(times)], 1), latest)
    if choice == "repeat" and used:
        return used[index % len(used)]
    if choice == "minute":
        return format_time(parse_time(latest).replace(second=0, microsecond=0))
    if choice == "long-ago":
        return "2000-01-01T00:00:00.000000Z"
    return latest


trade_specs = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 7), st.integers(1, 40),
              st.integers(1, 500_000)).filter(lambda t: t[0] != t[1]),
    min_size=1, max_size=4)
steps = st.lists(st.one_of(
    st.tuples(st.just("trades"), trade_specs, st.booleans()),
    st.tuples(st.just("settle"), st.sampled_from(PERIODS), st.lists(st.integers(1, 6), min_size=5, max_size=5)),
    st.tuples(st.just("clear"), st.sampled_from(["trade", "compensation"]),
              st.sampled_from(["at", "just-before", "just-after", "repeat", "minute", "long-ago", "latest"]),
              st.integers(0, 1000)),
), min_size=1, max_size=8)


@settings(max_examples=8, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plan=steps)
def test_clearing_clears_every_obligation_exactly_once(ledger, plan):
    # One ledger serves every example: what earlier examples left (all of it cleared) stays, and
    # the checks below are about the whole database, so they hold across examples too.
    used: list[str] = []
    for step in plan:
        note(f"step {step}")
        if step[0] == "trades":
            ledger.trades(step[1], batched=step[2])
        elif step[0] == "settle":
            ledger.settle(step[1], step[2])
        else:
            _, pool, choice, index = step
            cutoff = cutoff_for(ledger, choice, used, index)
            check_clear(ledger, pool, cutoff)
            used.append(cutoff)
            check_clearing(ledger.engine, all_cleared=False)
    # the scheduler's last word: both pools up to the latest entry
    latest = ledger.latest_time()
    for pool in ("compensation", "trade"):
        check_clear(ledger, pool, latest)
    state = check_clearing(ledger.engine, all_cleared=True)
    note(f"{state}")


def test_confirmed_trades_and_statements_give_the_obligations_cleared(ledger, tmp_path):
    """A fixed scenario through every kind of cut-off, then the audit: the trade pool has one
    obligation per confirmed cross-province trade, the compensation pool nets to the statements,
    and the log replays."""
    ids = ledger.trades([(0, 1, 0, 10, 123456), (1, 0, 1, 3, 99999), (2, 3, 2, 7, 5001), (3, 0, 3, 1, 1),
                         (0, 2, 5, 2, 250000)], batched=False)
    ledger.settle("2024-01", [1, 2, 3, 4, 5])
    first = ledger.obligation_times()
    t_mid = first[2]
    # an obligation created exactly at the cut-off is covered (created_at ≤ cut-off)
    run_a = check_clear(ledger, "trade", t_mid)
    with Session(ledger.engine) as session:
        covered = json.loads(session.get(ClearingRun, run_a).body)["obligations"]
        assert session.execute(select(Obligation.id).where(Obligation.created_at == t_mid)).scalars().first() in covered
    # an earlier cut-off after a later one: nothing is open up to it any more
    assert check_clear(ledger, "trade", "2000-01-01T00:00:00.000000Z") is None
    assert check_clear(ledger, "trade", shifted(t_mid, -1)) is None
    more = ledger.trades([(1, 2, 4, 5, 777), (2, 1, 6, 9, 31415), (0, 3, 7, 4, 1000)], batched=True)
    ledger.settle("2024-02", [6, 5, 4, 3, 2])
    ledger.settle("2024-01", [2, 2, 2, 6, 6])      # a correction: a statement superseding the first
    # overlapping cut-offs: the later one covers only what the earlier left
    run_b = check_clear(ledger, "trade", ledger.latest_time())
    run_c = check_clear(ledger, "compensation", ledger.latest_time())
    assert run_b and run_c
    ledger.settle("2024-02", [1, 1, 1, 1, 1])      # another correction, after its period was cleared
    run_d = check_clear(ledger, "compensation", ledger.latest_time())
    assert run_d
    state = check_clearing(ledger.engine, all_cleared=True)
    assert state.runs_by_pool == {"trade": 2, "compensation": 2}
    with Session(ledger.engine) as session:
        trades = {t.id: t for t in session.execute(select(Trade).where(Trade.id.in_(ids + more))).scalars()}
        obligations = list(session.execute(select(Obligation).where(Obligation.pool == "trade")).scalars())
        assert all(t.status == "confirmed" for t in trades.values())
        # one obligation per confirmed cross-province trade: the buyer's exchange owes the seller's the amount
        assert sorted((o.debtor, o.creditor, o.amount) for o in obligations) == sorted(
            (t.buyer_exchange, t.seller_exchange, t.amount) for t in trades.values())
        assert session.execute(select(func.count()).select_from(Statement)).scalar_one() == 4
    check_statements(ledger.engine, grace_days=0, superseded=True, all_due=False)
    check_log(ledger.engine)
    assert audit_replay(ledger.engine, tmp_path / "audit") == ledger.size()


def test_a_cutoff_in_the_future_clears_nothing_twice(ledger, tmp_path):
    """The scheduler's cut-offs are never later than its clock, but clear() takes any: with a
    cut-off in the future, obligations created after its run are not in it, and the same cut-off
    again does not clear them a second time or append anything; a later cut-off clears them once."""
    ledger.trades([(0, 1, 0, 1, 100)], batched=False)
    future = format_time(datetime.now(UTC) + timedelta(days=1))
    assert check_clear(ledger, "trade", future)
    ledger.trades([(1, 0, 1, 2, 200)], batched=False)
    before = ledger.size()
    try:
        outcome = ledger.clear("trade", future)
    except Refused as refusal:
        # the run of this cut-off exists with other content: refused, nothing appended
        assert refusal.code == "DUPLICATE_COMMAND_ID", refusal
    else:
        assert outcome is None or outcome.replayed, f"the same cut-off appended a second run: {outcome}"
    assert ledger.size() == before
    assert ledger.open_up_to("trade", future), "the obligation created after the run is open"
    check_clearing(ledger.engine, all_cleared=False)
    check_clear(ledger, "trade", shifted(future, 1))
    check_clearing(ledger.engine, all_cleared=True)
    assert audit_replay(ledger.engine, tmp_path / "audit") == ledger.size()


def test_only_the_paying_and_the_receiving_exchange_confirm_a_trade_payment(ledger):
    """specs/agreements.md §6: each net payment waits for clearing.confirm by the paying and the
    receiving party — for the trade pool, the exchanges. Sichuan has two exchanges here, each
    with its own EXC account; one must not confirm a payment owed to the other."""
    # a Sichuan enterprise sells to Chongqing (which = 3: recorded by cq-exchange, confirmed by
    # Sichuan's second exchange): CQ:EXC:cq-exchange owes SC:EXC:sc-exchange-2
    ledger.trades([(0, 1, 3, 1, 10000)], batched=False)
    run = check_clear(ledger, "trade", ledger.latest_time())
    with Session(ledger.engine) as session:
        [payment] = session.execute(select(ClearingPayment).where(ClearingPayment.run == run)).scalars()
    assert (payment.payer, payment.payee) == ("CQ:EXC:cq-exchange", "SC:EXC:sc-exchange-2")
    ledger.registry.command("cq-exchange", {"op": "clearing.confirm", "payment": payment.id})
    with pytest.raises(Refused) as refusal:
        ledger.registry.command("sc-exchange", {"op": "clearing.confirm", "payment": payment.id})
    assert refusal.value.code in ("FORBIDDEN_PROVINCE", "FORBIDDEN_ACCOUNT", "FORBIDDEN_ROLE")

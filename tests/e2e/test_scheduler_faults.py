"""``ecoledger scheduler`` under faults: killed at random points, and two at once.

The ledger is built in-process through the contracts layer (support.registry.Registry) on the
test database: three provinces' exchanges with many confirmed cross-province trades (obligations
in the trade pool), and three compensation agreements whose terms lie mostly in the past —
two monthly ones over nearly eight years and a yearly three-party pool — with generated
monitoring data, so that a scheduler with 0 grace days has some two hundred statements to append
(and their compensation obligations to clear).

Then the real ``ecoledger scheduler`` runs on it with every job firing every 1–2 seconds
(six-field crontabs, seconds first). DESIGN.md ("Scheduled work"): every job is idempotent by
construction, so a crash mid-job, a re-run or a second scheduler never double-counts. Checked
afterwards, on the database and through the auditor's replay:

* every obligation is in exactly one clearing run's body, and its row says so (cleared/settled);
* every due (agreement, period) has exactly one current statement, none superseded (no input
  changed), and each period's obligations net to its statement's transfers;
* no command id appears twice, the log's seqs are contiguous, no job run failed;
* the audit replay (ledger.replay.replay with settlement.audit.apply_audited into a fresh
  SQLite database, then compare_tables) reproduces every projection: the log verifies.

Set ECOLEDGER_FAULT_SEED to replay a run's random choices (the seed is printed).
"""

import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session
from support.registry import Registry, enterprise
from support.scheduler import (SchedulerProcess, audit_replay, check_clearing, check_log,
                               check_statements, due_now, scheduler_env, wait_until)
from support.server import run_cli

from api import create_app
from api.storage import get_store, initialise
from ledger.models import JobRun, LogEntry
from ledger.projections import Obligation, Statement
from settlement.jobs import JOB_NAMES

pytestmark = pytest.mark.slow

ORIGIN = "ecoledger.test/log"
AGREEMENTS = Path(__file__).parents[2] / "config" / "agreements"
PROVINCES = ("SC", "CQ", "GZ")
CLEARING_WAIT = 150.0
"""Clearing cuts off at the minute: an obligation created now is cleared after the next minute starts."""


# -- the ledger ----------------------------------------------------------------------------------------


def agreement(name: str, **changes) -> dict:
    document = json.loads((AGREEMENTS / f"{name}.json").read_text(encoding="utf-8"))
    document.update(changes)
    return document


def months(first: tuple[int, int], last: tuple[int, int]):
    year, month = first
    while (year, month) <= last:
        yield year, month
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


@dataclass
class FaultLedger:
    app: object
    home: Path
    database_url: str
    registry: Registry
    rng: random.Random
    assets: dict[str, str] = field(default_factory=dict)
    holders: dict[str, list[str]] = field(default_factory=dict)
    trades: int = 0

    @property
    def engine(self):
        with self.app.app_context():
            return get_store().engine

    def size(self) -> int:
        with self.app.app_context():
            return get_store().size()

    def cross_trades(self, n: int, *, batched: bool = False) -> None:
        """``n`` confirmed trades across provinces, random directions, quantities and prices."""
        specs = []
        for _ in range(n):
            seller, buyer = self.rng.sample(PROVINCES, 2)
            op = {"op": "trade", "asset": self.assets[seller], "quantity": str(self.rng.randint(1, 20)),
                  "price": f"{self.rng.randint(1, 200000) / 100:.2f}",
                  "seller": self.rng.choice(self.holders[seller]), "buyer": self.rng.choice(self.holders[buyer])}
            recorder, confirmer = (seller, buyer) if self.rng.random() < 0.5 else (buyer, seller)
            specs.append((f"{recorder.lower()}-exchange", f"{confirmer.lower()}-exchange", op))
        if batched:
            groups: dict[tuple[str, str], list[dict]] = {}
            for recorder, confirmer, op in specs:
                groups.setdefault((recorder, confirmer), []).append(op)
            for (recorder, confirmer), ops in groups.items():
                outcome = self.registry.command(recorder, *ops)
                self.registry.command(confirmer, *({"op": "trade.confirm", "trade": r["trade"]} for r in outcome.results))
        else:
            for recorder, confirmer, op in specs:
                trade = self.registry.result(recorder, op)["trade"]
                self.registry.command(confirmer, {"op": "trade.confirm", "trade": trade})
        self.trades += n


def build_ledger(app, home: Path, database_url: str, rng: random.Random, *, first_year: int, trades: int) -> FaultLedger:
    """Principals of three provinces (and Yunnan's finance bureau for the 赤水河 pool), two
    enterprises per province with CNY and PDR, ``trades`` confirmed cross-province trades (some
    in batches) plus pending, cancelled and local ones; the 琼江 and 濑溪河 agreements monthly from
    ``first_year`` to 2026 and the 赤水河 pool yearly 2024–2026, with monitoring data."""
    r = Registry(app)
    ledger = FaultLedger(app=app, home=home, database_url=database_url, registry=r, rng=rng)
    for province in PROVINCES:
        low = province.lower()
        r.principal(f"{low}-exchange", "operator", province)
        r.principal(f"{low}-sthj", "issuer", province, ["PDR"])
        r.principal(f"{low}-finance", "finance", province)
        r.principal(f"{low}-monitor", "monitor", province)
        holders = [enterprise(province, n) for n in (1, 2)]
        ledger.holders[province] = holders
        r.command(f"{low}-exchange", *({"op": "account.open", "account": a, "name": f"enterprise {a[-4:]}"} for a in holders),
                  *({"op": "cny.deposit", "account": a, "amount": "50000000"} for a in holders))
        asset = r.result(f"{low}-sthj", {"op": "asset.define", "instrument": "PDR", "attributes": {
            "pollutant": "COD", "valid_from": "2025-01-01", "valid_until": "2029-12-31"}})["asset"]
        ledger.assets[province] = asset
        r.command(f"{low}-sthj", *({"op": "issue", "asset": asset, "to": a, "quantity": "100000"} for a in holders))
    r.principal("yn-finance", "finance", "YN")

    half = trades // 2
    ledger.cross_trades(half)
    ledger.cross_trades(trades - half, batched=True)
    # a local trade (settles at once, no obligation), a cross-province one left pending (held
    # for 30 days) and one cancelled: neither of the last two ever owes anything
    sc1, sc2 = ledger.holders["SC"]
    r.command("sc-exchange", {"op": "trade", "asset": ledger.assets["SC"], "quantity": "3", "price": "10",
                              "seller": sc1, "buyer": sc2})
    r.command("sc-exchange", {"op": "trade", "asset": ledger.assets["SC"], "quantity": "1", "price": "10",
                              "seller": sc1, "buyer": ledger.holders["CQ"][0], "hold_hours": 720})
    cancelled = r.result("cq-exchange", {"op": "trade", "asset": ledger.assets["CQ"], "quantity": "1", "price": "10",
                                         "seller": ledger.holders["CQ"][1], "buyer": ledger.holders["GZ"][0]})["trade"]
    r.command("gz-exchange", {"op": "trade.cancel", "trade": cancelled})

    documents = [
        ("sc-finance", "cq-finance", agreement("qiongjiang", term={"from": f"{first_year}-01-01", "to": "2026-12-31"})),
        ("cq-finance", "sc-finance", agreement("laixihe", term={"from": f"{first_year}-01-01", "to": "2026-12-31"})),
    ]
    if first_year <= 2024:
        documents.append(("gz-finance", None, agreement("chishuihe")))
    for proposer, signer, document in documents:
        digest = r.result(proposer, {"op": "agreement.propose", "document": document})["digest"]
        signers = [signer] if signer else ["yn-finance", "sc-finance"]
        for name in signers:
            r.command(name, {"op": "agreement.sign", "agreement": document["id"], "version": 1, "digest": digest})

    # monitoring: 琼江 every month from a year before the term (the reference periods), 濑溪河
    # two months in three, 赤水河 a few samples a year on each section
    def value(low: float, high: float, places: int) -> str:
        return f"{rng.uniform(low, high):.{places}f}"

    qiongjiang, laixihe = [], []
    for year, month in months((first_year - 1, 1), (2026, 10)):
        qiongjiang.append({"op": "monitoring.submit", "section": "qj-guanghui", "samples": [
            {"date": f"{year}-{month:02d}-{day:02d}", "values": {
                "CODMn": value(2, 9, 2), "NH3N": value(0.1, 1.4, 3), "TP": value(0.03, 0.28, 3)}}
            for day in (5, 15, 25)]})
        if month % 3:
            laixihe.append({"op": "monitoring.submit", "section": "lx-gaodong", "samples": [
                {"date": f"{year}-{month:02d}-{day:02d}", "values": {
                    "COD": value(12, 38, 1), "NH3N": value(0.1, 1.9, 3), "TP": value(0.03, 0.38, 3)}}
                for day in (8, 22)]})
    for monitor, ops in (("sc-monitor", qiongjiang), ("cq-monitor", laixihe)):
        for start in range(0, len(ops), 25):
            r.command(monitor, *ops[start:start + 25])
    if first_year <= 2024:
        for year in (2024, 2025):
            for monitor, section in (("gz-monitor", "cs-qingshuipu"), ("sc-monitor", "cs-lixing"),
                                     ("sc-monitor", "cs-chishui")):
                r.command(monitor, {"op": "monitoring.submit", "section": section, "samples": [
                    {"date": f"{year}-{month:02d}-10", "values": {
                        "CODMn": value(1.5, 5, 2), "NH3N": value(0.1, 0.7, 3), "TP": value(0.02, 0.15, 3)}}
                    for month in (3, 6, 9, 12)]})
    return ledger


@pytest.fixture
def make_ledger(database_url, tmp_path):
    apps = []

    def make(*, first_year: int, trades: int, seed: int) -> FaultLedger:
        home = tmp_path / "home"
        app = create_app({"home": home, "database_url": database_url, "origin": ORIGIN})
        initialise(app.config["ECOLEDGER"])
        apps.append(app)
        return build_ledger(app, home, database_url, random.Random(seed), first_year=first_year, trades=trades)

    yield make
    for app in apps:
        app.extensions["ecoledger.store"].engine.dispose()


def seed_from_environment() -> int:
    seed = int(os.environ.get("ECOLEDGER_FAULT_SEED") or random.SystemRandom().randrange(2**32))
    print(f"ECOLEDGER_FAULT_SEED={seed}")
    return seed


# -- progress and checks ---------------------------------------------------------------------------------


def done(ledger: FaultLedger) -> bool:
    """Every due period has its statement and no obligation is open."""
    with Session(ledger.engine) as session:
        periods = {tuple(row) for row in session.execute(select(Statement.agreement, Statement.period))}
        still_open = session.execute(select(func.count()).select_from(Obligation)
                                     .where(Obligation.status == "open")).scalar_one()
    return still_open == 0 and any(due <= periods for due in due_now(ledger.engine, 0))


def job_runs(ledger: FaultLedger) -> list[JobRun]:
    with Session(ledger.engine) as session:
        rows = list(session.execute(select(JobRun).order_by(JobRun.id)).scalars())
        session.expunge_all()
    return rows


def check_everything(ledger: FaultLedger, directory: Path) -> dict:
    """The checks of the module docstring; returns a few counts for the report."""
    state = check_clearing(ledger.engine, all_cleared=True)
    statements = check_statements(ledger.engine, grace_days=0, superseded=False)
    size = check_log(ledger.engine)
    failed = [(run.job, run.detail) for run in job_runs(ledger) if run.status != "ok"]
    assert not failed, f"job runs failed: {failed[:5]}"
    with Session(ledger.engine) as session:
        trade_obligations = session.execute(select(func.count()).select_from(Obligation)
                                            .where(Obligation.pool == "trade")).scalar_one()
    assert trade_obligations == ledger.trades, "one trade-pool obligation per confirmed cross-province trade"
    replayed = audit_replay(ledger.engine, directory)
    assert replayed == size
    return {"entries": size, "statements": statements, "obligations": state.obligations, "runs": state.runs_by_pool}


def the_log_since(ledger: FaultLedger, seq: int) -> list[str]:
    with Session(ledger.engine) as session:
        return list(session.execute(select(LogEntry.command_id).where(LogEntry.seq >= seq)
                                    .order_by(LogEntry.seq)).scalars())


# -- the tests -----------------------------------------------------------------------------------------


def test_scheduler_killed_at_random_points_settles_and_clears_everything_once(make_ledger, tmp_path):
    seed = seed_from_environment()
    rng = random.Random(seed)
    clock = time.monotonic()
    ledger = make_ledger(first_year=2019, trades=40, seed=seed)
    timings = {"setup": time.monotonic() - clock}
    due = len(due_now(ledger.engine, 0)[0])
    assert due >= 150, f"only {due} periods due: the fault test wants many units of work"
    env = scheduler_env(home=ledger.home, database_url=ledger.database_url)
    logs = tmp_path / "schedulers"

    cycles = rng.randint(8, 12)
    budget = time.monotonic() + 75
    story = []
    for cycle in range(cycles):
        if cycle >= 8 and time.monotonic() > budget:
            break
        before = ledger.size()
        scheduler = SchedulerProcess.start(env, directory=logs, name="killed")
        try:
            # half the kills land anywhere from the start (often while it imports), half once it
            # schedules jobs (while it appends)
            after_start = cycle % 2 == 1
            if after_start:
                wait_until(scheduler.started_scheduling, timeout=60, what="the scheduler to start",
                           processes=[scheduler], interval=0.05)
            delay = rng.uniform(0, 3)
            deadline = time.monotonic() + delay
            # meanwhile the exchanges keep trading: new obligations appear under the scheduler's feet
            if rng.random() < 0.5:
                ledger.cross_trades(rng.randint(1, 2))
            time.sleep(max(0.0, deadline - time.monotonic()))
            assert scheduler.alive, f"the scheduler exited before it was killed\n{scheduler.output()}"
        finally:
            scheduler.kill()
        appended = the_log_since(ledger, before)
        story.append((cycle, "after start" if after_start else "from launch", round(delay, 2), len(appended),
                      sum(1 for c in appended if c.startswith("settlement:")),
                      sum(1 for c in appended if c.startswith("clearing:"))))
    print("cycle, kill timing, delay s, entries appended, statements, clearing runs:")
    for line in story:
        print("  ", line)
    assert len(story) >= 8
    timings["kills"] = time.monotonic() - clock - sum(timings.values())

    # one scheduler left to run to the end
    with SchedulerProcess.start(env, directory=logs, name="final") as final:
        wait_until(lambda: done(ledger), timeout=CLEARING_WAIT, what="every statement and every clearing",
                   processes=[final], interval=0.5)
        wait_until(lambda: final.job_runs("clearing") and final.job_runs("settlement"), timeout=30,
                   what="a complete settlement and clearing run", processes=[final])
    timings["final run"] = time.monotonic() - clock - sum(timings.values())
    # `ecoledger jobs` tells an operator the same: every job's last run is ok
    listing = run_cli(env, "jobs").splitlines()
    assert [line.split()[0] for line in listing] == list(JOB_NAMES), listing
    assert all(" ok " in line for line in listing), listing
    counts = check_everything(ledger, tmp_path / "audit")
    timings["checks and audit"] = time.monotonic() - clock - sum(timings.values())
    print(f"after {len(story)} kills: {counts}; seconds: { {k: round(v, 1) for k, v in timings.items()} }")
    assert counts["statements"] == due


def test_two_schedulers_at_once_settle_and_clear_nothing_twice(make_ledger, tmp_path):
    seed = seed_from_environment()
    clock = time.monotonic()
    ledger = make_ledger(first_year=2023, trades=30, seed=seed)
    timings = {"setup": time.monotonic() - clock}
    env = scheduler_env(home=ledger.home, database_url=ledger.database_url)
    logs = tmp_path / "schedulers"
    first = SchedulerProcess.start(env, directory=logs, name="first")
    second = SchedulerProcess.start(env, directory=logs, name="second")
    try:
        both = [first, second]
        wait_until(lambda: done(ledger), timeout=CLEARING_WAIT, what="every statement and every clearing",
                   processes=both, interval=0.5)
        # and both kept running their jobs over the same units, several times each
        wait_until(lambda: all(len(p.job_runs("settlement")) >= 3 and len(p.job_runs("clearing")) >= 3 for p in both),
                   timeout=60, what="three settlement and clearing runs by each scheduler", processes=both)
    finally:
        first.stop()
        second.stop()
    timings["run"] = time.monotonic() - clock - sum(timings.values())
    # what each reported having appended: no unit twice, by either
    reported: dict[str, str] = {}
    for process in (first, second):
        for run in process.job_runs():
            assert run.status == "ok", f"{process.name}: {run.job} failed: {run.detail}"
            for line in run.detail.splitlines():
                if line.startswith(("settled ", "cleared ")):
                    unit = line.rsplit(" at seq ", 1)[0]
                    assert unit not in reported, f"{unit!r} done by {reported[unit]} and again by {process.name}"
                    reported[unit] = process.name
    units = Counter(reported.values())
    print(f"units appended by each scheduler: {units}")
    counts = check_everything(ledger, tmp_path / "audit")
    timings["checks and audit"] = time.monotonic() - clock - sum(timings.values())
    print(f"two schedulers: {counts}; seconds: { {k: round(v, 1) for k, v in timings.items()} }")
    assert counts["statements"] == len(due_now(ledger.engine, 0)[0])



def test_two_schedulers_started_together_on_a_fresh_database(database_url, tmp_path):
    """DESIGN.md: a second scheduler never breaks anything. On a database nobody has initialised
    yet, both schedulers run ``initialise`` (schema and genesis) at once; both must come up and
    the log must hold exactly one genesis entry. The race is narrow: up to three fresh databases."""
    from contextlib import ExitStack

    from ledger.database import create_database_engine

    def fresh_urls():
        yield database_url
        for attempt in (1, 2):
            if database_url.startswith("sqlite"):
                yield f"sqlite:///{tmp_path}/fresh-{attempt}.db"
            else:
                from support.databases import postgresql_schema

                yield stack.enter_context(postgresql_schema(os.environ["ECOLEDGER_TEST_DATABASE_URL"]))

    with ExitStack() as stack:
        for attempt, url in enumerate(fresh_urls()):
            env = scheduler_env(home=tmp_path / f"home-{attempt}", database_url=url)
            pair = [SchedulerProcess.start(env, directory=tmp_path / "schedulers", name=f"{attempt}-{n}") for n in "ab"]
            try:
                wait_until(lambda: all(p.started_scheduling() for p in pair), timeout=60,
                           what="both schedulers to start on a fresh database", processes=pair)
            finally:
                for process in pair:
                    process.stop()
            engine = create_database_engine(url)
            try:
                assert check_log(engine) >= 1
                with Session(engine) as session:
                    assert session.execute(select(func.count()).select_from(LogEntry)
                                           .where(LogEntry.command_id == "genesis")).scalar_one() == 1
            finally:
                engine.dispose()

"""``ecoledger scheduler`` as a real process, for end-to-end tests: start it, kill it, stop it.

Typical use::

    env = scheduler_env(home=home, database_url=url, every="* * * * * *")
    with SchedulerProcess.start(env, directory=tmp_path, name="s1") as scheduler:
        wait_until(lambda: ..., timeout=90, what="clearing done", processes=[scheduler])
    # or, for fault tests:
    scheduler = SchedulerProcess.start(env, directory=tmp_path, name="s2")
    time.sleep(random.uniform(0, 3))
    scheduler.kill()                       # SIGKILL, no chance to clean up

Each process runs in a session of its own; its stdout and stderr go to files in ``directory``
(``<name>.stdout.log``, ``<name>.stderr.log``, appended to across restarts so one file tells a
whole story). The scheduler logs JSON lines on stderr; :meth:`SchedulerProcess.job_runs` parses
its ``job ran`` lines.
"""

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.server import DEFAULT_ORIGIN, ecoledger_command, ledger_env

STOP_TIMEOUT = 10.0

FAST = "* * * * * *"
"""Every second (six fields, seconds first)."""
EVERY_TWO = "*/2 * * * * *"


def scheduler_env(*, home: Path, database_url: str, origin: str = DEFAULT_ORIGIN,
                  checkpoint: str = EVERY_TWO, expiry: str = EVERY_TWO, settlement: str = FAST,
                  clearing: str = FAST, grace_days: int = 0, overdue_days: int = 5,
                  extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a scheduler on one ledger, with its four schedules (crontab, six
    fields with seconds first, or five) and the settlement grace days."""
    return ledger_env(home=home, database_url=database_url, origin=origin, extra={
        "ECOLEDGER_SCHEDULER_CHECKPOINT": checkpoint,
        "ECOLEDGER_SCHEDULER_EXPIRY": expiry,
        "ECOLEDGER_SCHEDULER_SETTLEMENT": settlement,
        "ECOLEDGER_SCHEDULER_CLEARING": clearing,
        "ECOLEDGER_SETTLEMENT_GRACE_DAYS": str(grace_days),
        "ECOLEDGER_CLEARING_OVERDUE_DAYS": str(overdue_days),
        **(extra or {}),
    })


@dataclass(frozen=True)
class LoggedRun:
    """One ``job ran`` line of a scheduler's log."""

    job: str
    status: str
    detail: str
    time: str


class SchedulerProcess:
    """A running ``ecoledger scheduler``. Create with :meth:`start`; use as a context manager
    (leaving it stops the process)."""

    def __init__(self, *, process: subprocess.Popen, env: dict[str, str], name: str,
                 stdout_path: Path, stderr_path: Path, started: float):
        self.process = process
        self.env = env
        self.name = name
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self.started = started
        self._stderr_offset = stderr_path.stat().st_size if stderr_path.exists() else 0

    @classmethod
    def start(cls, env: Mapping[str, str], *, directory: Path, name: str = "scheduler") -> "SchedulerProcess":
        """Start ``ecoledger scheduler`` with ``env``; returns at once (it may still be importing)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        stdout_path = directory / f"{name}.stdout.log"
        stderr_path = directory / f"{name}.stderr.log"
        offset = stderr_path.stat().st_size if stderr_path.exists() else 0
        with open(stdout_path, "ab") as stdout, open(stderr_path, "ab") as stderr:
            process = subprocess.Popen([*ecoledger_command(), "scheduler"], env=dict(env),
                                       stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                       start_new_session=True)
        scheduler = cls(process=process, env=dict(env), name=name, stdout_path=stdout_path,
                        stderr_path=stderr_path, started=time.monotonic())
        scheduler._stderr_offset = offset
        return scheduler

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGKILL the scheduler (it gets no chance to finish anything) and reap it."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, wait; SIGKILL its process group if it does not go. Idempotent."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return self.kill(timeout)
        return self.process.poll()

    def log_lines(self) -> list[dict[str, Any]]:
        """This run's JSON log lines (lines that are not JSON are skipped)."""
        try:
            with open(self.stderr_path, "rb") as file:
                file.seek(self._stderr_offset)
                raw = file.read().decode(errors="replace")
        except OSError:
            return []
        lines = []
        for line in raw.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                lines.append(item)
        return lines

    def job_runs(self, job: str | None = None) -> list[LoggedRun]:
        """The ``job ran`` records of this run of the process, in order."""
        return [LoggedRun(job=line.get("job", ""), status=line.get("status", ""), detail=line.get("detail", ""),
                          time=line.get("time", ""))
                for line in self.log_lines()
                if line.get("message") == "job ran" and (job is None or line.get("job") == job)]

    def started_scheduling(self) -> bool:
        """Whether this run has logged ``scheduler started`` (its imports and migrations are done)."""
        return any(line.get("message") == "scheduler started" for line in self.log_lines())

    def output(self, limit: int = 20_000) -> str:
        parts = [f"--- scheduler {self.name}: pid {self.process.pid}, status {self.process.poll()}"]
        for label, path in (("stdout", self.stdout_path), ("stderr", self.stderr_path)):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                text = ""
            if len(text) > limit:
                text = f"[… {len(text) - limit} characters omitted]\n{text[-limit:]}"
            parts.append(f"--- {label} ({path}):\n{text}")
        return "\n".join(parts)

    def __enter__(self) -> "SchedulerProcess":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


class WaitTimeout(AssertionError):
    pass


def wait_until(predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.25,
               processes: Iterable[SchedulerProcess] = (), require_alive: bool = True) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned); fail after ``timeout``
    seconds, or as soon as one of ``processes`` has exited (with ``require_alive``), with their output."""
    processes = list(processes)
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if require_alive:
            for process in processes:
                if not process.alive:
                    raise WaitTimeout(f"waiting for {what}: scheduler {process.name} exited with status "
                                      f"{process.process.poll()}\n{process.output()}")
        if time.monotonic() >= deadline:
            outputs = "\n".join(p.output() for p in processes)
            raise WaitTimeout(f"waiting for {what}: not done within {timeout:.0f} s\n{outputs}")
        time.sleep(interval)


# -- what the scheduler's work must leave behind ---------------------------------------------------
#
# The checks below read a ledger's database directly (an engine on it) and fail with a message
# that names the first thing wrong. They are shared by the fault, clearing-day and netting tests.


def ledger_entries(engine) -> Iterable[dict[str, Any]]:
    """Every entry of the log, in seq order, as ``GET /v1/log/entries`` serves them."""
    from sqlalchemy import select
    from sqlmodel import Session

    from ledger.models import LogEntry

    with Session(engine) as session:
        for (leaf,) in session.execute(select(LogEntry.leaf).order_by(LogEntry.seq)).yield_per(1000):
            yield json.loads(bytes(leaf))


def audit_replay(engine, directory: Path, entries: Iterable[dict[str, Any]] | None = None) -> int:
    """The auditor's check: replay ``entries`` (default: every entry in ``engine``'s log) with
    the same contracts, recomputing every statement and clearing run, into a fresh migrated
    SQLite database in ``directory``; then compare every audited table with ``engine``'s.
    Returns the number of entries replayed; raises VerificationError naming what differs."""
    from ledger.database import create_database_engine, upgrade
    from ledger.replay import compare_tables, replay
    from settlement.audit import AUDITED_TABLES, apply_audited

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    replayed = create_database_engine(f"sqlite:///{directory / 'replay.db'}")
    try:
        upgrade(replayed)
        source = ledger_entries(engine) if entries is None else entries
        try:
            count = replay(source, engine=replayed, apply=_explained(apply_audited))
        finally:
            if hasattr(source, "close"):
                source.close()      # a generator left half-read keeps its session (and locks) open
        compare_tables(replayed, engine, AUDITED_TABLES)
        return count
    finally:
        replayed.dispose()


def _explained(apply):
    """``apply``, but a statement the replay does not reproduce is reported with what differs."""
    from ledger.errors import VerificationError

    def explained(session, entry) -> None:
        try:
            apply(session, entry)
        except VerificationError as error:
            raise VerificationError(f"{error}\n{_statement_difference(session, entry)}") from None

    return explained


def _statement_difference(session, entry) -> str:
    from contracts.agreements import active_version
    from settlement.service import build_statement

    lines = []
    for op in entry.command.get("ops", []):
        if op.get("op") != "settlement.statement":
            continue
        try:
            expected = build_statement(session, active_version(session, op["agreement"], op["period"]), op["period"])
        except Exception as error:  # noqa: BLE001 (a diagnosis, not a check)
            return f"(cannot recompute the statement: {error})"
        for key in sorted(set(expected) | set(op["statement"])):
            if expected.get(key) != op["statement"].get(key):
                lines.append(f"  {key}: the log says {json.dumps(op['statement'].get(key), ensure_ascii=False)[:1500]}"
                             f"\n  {' ' * len(key)}  replay says {json.dumps(expected.get(key), ensure_ascii=False)[:1500]}")
    return "\n".join(lines)


def check_log(engine) -> int:
    """The log's seqs run 0…n−1 without a gap and no (actor, command id) appears twice; each
    entry's leaf names the seq, actor and id its row says. Returns the log's size."""
    from sqlalchemy import func, select
    from sqlmodel import Session

    from ledger.models import LogEntry

    with Session(engine) as session:
        rows = session.execute(select(LogEntry.seq, LogEntry.actor, LogEntry.command_id, LogEntry.leaf)
                               .order_by(LogEntry.seq)).all()
        duplicates = session.execute(select(LogEntry.actor, LogEntry.command_id, func.count())
                                     .group_by(LogEntry.actor, LogEntry.command_id)
                                     .having(func.count() > 1)).all()
    assert not duplicates, f"command ids appended more than once: {duplicates[:10]}"
    seqs = [row.seq for row in rows]
    assert seqs == list(range(len(seqs))), f"the log's seqs are not contiguous: first gap near {_first_gap(seqs)}"
    for row in rows:
        entry = json.loads(bytes(row.leaf))
        assert (entry["seq"], entry["command"]["actor"], entry["command"]["id"]) == (row.seq, row.actor, row.command_id), (
            f"entry {row.seq}'s leaf says seq {entry['seq']}, {entry['command']['actor']} {entry['command']['id']}")
    return len(seqs)


def _first_gap(seqs: list[int]) -> int | None:
    return next((i for i, seq in enumerate(seqs) if seq != i), None)


@dataclass(frozen=True)
class ClearingState:
    obligations: int
    open: int
    runs: int
    runs_by_pool: dict[str, int]


def check_clearing(engine, *, all_cleared: bool) -> ClearingState:
    """Every obligation is in at most one clearing run's body (exactly one when ``all_cleared``),
    and its row agrees: status cleared or settled, ``clearing`` naming that run, same pool, created
    no later than the run's cut-off; an obligation in no run is open. Every run covers at least one
    obligation, no (pool, cut-off) is cleared twice, and each run's gross totals and net payments
    are :func:`settlement.netting.net` of the obligations it names."""
    from sqlalchemy import select
    from sqlmodel import Session

    from ledger.projections import ClearingPayment, ClearingRun, Obligation
    from settlement.netting import net

    with Session(engine) as session:
        obligations = {o.id: o for o in session.execute(select(Obligation)).scalars()}
        runs = list(session.execute(select(ClearingRun).order_by(ClearingRun.seq)).scalars())
        payments = list(session.execute(select(ClearingPayment)).scalars())
        session.expunge_all()

    covered: dict[str, str] = {}
    cutoffs: set[tuple[str, str]] = set()
    for run in runs:
        body = json.loads(run.body)
        assert body["obligations"], f"clearing run {run.id} covers no obligation"
        assert (run.pool, run.cutoff) not in cutoffs, f"{run.pool} cleared twice up to {run.cutoff}"
        cutoffs.add((run.pool, run.cutoff))
        assert len(set(body["obligations"])) == len(body["obligations"]), f"run {run.id} names an obligation twice"
        for obligation_id in body["obligations"]:
            assert obligation_id not in covered, (
                f"obligation {obligation_id} cleared twice: by {covered[obligation_id]} and by {run.id}")
            covered[obligation_id] = run.id
            obligation = obligations.get(obligation_id)
            assert obligation is not None, f"run {run.id} names an unknown obligation {obligation_id}"
            assert obligation.clearing == run.id, (
                f"obligation {obligation_id} is in run {run.id}'s body but its row says {obligation.clearing!r}")
            assert obligation.status in ("cleared", "settled"), f"obligation {obligation_id} is {obligation.status}"
            assert obligation.pool == run.pool, f"obligation {obligation_id} of {obligation.pool} in a {run.pool} run"
            assert obligation.created_at <= run.cutoff, (
                f"obligation {obligation_id} created at {obligation.created_at}, after {run.id}'s cut-off {run.cutoff}")
            if obligation.status == "settled":
                assert run.status == "settled", f"obligation {obligation_id} settled but its run {run.id} is not"
        netting = net((obligations[o].debtor, obligations[o].creditor, obligations[o].amount)
                      for o in body["obligations"])
        assert body["gross"] == [{"from": a, "to": b, "amount": x} for (a, b), x in netting.gross.items()], (
            f"run {run.id}: gross totals are not those of its obligations")
        assert body["payments"] == [{"from": a, "to": b, "amount": x} for a, b, x in netting.payments], (
            f"run {run.id}: net payments are not the netting of its obligations")
        recorded = sorted((p.payer, p.payee, p.amount) for p in payments if p.run == run.id)
        assert recorded == sorted((p["from"], p["to"], p["amount"]) for p in body["payments"]), (
            f"run {run.id}: payment rows {recorded} differ from its body")
    for obligation in obligations.values():
        if obligation.id not in covered:
            assert obligation.status == "open" and obligation.clearing is None, (
                f"obligation {obligation.id} is {obligation.status} (clearing {obligation.clearing!r}) "
                "but no clearing run names it")
    still_open = [o.id for o in obligations.values() if o.id not in covered]
    if all_cleared:
        assert not still_open, f"{len(still_open)} obligations were never cleared, e.g. {still_open[:5]}"
    by_pool: dict[str, int] = {}
    for run in runs:
        by_pool[run.pool] = by_pool.get(run.pool, 0) + 1
    return ClearingState(obligations=len(obligations), open=len(still_open), runs=len(runs), runs_by_pool=by_pool)


def due_now(engine, grace_days: int) -> list[set[tuple[str, str]]]:
    """The (agreement, period) pairs due today in Asia/Shanghai, and those due yesterday (a test
    that straddles midnight may see either)."""
    from datetime import UTC, datetime, timedelta

    from sqlmodel import Session

    from settlement.jobs import SHANGHAI
    from settlement.service import due_periods

    today = datetime.now(UTC).astimezone(SHANGHAI).date()
    with Session(engine) as session:
        return [set(due_periods(session, day, grace_days)) for day in (today, today - timedelta(days=1))]


def check_statements(engine, *, grace_days: int, superseded: bool = False, all_due: bool = True,
                     extra: Iterable[tuple[str, str]] = ()) -> int:
    """Each (agreement, period) has at most one current statement, every due one has exactly one
    (with ``all_due``), and no other period has any (``extra`` periods may, e.g. asked for early).
    Without ``superseded`` no statement was ever superseded (no input changed); with it, every
    superseding statement says something else than the one it supersedes, and the chain is
    consistent. Each statement's obligations are the difference from the one it supersedes, so
    the obligations of a period, netted, are its current statement's transfers. Returns the
    number of statements."""
    from collections import Counter
    from decimal import Decimal

    from sqlalchemy import select
    from sqlmodel import Session

    from ledger.projections import Agreement, Obligation, Statement
    from settlement.statement import net_transfers

    with Session(engine) as session:
        statements = list(session.execute(select(Statement).order_by(Statement.seq)).scalars())
        obligations = list(session.execute(select(Obligation).where(Obligation.pool == "compensation")).scalars())
        agreements = {(a.id, a.version): a for a in session.execute(select(Agreement)).scalars()}
        session.expunge_all()
    current = Counter((s.agreement, s.period) for s in statements if s.superseded_by is None)
    doubled = {key: n for key, n in current.items() if n > 1}
    assert not doubled, f"periods with more than one current statement: {doubled}"
    by_id = {s.id: s for s in statements}
    for statement in statements:
        if statement.supersedes is None:
            continue
        assert superseded, f"statement {statement.id} supersedes {statement.supersedes} though no input changed"
        previous = by_id[statement.supersedes]
        assert previous.superseded_by == statement.id, f"{previous.id} is superseded by {previous.superseded_by}"
        assert (previous.agreement, previous.period) == (statement.agreement, statement.period)
        assert json.loads(previous.body) != json.loads(statement.body), (
            f"statement {statement.id} says the same as {previous.id}, which it supersedes")
    extra = set(extra)
    periods = set(current)
    candidates = due_now(engine, grace_days)
    assert any(periods <= due | extra and (not all_due or due <= periods) for due in candidates), (
        f"statements of {len(periods)} periods are not those due ({len(candidates[0])}): "
        f"missing {sorted(candidates[0] - periods)[:10]}, not due {sorted(periods - candidates[0] - extra)[:10]}")
    by_seq = {s.seq: s for s in statements}
    owed: dict[tuple[str, str], list[tuple[str, str, Decimal]]] = {}
    for obligation in obligations:
        statement = by_seq.get(obligation.source_seq)
        assert statement is not None, f"compensation obligation {obligation.id} comes from no statement"
        owed.setdefault((statement.agreement, statement.period), []).append(
            (obligation.debtor, obligation.creditor, Decimal(obligation.amount) / 100))
    for statement in statements:
        if statement.superseded_by is not None:
            continue
        agreement = agreements[(statement.agreement, statement.version)]
        parties = json.loads(agreement.document)["parties"]
        accounts = {p["id"]: p["account"] for p in parties}
        body = json.loads(statement.body)
        want = [{"from": accounts[t["from"]], "to": accounts[t["to"]], "amount": t["amount"]} for t in body["transfers"]]
        got = net_transfers(owed.get((statement.agreement, statement.period), []), [p["account"] for p in parties])
        assert got == want, (f"the obligations of {statement.agreement} {statement.period} net to {got}, "
                             f"its current statement {statement.id} says {want}")
    return len(statements)

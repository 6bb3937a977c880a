"""The scheduled jobs, and the APScheduler that runs them in its own process.

Every job is idempotent by construction: what it appends carries a command id derived from what
it is about (``expire:<asset>``, ``settlement:<agreement>:<period>:<n>``,
``clearing:<pool>:<cut-off>``), unique in the log, and each unit of work is its own transaction
taken under the log's single-writer lock. A crash mid-job, a re-run or a second scheduler
therefore never loses or doubles anything; a failed unit is logged and retried at the next run.
"""

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select

from contracts.clearing import POOLS, overdue_runs
from contracts.commands import submit_ledger
from contracts.errors import Refused
from contracts.rights import assets_due_to_expire
from contracts.trades import trades_due_to_expire
from ledger.entry import format_time
from ledger.models import JobRun
from ledger.store import LogStore
from settlement.clearing import clear
from settlement.service import due_periods, settle

SHANGHAI = ZoneInfo("Asia/Shanghai")
JOB_NAMES = ("checkpoint", "expiry", "settlement", "clearing")
_log = logging.getLogger("ecoledger.jobs")


class Jobs:
    def __init__(self, *, store: LogStore, grace_days: int, overdue_days: int,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.store = store
        self.grace_days = grace_days
        self.overdue_days = overdue_days
        self.clock = clock

    def run(self, name: str) -> JobRun:
        """Run one job and record how it went."""
        if name not in JOB_NAMES:
            raise ValueError(f"unknown job {name!r}: the jobs are {', '.join(JOB_NAMES)}")
        record = JobRun(job=name, started_at=self.clock())
        failures: list[str] = []
        try:
            done = getattr(self, name)(failures)
        except Exception as error:
            _log.exception("job failed", extra={"job": name})
            failures.append(f"{type(error).__name__}: {error}")
            done = []
        record.finished_at = self.clock()
        record.status = "failed" if failures else "ok"
        record.detail = "\n".join(done + [f"failed: {failure}" for failure in failures]) or "nothing to do"
        with self.store.reader() as session:
            session.add(record)
            session.commit()
            session.refresh(record)
        _log.info("job ran", extra={"job": name, "status": record.status, "detail": record.detail})
        return record

    def _unit(self, done: list[str], failures: list[str], what: str, work: Callable) -> None:
        """One unit of work in its own transaction. What it appended is reported as
        ``<what> at seq N``; a failure is recorded, not raised."""
        try:
            with self.store.writer() as writer:
                outcome = work(writer)
        except Exception as error:
            if not isinstance(error, Refused):
                _log.exception("unit failed", extra={"unit": what})
            failures.append(f"{what}: {error}")
            return
        if outcome is not None and not outcome.replayed:
            done.append(f"{what} at seq {outcome.seq}")

    def checkpoint(self, failures: list[str]) -> list[str]:
        note = self.store.checkpoint()
        return [f"checkpoint of size {note.splitlines()[1]}"]

    def expiry(self, failures: list[str]) -> list[str]:
        """Cross-province trades past their hold, then assets past their validity."""
        now = self.clock()
        done: list[str] = []
        with self.store.reader() as session:
            trades = trades_due_to_expire(session, format_time(now))
            assets = assets_due_to_expire(session, now.astimezone(SHANGHAI).date().isoformat())
        for trade in trades:
            self._unit(done, failures, f"expired trade {trade}", lambda w, t=trade: submit_ledger(
                w, f"trade-expire:{t}", [{"op": "trade.expire", "trade": t}]))
        for asset in assets:
            self._unit(done, failures, f"expired asset {asset}", lambda w, a=asset: submit_ledger(
                w, f"expire:{a}", [{"op": "expire", "asset": a}]))
        return done

    def settlement(self, failures: list[str]) -> list[str]:
        today = self.clock().astimezone(SHANGHAI).date()
        with self.store.reader() as session:
            due = due_periods(session, today, self.grace_days)
        done: list[str] = []
        for agreement, period in due:
            self._unit(done, failures, f"settled {agreement} {period}",
                       lambda w, a=agreement, p=period: settle(w, a, p))
        return done

    def clearing(self, failures: list[str]) -> list[str]:
        """Clear every pool up to now, to the minute: schedulers firing together agree on it."""
        cutoff = format_time(self.clock().replace(second=0, microsecond=0))
        done: list[str] = []
        for pool in sorted(POOLS):
            self._unit(done, failures, f"cleared {pool} up to {cutoff}", lambda w, p=pool: clear(w, p, cutoff))
        overdue_before = format_time(self.clock() - timedelta(days=self.overdue_days))
        with self.store.reader() as session:
            for run in overdue_runs(session, overdue_before):
                _log.warning("clearing overdue", extra={"clearing": run.id, "pool": run.pool, "since": run.time})
                done.append(f"overdue {run.id}")
        return done


def last_runs(store: LogStore) -> dict[str, JobRun]:
    with store.reader() as session:
        rows = session.exec(select(JobRun).order_by(JobRun.id)).scalars().all()
    return {row.job: row for row in rows}


def cron_trigger(expression: str) -> CronTrigger:
    """A crontab expression in Asia/Shanghai: five fields, or six with seconds first."""
    fields = expression.split()
    if len(fields) == 6:
        second, minute, hour, day, month, day_of_week = fields
        return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                           day_of_week=day_of_week, timezone=SHANGHAI)
    return CronTrigger.from_crontab(expression, timezone=SHANGHAI)


def triggers(schedules: Mapping[str, str]) -> dict[str, CronTrigger]:
    """A trigger per job; a bad expression raises ValueError naming the job."""
    result = {}
    for name in JOB_NAMES:
        try:
            result[name] = cron_trigger(schedules[name])
        except ValueError as error:
            raise ValueError(f"the schedule of job {name} ({schedules[name]!r}) is not a crontab: {error}") from None
    return result


def next_runs(schedules: Mapping[str, str], now: datetime) -> dict[str, datetime]:
    return {name: trigger.get_next_fire_time(None, now) for name, trigger in triggers(schedules).items()}


def build_scheduler(jobs: Jobs, schedules: Mapping[str, str]) -> BlockingScheduler:
    scheduler = BlockingScheduler(timezone=SHANGHAI, job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
    for name, trigger in triggers(schedules).items():
        scheduler.add_job(jobs.run, trigger, args=[name], id=name, name=name)
    return scheduler

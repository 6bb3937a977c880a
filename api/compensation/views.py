"""Reads of horizontal watershed compensation and of clearing between provinces
(specs/agreements.md, specs/ledger-api.md §5): agreements and their versions, settlement
statements, monitoring submissions, what clearing would produce now, clearing runs and the
overdue ones.

Every list is a page ``{"items": [...], "next": <cursor> | null}`` as in :mod:`api.registry`:
``?limit=`` from 1 to 1000 (default 100; anything else is a 400) and ``?cursor=`` the previous
page's ``next``. Orders, all stable:

* agreements by id (one item per agreement, its versions inside, oldest first);
* an agreement's statements **by period, then by seq**: a superseded statement comes right
  before the one that supersedes it (``?current=true`` leaves only the statements in force);
* monitoring submissions, clearing runs and overdue runs in log order (seq);
* the obligation summary by pool, then by the pair of account ids.

Money is a decimal string in 元 with two decimals (``"1000000.00"``), never a float. Unknown
query parameters, malformed filters, cursors, periods and version numbers are 400 problems;
unknown or invisible ids are 404 problems (``UNKNOWN_AGREEMENT``, ``UNKNOWN_STATEMENT``,
``UNKNOWN_SUBMISSION``, ``UNKNOWN_CLEARING_RUN``), the same whether the record does not exist
or the caller may not read it.

Who reads what (OWASP API1, object level, and API5, function level), on every read:

* Every read needs ``Authorization: Bearer <token>`` of a principal. Without one, or with a
  token that is not valid, the answer is a 401 problem, before any parameter is looked at.
* ``admin`` and ``auditor`` read everything.
* A ``finance`` principal of province P (a 财政厅/局) reads:

  - **agreements** where P is a party of at least one version (``GET /v1/agreements/<id>``
    then shows every version);
  - **statements** computed under a version P is a party to;
  - **monitoring submissions** of every section of those agreements (a 赤水河-style pool pays
    on sections P is on neither side of);
  - the **obligation summary** and **clearing runs** of the ``compensation`` pool where an
    account of P (its ``FIN`` account) is a side.
* An ``operator`` of P (an exchange) reads the obligation summary and clearing runs of the
  ``trade`` pool where an account of P (its ``EXC`` account) is a side. Agreements,
  statements and monitoring data are not its business: empty lists, 404s.
* A ``monitor`` of P reads the **agreements naming a section it may submit for** (P is
  upstream or downstream of the section in an agreement naming it: the rule of
  ``monitoring.submit``) and the **monitoring submissions of those sections**; no
  statements, obligations or clearing runs.
* An ``issuer`` reads none of these: empty lists, 404s.

A clearing run a provincial principal may read is shown with the obligations, gross totals
and payments that have a side in its province only, like ``GET /v1/obligations``; ``admin``
and ``auditor`` see the whole run. ``GET /v1/obligations`` itself stays with the registry's
rule (:mod:`api.registry.views`: any obligation with a side in the caller's province).
"""

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from flask import current_app
from flask.views import MethodView
from sqlalchemy import exists, false, func, select
from sqlmodel import Session

from api.compensation.schemas import (AgreementPageSchema, AgreementSchema, AgreementsQuery,
                                      AgreementVersionSchema, ObligationPairPageSchema, OverdueQuery,
                                      OverdueRunPageSchema, PeriodStatementSchema, RunPageSchema, RunSchema,
                                      RunsQuery, StatementPageSchema, StatementSchema, StatementsQuery,
                                      SubmissionPageSchema, SubmissionSchema, SubmissionsQuery, SummaryQuery)
from api.problems import Problem
from api.reads import CNY_DECIMALS, ReadBlueprint, entry_facts, known_id, obligation_item
from api.registry.paging import decode_cursor, encode_cursor, page
from api.registry.scope import Scope
from api.storage import get_store
from contracts.clearing import POOLS
from contracts.quantities import format_units
from ledger.entry import format_time, parse_time
from ledger.projections import (Agreement, AgreementSignature, ClearingPayment, ClearingRun, MonitoringSubmission,
                                Obligation, Statement)
from settlement.netting import net
from settlement.periods import MONTH, YEAR

blp = ReadBlueprint("compensation", __name__, url_prefix="/v1",
                description="Reads of watershed compensation (agreements, monitoring, statements) and of "
                            "clearing between provinces (obligation summary, runs, overdue runs). Scoped by "
                            "role and province.")

POOL_READERS = {role: pool for pool, role in POOLS.items()}
"""The pool each provincial role reads: finance bureaus compensation, exchanges trade."""


def _now() -> datetime:
    """The clock of the overdue report (a function, so tests can move it)."""
    return datetime.now(UTC)


def _money(fen: int) -> str:
    return format_units(fen, CNY_DECIMALS)


def _page_list(rows: Iterable[tuple[tuple, Any]], *, shape: Sequence[type], query: dict,
               render: Callable[[list], list[dict]]) -> dict:
    """One page of rows computed in Python, ``(key, row)`` pairs: the same cursors and limits
    as :func:`api.registry.paging.page`."""
    rows = sorted(rows, key=lambda pair: pair[0])
    if query.get("cursor"):
        last = decode_cursor(query["cursor"], shape)
        rows = [pair for pair in rows if pair[0] > last]
    limit = query["limit"]
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": render([row for _, row in rows]), "next": encode_cursor(rows[-1][0]) if more else None}


# -- who reads what ----------------------------------------------------------------------------


@dataclass
class Book:
    """Every agreement version with its document. Agreements are few (a handful per pair of
    provinces), so scoping reads them whole, once per request."""

    versions: dict[str, list[Agreement]] = field(default_factory=dict)
    documents: dict[tuple[str, int], dict] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session) -> "Book":
        book = cls()
        for agreement in session.execute(select(Agreement).order_by(Agreement.id, Agreement.version)).scalars():
            book.versions.setdefault(agreement.id, []).append(agreement)
            book.documents[(agreement.id, agreement.version)] = json.loads(agreement.document)
        return book

    @cached_property
    def section_sides(self) -> dict[str, set[str]]:
        """The parties upstream or downstream of each section, in any agreement naming it."""
        sides: dict[str, set[str]] = {}
        for document in self.documents.values():
            for section in document["sections"]:
                sides.setdefault(section["id"], set()).update(section["upstream"], section["downstream"])
        return sides


@dataclass
class Reader:
    """The calling principal's view of agreements, statements, monitoring data and clearing."""

    scope: Scope
    book: Book

    @property
    def role(self) -> str:
        return self.scope.principal.role

    @property
    def province(self) -> str | None:
        return self.scope.principal.province

    def _party(self, document: dict) -> bool:
        return self.province in [p["id"] for p in document["parties"]]

    def sees_version(self, agreement_id: str, version: int) -> bool:
        if self.scope.sees_all:
            return True
        document = self.book.documents[(agreement_id, version)]
        if self.role == "finance":
            return self._party(document)
        if self.role == "monitor":
            return any(self.province in self.book.section_sides[s["id"]] for s in document["sections"])
        return False

    def sees_agreement(self, agreement_id: str) -> bool:
        return any(self.sees_version(agreement_id, a.version) for a in self.book.versions.get(agreement_id, []))

    def statement_versions(self, agreement_id: str) -> list[int]:
        """The versions of an agreement whose statements the caller reads."""
        versions = [a.version for a in self.book.versions.get(agreement_id, [])]
        if self.scope.sees_all:
            return versions
        if self.role == "finance":
            return [v for v in versions if self._party(self.book.documents[(agreement_id, v)])]
        return []

    def sections(self) -> set[str] | None:
        """The sections whose monitoring data the caller reads; None: all of them."""
        if self.scope.sees_all:
            return None
        if self.role == "finance":
            return {s["id"] for d in self.book.documents.values() if self._party(d) for s in d["sections"]}
        if self.role == "monitor":
            return {s for s, sides in self.book.section_sides.items() if self.province in sides}
        return set()

    def pools(self) -> list[str] | None:
        """The pools whose obligations and clearing runs the caller reads; None: all of them."""
        if self.scope.sees_all:
            return None
        pool = POOL_READERS.get(self.role)
        return [pool] if pool else []

    def restrict_pool(self, statement, pool_column, *account_columns):
        """Only the caller's pools, and only rows with a side (``account_columns``) it reads."""
        pools = self.pools()
        if pools is None:
            return statement
        if not pools:
            return statement.where(false())
        return self.scope.restrict(statement.where(pool_column.in_(pools)), *account_columns)


def _reader(session: Session) -> Reader:
    return Reader(Scope.current(), Book.load(session))


# -- agreements --------------------------------------------------------------------------------


def _term(agreement: Agreement) -> dict:
    return {"start": agreement.term_from, "end": agreement.term_to}


def _parties(document: dict) -> list[dict]:
    return [{"id": p["id"], "name": p.get("name", ""), "account": p.get("account", "")} for p in document["parties"]]


def _sections(document: dict) -> list[dict]:
    return [{"id": s["id"], "name": s.get("name", ""), "river": s.get("river", ""),
             "water_body": s.get("water_body", "river"), "upstream": s["upstream"], "downstream": s["downstream"],
             "shares": s.get("shares")} for s in document["sections"]]


def _agreement_status(versions: list[Agreement]) -> tuple[str, int | None]:
    active = [a.version for a in versions if a.status == "active"]
    return ("active", max(active)) if active else ("proposed", None)


def _version(agreement: Agreement, document: dict, signatures: list[AgreementSignature]) -> dict:
    signed = {s.party for s in signatures}
    return {"agreement": agreement.id, "version": agreement.version, "status": agreement.status,
            "digest": agreement.digest, "title": document.get("title", ""), "period": agreement.period,
            "term": _term(agreement), "parties": _parties(document), "proposed_by": agreement.proposed_by,
            "proposed_seq": agreement.proposed_seq, "activated_seq": agreement.activated_seq,
            "signatures": [{"party": s.party, "principal": s.principal, "seq": s.seq} for s in signatures],
            "waiting_for": [p["id"] for p in document["parties"] if p["id"] not in signed],
            "document": document}


def _signatures(session: Session, agreement_id: str) -> dict[int, list[AgreementSignature]]:
    rows = session.execute(select(AgreementSignature).where(AgreementSignature.agreement == agreement_id)
                        .order_by(AgreementSignature.seq, AgreementSignature.party)).scalars()
    signatures: dict[int, list[AgreementSignature]] = {}
    for row in rows:
        signatures.setdefault(row.version, []).append(row)
    return signatures


def _visible_agreement(reader: Reader, agreement_id: str) -> list[Agreement]:
    known_id(agreement_id, "UNKNOWN_AGREEMENT", "agreement")
    if not reader.sees_agreement(agreement_id):
        raise Problem(404, "UNKNOWN_AGREEMENT", f"there is no agreement {agreement_id!r}")
    return reader.book.versions[agreement_id]


@blp.route("/agreements")
class Agreements(MethodView):
    @blp.query(AgreementsQuery)
    @blp.response(200, AgreementPageSchema)
    @blp.errors(400, 401)
    def get(self, query: dict):
        """Compensation agreements by id, each with its versions; ``?status=active`` for those
        with an active version, ``?party=SC`` for those a province is a party to."""
        with get_store().reader() as session:
            reader = _reader(session)
        rows = []
        for agreement_id, versions in reader.book.versions.items():
            if not reader.sees_agreement(agreement_id):
                continue
            status, active = _agreement_status(versions)
            if query.get("status", status) != status:
                continue
            documents = [reader.book.documents[(agreement_id, a.version)] for a in versions]
            if "party" in query and not any(query["party"] in [p["id"] for p in d["parties"]] for d in documents):
                continue
            latest, document = versions[-1], documents[-1]
            rows.append(((agreement_id,), {
                "id": agreement_id, "title": document.get("title", ""), "status": status, "period": latest.period,
                "parties": _parties(document), "sections": _sections(document), "active_version": active,
                "latest_version": latest.version,
                "versions": [{"version": a.version, "status": a.status, "digest": a.digest, "term": _term(a),
                              "proposed_seq": a.proposed_seq, "activated_seq": a.activated_seq} for a in versions]}))
        return _page_list(rows, shape=[str], query=query, render=lambda items: items)


@blp.route("/agreements/<agreement_id>")
class AgreementDetail(MethodView):
    @blp.response(200, AgreementSchema)
    @blp.errors(401, 404)
    def get(self, agreement_id: str):
        """An agreement with every version: status, digest, term, period, who proposed it at
        which seq, when it became active, the parties' signatures and the document itself."""
        with get_store().reader() as session:
            reader = _reader(session)
            versions = _visible_agreement(reader, agreement_id)
            signatures = _signatures(session, agreement_id)
        status, active = _agreement_status(versions)
        rendered = [_version(a, reader.book.documents[(a.id, a.version)], signatures.get(a.version, []))
                    for a in versions]
        return {"id": agreement_id, "title": rendered[-1]["title"], "status": status, "active_version": active,
                "latest_version": versions[-1].version, "versions": rendered}


@blp.route("/agreements/<agreement_id>/versions/<version>")
class AgreementVersionDetail(MethodView):
    @blp.response(200, AgreementVersionSchema)
    @blp.errors(400, 401, 404)
    def get(self, agreement_id: str, version: str):
        """One version of an agreement."""
        if not (version.isascii() and version.isdigit()) or len(version) > 9 or int(version) < 1:
            raise Problem(400, "INVALID_PARAMETER", f"a version is a positive integer, not {version[:40]!r}",
                          errors={"version": ["a positive integer"]})
        with get_store().reader() as session:
            reader = _reader(session)
            versions = _visible_agreement(reader, agreement_id)
            found = next((a for a in versions if a.version == int(version)), None)
            if found is None:
                raise Problem(404, "UNKNOWN_AGREEMENT", f"agreement {agreement_id} has no version {int(version)}")
            signatures = _signatures(session, agreement_id).get(found.version, [])
        return _version(found, reader.book.documents[(found.id, found.version)], signatures)


# -- statements --------------------------------------------------------------------------------


def _transfers(body: dict) -> list[dict]:
    return [{"source": t["from"], "to": t["to"], "amount": t["amount"]} for t in body.get("transfers", [])]


def _statement(statement: Statement, time: str | None) -> dict:
    body = json.loads(statement.body)
    return {"id": statement.id, "agreement": statement.agreement, "version": statement.version,
            "period": statement.period, "seq": statement.seq, "time": time, "digest": body.get("digest"),
            "supersedes": statement.supersedes, "superseded_by": statement.superseded_by,
            "current": statement.superseded_by is None, "transfers": _transfers(body),
            "sections": [{"section": s["section"], "name": s.get("name", ""), "status": s["status"],
                          "section_class": s.get("class"), "amount": s["amount"]} for s in body.get("sections", [])]}


def _statement_detail(session: Session, statement: Statement) -> dict:
    facts = entry_facts(session, [statement.seq])
    obligations = session.execute(select(Obligation).where(Obligation.source_seq == statement.seq,
                                                        Obligation.pool == "compensation")).scalars().all()
    obligations = sorted(obligations, key=lambda o: int(o.id.rsplit("-", 1)[1]))
    return {**_statement(statement, facts.get(statement.seq, {}).get("time")),
            "obligations": [obligation_item(o) for o in obligations], "statement": json.loads(statement.body)}


@blp.route("/agreements/<agreement_id>/statements")
class AgreementStatements(MethodView):
    @blp.query(StatementsQuery)
    @blp.response(200, StatementPageSchema)
    @blp.errors(400, 401, 404)
    def get(self, query: dict, agreement_id: str):
        """The agreement's settlement statements by period, then seq (each superseded statement
        right before the one superseding it); ``?current=true`` for those in force only."""
        with get_store().reader() as session:
            reader = _reader(session)
            _visible_agreement(reader, agreement_id)
            statement = select(Statement).where(Statement.agreement == agreement_id,
                                                Statement.version.in_(reader.statement_versions(agreement_id)))
            if "period" in query:
                statement = statement.where(Statement.period == query["period"])
            if "current" in query:
                statement = statement.where(Statement.superseded_by.is_(None) if query["current"]
                                            else Statement.superseded_by.is_not(None))

            def render(rows):
                facts = entry_facts(session, [r[0].seq for r in rows])
                return [_statement(s, facts.get(s.seq, {}).get("time")) for (s,) in rows]

            return page(session, statement, order=[Statement.period, Statement.seq], shape=[str, int], query=query,
                        key=lambda row: [row[0].period, row[0].seq], render=render)


@blp.route("/agreements/<agreement_id>/statements/<period>")
class PeriodStatement(MethodView):
    @blp.response(200, PeriodStatementSchema)
    @blp.errors(400, 401, 404)
    def get(self, agreement_id: str, period: str):
        """The statement in force for a period (YYYY-MM or YYYY, as the agreement is settled),
        with the statements of that period it superseded, oldest first."""
        with get_store().reader() as session:
            reader = _reader(session)
            versions = _visible_agreement(reader, agreement_id)
            kinds = {a.period for a in versions}
            if not any((MONTH if kind == "month" else YEAR).fullmatch(period) for kind in kinds):
                expected = " or ".join(sorted("YYYY-MM" if kind == "month" else "YYYY" for kind in kinds))
                raise Problem(400, "INVALID_PARAMETER", f"{agreement_id} is settled by {'/'.join(sorted(kinds))}: "
                                                        f"a period is {expected}, not {period[:40]!r}",
                              errors={"period": [f"a period is {expected}"]})
            rows = session.execute(select(Statement).where(
                Statement.agreement == agreement_id, Statement.period == period,
                Statement.version.in_(reader.statement_versions(agreement_id))).order_by(Statement.seq)).scalars().all()
            current = next((s for s in rows if s.superseded_by is None), None)
            if current is None:
                raise Problem(404, "UNKNOWN_STATEMENT", f"there is no statement of {agreement_id} for {period}")
            history = [s for s in rows if s.id != current.id]
            facts = entry_facts(session, [s.seq for s in history])
            return {**_statement_detail(session, current),
                    "history": [{"id": s.id, "seq": s.seq, "time": facts.get(s.seq, {}).get("time"),
                                 "supersedes": s.supersedes, "superseded_by": s.superseded_by,
                                 "transfers": _transfers(json.loads(s.body))} for s in history]}


@blp.route("/statements/<statement_id>")
class StatementDetail(MethodView):
    @blp.response(200, StatementSchema)
    @blp.errors(401, 404)
    def get(self, statement_id: str):
        """A statement exactly as appended, with its seq, the statement it supersedes, the one
        superseding it, and the obligations it created."""
        known_id(statement_id, "UNKNOWN_STATEMENT", "statement")
        with get_store().reader() as session:
            statement = session.get(Statement, statement_id)
            if statement is None or statement.version not in _reader(session).statement_versions(statement.agreement):
                raise Problem(404, "UNKNOWN_STATEMENT", f"there is no statement {statement_id!r}")
            return _statement_detail(session, statement)


# -- monitoring --------------------------------------------------------------------------------


def _submission(submission: MonitoringSubmission, time: str | None, samples: list | None = None) -> dict:
    samples = json.loads(submission.samples) if samples is None else samples
    return {"id": submission.id, "section": submission.section, "submitted_by": submission.submitted_by,
            "seq": submission.seq, "time": time, "first_date": submission.first_date,
            "last_date": submission.last_date, "sample_count": len(samples), "corrects": submission.corrects,
            "superseded_by": submission.superseded_by, "current": submission.superseded_by is None}


@blp.route("/monitoring/submissions")
class Submissions(MethodView):
    @blp.query(SubmissionsQuery)
    @blp.response(200, SubmissionPageSchema)
    @blp.errors(400, 401)
    def get(self, query: dict):
        """Monitoring submissions in log order; ``?current=true`` hides those replaced by a
        correction (what settlement uses)."""
        with get_store().reader() as session:
            sections = _reader(session).sections()
            statement = select(MonitoringSubmission)
            if sections is not None:
                statement = statement.where(MonitoringSubmission.section.in_(sorted(sections)))
            if "section" in query:
                statement = statement.where(MonitoringSubmission.section == query["section"])
            if "current" in query:
                statement = statement.where(MonitoringSubmission.superseded_by.is_(None) if query["current"]
                                            else MonitoringSubmission.superseded_by.is_not(None))

            def render(rows):
                facts = entry_facts(session, [r[0].seq for r in rows])
                return [_submission(s, facts.get(s.seq, {}).get("time")) for (s,) in rows]

            return page(session, statement, order=[MonitoringSubmission.seq, MonitoringSubmission.id],
                        shape=[int, str], query=query, key=lambda row: [row[0].seq, row[0].id], render=render)


@blp.route("/monitoring/submissions/<submission_id>")
class SubmissionDetail(MethodView):
    @blp.response(200, SubmissionSchema)
    @blp.errors(401, 404)
    def get(self, submission_id: str):
        """A submission with its samples, the submission it corrects and the correction that
        replaced it, if any."""
        known_id(submission_id, "UNKNOWN_SUBMISSION", "submission")
        with get_store().reader() as session:
            submission = session.get(MonitoringSubmission, submission_id)
            sections = _reader(session).sections() if submission is not None else set()
            if submission is None or (sections is not None and submission.section not in sections):
                raise Problem(404, "UNKNOWN_SUBMISSION", f"there is no submission {submission_id!r}")
            time = entry_facts(session, [submission.seq]).get(submission.seq, {}).get("time")
        samples = json.loads(submission.samples)
        return {**_submission(submission, time, samples), "samples": samples}


# -- obligations: what clearing would produce now ----------------------------------------------


@blp.route("/obligations/summary")
class ObligationSummary(MethodView):
    @blp.query(SummaryQuery)
    @blp.response(200, ObligationPairPageSchema)
    @blp.errors(400, 401)
    def get(self, query: dict):
        """For every pair of accounts with open obligations in a pool: the gross each way and
        the net payment (:func:`settlement.netting.net`), which is what a clearing run of the
        pool would produce now. By pool, then pair."""
        with get_store().reader() as session:
            reader = _reader(session)
            statement = (select(Obligation.pool, Obligation.debtor, Obligation.creditor,
                                func.sum(Obligation.amount), func.count())
                         .where(Obligation.status == "open")
                         .group_by(Obligation.pool, Obligation.debtor, Obligation.creditor))
            if "pool" in query:
                statement = statement.where(Obligation.pool == query["pool"])
            statement = reader.restrict_pool(statement, Obligation.pool, Obligation.debtor, Obligation.creditor)
            grouped = session.execute(statement).all()
        by_pool: dict[str, list[tuple[str, str, int, int]]] = {}
        for pool, debtor, creditor, total, number in grouped:
            by_pool.setdefault(pool, []).append((debtor, creditor, int(total), int(number)))
        rows = []
        for pool, lines in by_pool.items():
            netting = net((debtor, creditor, total) for debtor, creditor, total, _ in lines)
            counts = {(debtor, creditor): number for debtor, creditor, _, number in lines}
            payments = {tuple(sorted((payer, payee))): (payer, payee, amount)
                        for payer, payee, amount in netting.payments}
            for a, b in sorted({tuple(sorted(pair)) for pair in netting.gross}):
                payer, payee, amount = payments.get((a, b), (None, None, 0))
                rows.append(((pool, a, b), {
                    "pool": pool, "account_a": a, "account_b": b,
                    "a_owes_b": _money(netting.gross.get((a, b), 0)), "b_owes_a": _money(netting.gross.get((b, a), 0)),
                    "obligations_a_to_b": counts.get((a, b), 0), "obligations_b_to_a": counts.get((b, a), 0),
                    "payer": payer, "payee": payee, "net": _money(amount)}))
        return _page_list(rows, shape=[str, str, str], query=query, render=lambda items: items)


# -- clearing ----------------------------------------------------------------------------------


def _payment(payment: ClearingPayment) -> dict:
    waiting = [] if payment.settled_seq is not None else [
        side for side in ("payer", "payee") if getattr(payment, f"{side}_confirmed_by") is None]
    return {"id": payment.id, "payer": payment.payer, "payee": payment.payee, "amount": _money(payment.amount),
            "payer_confirmed_by": payment.payer_confirmed_by, "payee_confirmed_by": payment.payee_confirmed_by,
            "waiting_for": waiting, "status": "waiting" if payment.settled_seq is None else "settled",
            "settled_seq": payment.settled_seq}


def _visible_runs(reader: Reader, statement):
    """Runs of the caller's pools that cover an obligation with a side it reads."""
    pools = reader.pools()
    if pools is None:
        return statement
    if not pools:
        return statement.where(false())
    covered = reader.scope.restrict(select(Obligation.id).where(Obligation.clearing == ClearingRun.id),
                                    Obligation.debtor, Obligation.creditor)
    return statement.where(ClearingRun.pool.in_(pools), exists(covered))


def _runs(session: Session, reader: Reader, runs: list[ClearingRun]) -> list[dict]:
    """Run summaries, with one query for their payments and one for their obligation counts."""
    ids = [run.id for run in runs]
    if not ids:
        return []
    payments: dict[str, list[ClearingPayment]] = {}
    for payment in session.execute(select(ClearingPayment).where(ClearingPayment.run.in_(ids))).scalars():
        if reader.scope.sees_any(payment.payer, payment.payee):
            payments.setdefault(payment.run, []).append(payment)
    counted = reader.scope.restrict(select(Obligation.clearing, func.count()).where(Obligation.clearing.in_(ids)),
                                    Obligation.debtor, Obligation.creditor).group_by(Obligation.clearing)
    counts = dict(session.execute(counted).all())
    items = []
    for run in runs:
        body = json.loads(run.body)
        items.append({"id": run.id, "pool": run.pool, "cutoff": run.cutoff, "seq": run.seq, "time": run.time,
                      "status": run.status, "settled_seq": run.settled_seq,
                      "obligation_count": int(counts.get(run.id, 0)),
                      "gross": [{"source": g["from"], "to": g["to"], "amount": _money(g["amount"])}
                                for g in body["gross"] if reader.scope.sees_any(g["from"], g["to"])],
                      "payments": [_payment(p) for p in sorted(payments.get(run.id, []),
                                                               key=lambda p: int(p.id.rsplit("-", 1)[1]))]})
    return items


@blp.route("/clearing/runs")
class ClearingRuns(MethodView):
    @blp.query(RunsQuery)
    @blp.response(200, RunPageSchema)
    @blp.errors(400, 401)
    def get(self, query: dict):
        """Clearing runs in log order with their gross totals and net payments, each payment's
        confirmations by side; ``?status=pending`` for runs with a payment still waiting."""
        with get_store().reader() as session:
            reader = _reader(session)
            statement = _visible_runs(reader, select(ClearingRun))
            for name in ("pool", "status"):
                if name in query:
                    statement = statement.where(getattr(ClearingRun, name) == query[name])
            return page(session, statement, order=[ClearingRun.seq, ClearingRun.id], shape=[int, str], query=query,
                        key=lambda row: [row[0].seq, row[0].id],
                        render=lambda rows: _runs(session, reader, [r[0] for r in rows]))


@blp.route("/clearing/runs/<run_id>")
class ClearingRunDetail(MethodView):
    @blp.response(200, RunSchema)
    @blp.errors(401, 404)
    def get(self, run_id: str):
        """A clearing run: the obligations it covers, the gross totals both ways, and the net
        payments with payer, payee, amount, who confirmed for each side and the settling seq."""
        known_id(run_id, "UNKNOWN_CLEARING_RUN", "clearing run")
        with get_store().reader() as session:
            reader = _reader(session)
            run = session.execute(_visible_runs(reader, select(ClearingRun).where(ClearingRun.id == run_id))
                                  ).scalars().first()
            if run is None:
                raise Problem(404, "UNKNOWN_CLEARING_RUN", f"there is no clearing run {run_id!r}")
            obligations = session.execute(reader.scope.restrict(
                select(Obligation).where(Obligation.clearing == run.id), Obligation.debtor, Obligation.creditor)
                .order_by(Obligation.source_seq, Obligation.id)).scalars().all()
            return {**_runs(session, reader, [run])[0], "obligations": [obligation_item(o) for o in obligations]}


@blp.route("/clearing/overdue")
class OverdueRuns(MethodView):
    @blp.query(OverdueQuery)
    @blp.response(200, OverdueRunPageSchema)
    @blp.errors(400, 401)
    def get(self, query: dict):
        """Runs still pending (a payment not confirmed by both sides) more than
        ``clearing_overdue_days`` after they were appended, in log order."""
        days = current_app.config["ECOLEDGER"].clearing_overdue_days
        now = _now()
        before = format_time(now - timedelta(days=days))
        with get_store().reader() as session:
            reader = _reader(session)
            statement = _visible_runs(reader, select(ClearingRun).where(ClearingRun.status == "pending",
                                                                        ClearingRun.time < before))
            if "pool" in query:
                statement = statement.where(ClearingRun.pool == query["pool"])

            def render(rows):
                items = _runs(session, reader, [r[0] for r in rows])
                for item in items:
                    appended = parse_time(item["time"])
                    item["overdue_since"] = format_time(appended + timedelta(days=days))
                    item["days_pending"] = (now - appended).days
                return items

            return page(session, statement, order=[ClearingRun.seq, ClearingRun.id], shape=[int, str], query=query,
                        key=lambda row: [row[0].seq, row[0].id], render=render)

"""A small scenario builder for the contract tests: principals with keys, signed commands, snapshots.

Imported as ``contract_book`` (tests/contracts is on sys.path under pytest's default import mode).
A :class:`Book` wraps a LogStore; :func:`standard_cast` adds the usual cast: an admin, issuers and
exchanges of SC and CQ, a finance bureau, an auditor, enterprises and an individual in both
provinces, and a few assets.

Everything here drives the code under test only through ``contracts.commands.submit`` and
``submit_ledger``, and reads the database tables directly for the answers.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from contracts.commands import Outcome, submit, submit_ledger
from contracts.errors import Refused
from contracts.uscc import check_character
from ledger.encoding import b64encode, canonical
from ledger.entry import format_time
from ledger.keys import SigningKey
from ledger.models import LogEntry
from ledger.projections import PROJECTIONS, Balance, Hold
from ledger.store import LogStore, LogWriter


ORIGIN = "ecoledger.test/log"


def uscc(first17: str) -> str:
    """A USCC with the given first 17 characters and its check character."""
    return first17 + check_character(first17)


# The cast. Enterprise ids are 18-character USCCs; 5101 is Chengdu, 5000 Chongqing.
SC_A = f"SC:ENT:{uscc('91510100MA6C00001')}"
SC_B = f"SC:ENT:{uscc('91510100MA6C00002')}"
SC_P = "SC:IND:p-0001"
CQ_C = f"CQ:ENT:{uscc('91500000MA5U00003')}"
CQ_D = f"CQ:ENT:{uscc('91500000MA5U00004')}"
SC_ISS = "SC:ISS:sc-sthj"
CQ_ISS = "CQ:ISS:cq-sthj"
SC_EXC = "SC:EXC:sc-exchange"
CQ_EXC = "CQ:EXC:cq-exchange"

PDR_SC = "PDR-SC-COD-20250101-20291231"
PDR_CQ = "PDR-CQ-COD-20250101-20291231"
PDR_OLD = "PDR-SC-NH3N-20200101-20211231"
EUR_SC = "EUR-SC-2025"
WR_SC = "WR-SC-minjiang-withdrawal-20250101-20341231"
CHTF = "CHTF-cdcer-001-metro-2024"
CQCER = "CQCER-cqcer-002-forest-2024"
CNY = "CNY"


@dataclass
class Book:
    store: LogStore
    keys: dict[str, SigningKey] = field(default_factory=dict)
    counter: int = 0

    # -- commands ---------------------------------------------------------------------------

    def next_id(self, prefix: str = "c") -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def ledger(self, *ops: dict, id: str | None = None) -> Outcome:
        """A command of the ledger itself (submit_ledger), committed."""
        with self.store.writer() as writer:
            return submit_ledger(writer, id or self.next_id("l"), list(ops))

    def ledger_refused(self, *ops: dict, id: str | None = None, snapshot: bool = False) -> Refused:
        return self._expect_refusal(lambda: self.ledger(*ops, id=id), snapshot)

    def add(self, name: str, role: str, province: str | None = None, instruments=(), **extra) -> Outcome:
        """Register a principal with a fresh key (principal.add by the ledger)."""
        key = SigningKey.generate(name)
        op = {"op": "principal.add", "name": name, "role": role, "key": str(key.verifier), **extra}
        if province is not None:
            op["province"] = province
        if instruments:
            op["instruments"] = list(instruments)
        outcome = self.ledger(op, id=f"add-{name}")
        self.keys[name] = key
        return outcome

    def command(self, actor: str, *ops: dict, id: str | None = None) -> dict:
        return {"id": id or self.next_id(), "actor": actor, "ops": list(ops)}

    def sign(self, command: Any, key: SigningKey | None = None) -> str:
        if key is None:
            actor = command.get("actor") if isinstance(command, dict) else None
            key = self.keys.get(actor) if isinstance(actor, str) else None
        if key is None:  # a malformed command or an unknown actor: some well-formed signature
            return b64encode(bytes(64))
        return b64encode(key.sign(canonical(command)))

    def send(self, command: dict, signature: str | None = None, *, key: SigningKey | None = None) -> Outcome:
        """Submit a command as it is (signed with the actor's key unless told otherwise)."""
        if signature is None:
            signature = self.sign(command, key)
        with self.store.writer() as writer:
            return submit(writer, command=command, signature=signature)

    def do(self, actor: str, *ops: dict, id: str | None = None, key: SigningKey | None = None) -> Outcome:
        """Submit a signed command; it must be appended."""
        return self.send(self.command(actor, *ops, id=id), key=key)

    def refused(self, actor: str, *ops: dict, id: str | None = None, key: SigningKey | None = None,
                snapshot: bool = False) -> Refused:
        """Submit a signed command; it must be refused and append nothing (with ``snapshot``:
        and leave every table exactly as it was)."""
        return self._expect_refusal(lambda: self.do(actor, *ops, id=id, key=key), snapshot)

    def refused_command(self, command: Any, signature: Any = None, *, key: SigningKey | None = None,
                        snapshot: bool = False) -> Refused:
        return self._expect_refusal(lambda: self.send(command, signature, key=key), snapshot)

    def _expect_refusal(self, attempt, snapshot: bool = False) -> Refused:
        before = self.snapshot() if snapshot else self.size()
        try:
            outcome = attempt()
        except Refused as refusal:
            after = self.snapshot() if snapshot else self.size()
            assert after == before, "a refused command changed the database"
            return refusal
        raise AssertionError(f"expected a refusal, the command was appended at seq {outcome.seq}: "
                             f"{outcome.results}")

    # -- time -------------------------------------------------------------------------------

    @contextmanager
    def at(self, moment: str | datetime) -> Iterator[None]:
        """Entries appended inside get this time (the writer's clock, patched)."""
        text = moment if isinstance(moment, str) else format_time(moment)
        original = LogWriter._next_time
        LogWriter._next_time = lambda self: text
        try:
            yield
        finally:
            LogWriter._next_time = original

    # -- reads ------------------------------------------------------------------------------

    def size(self) -> int:
        return self.store.size()

    def session(self) -> Session:
        return Session(self.store.engine)

    def snapshot(self, session: Session | None = None) -> dict[str, list[tuple]]:
        """Every projection table and the log's entries, as sorted lists of row tuples (read in
        ``session`` if given, e.g. a writer's open transaction)."""
        if session is None:
            with self.session() as session:
                return self.snapshot(session)
        session.flush()
        tables = {}
        for model in (*PROJECTIONS, LogEntry):
            rows = session.execute(select(model.__table__)).all()
            tables[model.__tablename__] = sorted((tuple(row) for row in rows), key=repr)
        return tables

    def balance(self, account: str, asset: str) -> dict[str, int]:
        with self.session() as session:
            row = session.get(Balance, (account, asset))
            if row is None:
                return {"total": 0, "frozen": 0, "pledged": 0, "held": 0}
            return {"total": row.total, "frozen": row.frozen, "pledged": row.pledged, "held": row.held}

    def total(self, account: str, asset: str) -> int:
        return self.balance(account, asset)["total"]

    def rows(self, model, *where) -> list[Any]:
        with self.session() as session:
            rows = list(session.exec(select(model).where(*where)).scalars())
            session.expunge_all()
            return rows

    def get(self, model, key) -> Any:
        with self.session() as session:
            row = session.get(model, key)
            if row is not None:
                session.expunge(row)
            return row

    def hold(self, hold_id: str) -> Hold | None:
        return self.get(Hold, hold_id)


def standard_cast(book: Book) -> Book:
    """Principals, accounts and assets most tests start from."""
    book.add("admin", "admin")
    book.add("sc-sthj", "issuer", "SC", ["PDR", "EUR", "WR", "CHTF"])
    book.add("cq-sthj", "issuer", "CQ", ["PDR", "CQCER"])
    book.add("sc-exchange", "operator", "SC")
    book.add("cq-exchange", "operator", "CQ")
    book.add("sc-finance", "finance", "SC")
    book.add("auditor", "auditor")
    book.do("sc-exchange",
            {"op": "account.open", "account": SC_A, "name": "A"},
            {"op": "account.open", "account": SC_B, "name": "B"},
            {"op": "account.open", "account": SC_P, "name": "P"})
    book.do("cq-exchange",
            {"op": "account.open", "account": CQ_C, "name": "C"},
            {"op": "account.open", "account": CQ_D, "name": "D"})
    book.do("sc-sthj",
            {"op": "asset.define", "instrument": "PDR",
             "attributes": {"pollutant": "COD", "valid_from": "2025-01-01", "valid_until": "2029-12-31"}},
            {"op": "asset.define", "instrument": "EUR", "attributes": {"compliance_year": 2025}},
            {"op": "asset.define", "instrument": "WR",
             "attributes": {"right_type": "withdrawal", "basin": "minjiang",
                            "term_start": "2025-01-01", "term_end": "2034-12-31"}},
            {"op": "asset.define", "instrument": "CHTF",
             "attributes": {"methodology": "cdcer-001", "project": "metro", "vintage": 2024}},
            {"op": "asset.define", "instrument": "PDR",
             "attributes": {"pollutant": "NH3N", "valid_from": "2020-01-01", "valid_until": "2021-12-31"}})
    book.do("cq-sthj",
            {"op": "asset.define", "instrument": "PDR",
             "attributes": {"pollutant": "COD", "valid_from": "2025-01-01", "valid_until": "2029-12-31"}},
            {"op": "asset.define", "instrument": "CQCER",
             "attributes": {"methodology": "cqcer-002", "project": "forest", "vintage": 2024}})
    return book

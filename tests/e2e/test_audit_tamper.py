"""The auditor against a tampered ledger: every change to stored history is found and *named*.

DESIGN.md: "A tamper test flips bytes in stored entries and the verifier must name the first bad
seq." The ledger under test is the demo data set (``api.demo.run_demo``: every instrument's ops,
trades within and across the provinces, holds, retirements, monitoring, settlement statements —
one superseded —, obligations and clearing runs), built once per engine and module, with
checkpoints served at several sizes so bundles carry more than one.

Each tamper is done the way an insider would: as the database owner, with the append-only
triggers out of the way (PostgreSQL ``ALTER TABLE … DISABLE TRIGGER USER``; SQLite: drop and
re-create the triggers around the change), or by rewriting an export bundle (a malicious exporter
who also holds the log key). Then the ledger is exported and ``settlement.auditor.audit`` must say
``ok=False`` with an error that names the first bad seq, the table and row, or the checkpoint.
Every database change is undone afterwards (and the triggers checked to be back), so the tests
share one ledger; an untampered export must verify with ``ok=True`` before and after.

The last part runs the real server (``ecoledger serve``) on the same database: ``ecoledger
verify URL`` (with and without an auditor's token, ``--since`` a kept checkpoint), and inclusion
receipts from ``/v1/log/receipts/<seq>`` checked with ``ecoledger verify-receipt``.
"""

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from api.client import Client, load_key
from api.demo import run_demo
from api.settings import load_settings
from api.storage import initialise
from ledger import merkle
from ledger.checkpoint import Checkpoint, parse_body
from ledger.encoding import b64decode, b64encode, canonical
from ledger.export import export_bundle, key_registry
from ledger.keys import SigningKey
from ledger.note import sign_note, split_note
from ledger.sources import DirectorySource, HttpSource
from ledger.store import LogStore
from settlement.audit import AUDITED_TABLES
from settlement.auditor import AuditReport, audit, audit_since
from support.databases import postgresql_schema
from support.server import LedgerServer, ecoledger_command, ledger_env

pytestmark = pytest.mark.slow

ORIGIN = "ecoledger.test/log"
TEST_DATABASE_URL = os.environ.get("ECOLEDGER_TEST_DATABASE_URL")
SERVED_SIZES = (1, 40, 100, 150)
"""Checkpoints served (and so stored, and exported) before the tests, besides the latest."""
TABLES = [table.__tablename__ for table in AUDITED_TABLES]
CLI_TIMEOUT = 180


# -- one ledger per engine ---------------------------------------------------------------------


@pytest.fixture(scope="module", params=[
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.skipif(
        not TEST_DATABASE_URL,
        reason="PostgreSQL not under test: set ECOLEDGER_TEST_DATABASE_URL "
               "(e.g. postgresql://postgres@127.0.0.1:5432/test)")),
])
def database_url(request, tmp_path_factory):
    """tests/conftest.py's ``database_url``, module-scoped: the demo ledger takes seconds to build,
    so each engine's is built once and shared by the module (every tamper is undone)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('audit-sqlite')}/ledger.db"
    else:
        with postgresql_schema(TEST_DATABASE_URL) as url:
            yield url


@dataclass
class Ledger:
    store: LogStore
    url: str
    home: Path
    env: dict[str, str]
    log_key: str
    size: int
    entries: list[dict[str, Any]] = field(repr=False)
    """The clean log's entries (as exported), to pick targets from."""

    @property
    def dialect(self) -> str:
        return self.store.engine.dialect.name

    def first(self, predicate: Callable[[dict], bool]) -> dict[str, Any]:
        return next(e for e in self.entries if predicate(e))

    def with_op(self, name: str, *, key: str | None = None) -> dict[str, Any]:
        """The first entry with an op ``name`` (that has field ``key``, if given)."""
        return self.first(lambda e: any(op.get("op") == name and (key is None or key in op)
                                        for op in e["command"]["ops"]))

    def sc_deposit_account(self) -> str:
        """An account sc-exchange has deposited CNY to (sc-exchange may deposit to it again)."""
        entry = self.first(lambda e: e["command"]["actor"] == "sc-exchange"
                           and any(op.get("op") == "cny.deposit" for op in e["command"]["ops"]))
        return next(op["account"] for op in entry["command"]["ops"] if op.get("op") == "cny.deposit")

    def token(self, name: str) -> str:
        return json.loads((self.home / "demo-tokens.json").read_text())["principals"][name]["token"]

    def client(self, base_url: str, name: str) -> Client:
        return Client(base_url, token=self.token(name), name=name,
                      key=load_key(self.home / "keys" / "principals" / f"{name}.pem", name))


@pytest.fixture(scope="module")
def ledger(database_url, tmp_path_factory) -> Iterator[Ledger]:
    home = tmp_path_factory.mktemp("ledger") / "home"
    env = ledger_env(home=home, database_url=database_url, origin=ORIGIN)
    store = initialise(load_settings(environ=env))
    try:
        run_demo(store, home, grace_days=10)
        size = store.size()
        for served in SERVED_SIZES:
            store.checkpoint(served)
        store.checkpoint()
        entries = [json.loads(stored.leaf) for start in range(0, size, 500) for stored in store.entries(start, 500)]
        with store.reader() as session:
            log_key = key_registry(session)["log"]
        yield Ledger(store=store, url=database_url, home=home, env=env, log_key=log_key, size=size, entries=entries)
    finally:
        store.engine.dispose()


def export(ledger: Ledger, directory: Path) -> Path:
    bundle = directory / f"bundle-{len(list(directory.glob('bundle-*')))}"
    export_bundle(ledger.store, bundle, AUDITED_TABLES)
    return bundle


def verify(bundle: Path, **options) -> AuditReport:
    options.setdefault("workers", 2)
    return audit(DirectorySource(bundle), **options)


def assert_names(report: AuditReport, *patterns: str) -> str:
    """The audit failed, and its error matches every regex pattern (e.g. the bad seq)."""
    assert not report.ok, f"the tamper went unnoticed: {report}"
    assert report.error, report
    for pattern in patterns:
        assert re.search(pattern, report.error), f"{pattern!r} not in the audit's error: {report.error!r}"
    return report.error


def seq_named(seq: int) -> str:
    """A regex: the error names ``seq`` as *the* entry (``entry 42:``), not another number."""
    return rf"\bentry {seq}\b(?!\.\.)"


# -- the database owner's tampering ----------------------------------------------------------------


class Owner:
    """Changes the ledger's database as its owner would, recording how to undo each change."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        self.undo: list[Callable[[], None]] = []

    @contextmanager
    def triggers_off(self, table: str = "log_entries") -> Iterator[Any]:
        """One transaction with ``table``'s append-only triggers out of the way, and back."""
        with self.ledger.store.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
                yield connection
                connection.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            else:
                triggers = connection.exec_driver_sql(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,)).all()
                assert triggers, f"{table} has no append-only triggers to get out of the way"
                for name, _ in triggers:
                    connection.exec_driver_sql(f'DROP TRIGGER "{name}"')
                yield connection
                for _, sql in triggers:
                    connection.exec_driver_sql(sql)

    def leaf(self, seq: int) -> bytes:
        with self.ledger.store.engine.connect() as connection:
            return bytes(connection.execute(text("SELECT leaf FROM log_entries WHERE seq = :seq"),
                                            {"seq": seq}).scalar_one())

    def set_leaf(self, seq: int, leaf: bytes) -> None:
        original = self.leaf(seq)
        with self.triggers_off() as connection:
            connection.execute(text("UPDATE log_entries SET leaf = :leaf WHERE seq = :seq"), {"leaf": leaf, "seq": seq})
        self.undo.append(lambda: self._write_leaf(seq, original))

    def _write_leaf(self, seq: int, leaf: bytes) -> None:
        with self.triggers_off() as connection:
            connection.execute(text("UPDATE log_entries SET leaf = :leaf WHERE seq = :seq"), {"leaf": leaf, "seq": seq})

    def delete(self, seq: int) -> None:
        with self.ledger.store.engine.connect() as connection:
            row = connection.execute(text("SELECT seq, actor, command_id, leaf FROM log_entries WHERE seq = :seq"),
                                     {"seq": seq}).one()._asdict()
        with self.triggers_off() as connection:
            connection.execute(text("DELETE FROM log_entries WHERE seq = :seq"), {"seq": seq})

        def reinsert() -> None:
            with self.ledger.store.engine.begin() as connection:
                connection.execute(text("INSERT INTO log_entries (seq, actor, command_id, leaf) "
                                        "VALUES (:seq, :actor, :command_id, :leaf)"), row)
        self.undo.append(reinsert)

    def update(self, table: str, where: dict[str, Any], values: dict[str, Any]) -> None:
        """Change one projection row (projections have no triggers: the owner just writes)."""
        condition = " AND ".join(f"{k} = :w_{k}" for k in where)
        params = {f"w_{k}": v for k, v in where.items()}
        with self.ledger.store.engine.begin() as connection:
            before = connection.execute(text(f"SELECT {', '.join(values)} FROM {table} WHERE {condition}"),
                                        params).one()._asdict()
            changed = connection.execute(text(f"UPDATE {table} SET {', '.join(f'{k} = :v_{k}' for k in values)} "
                                              f"WHERE {condition}"),
                                         {**params, **{f"v_{k}": v for k, v in values.items()}}).rowcount
        assert changed == 1, f"{table} {where}: {changed} rows changed"

        def restore() -> None:
            with self.ledger.store.engine.begin() as connection:
                connection.execute(text(f"UPDATE {table} SET {', '.join(f'{k} = :v_{k}' for k in before)} "
                                        f"WHERE {condition}"), {**params, **{f"v_{k}": v for k, v in before.items()}})
        self.undo.append(restore)

    def restore(self) -> None:
        while self.undo:
            self.undo.pop()()


@pytest.fixture
def owner(ledger):
    owner = Owner(ledger)
    yield owner
    owner.restore()
    # the append-only triggers are back: the owner's way round them left nothing open
    with pytest.raises(Exception, match="append-only"):
        with ledger.store.engine.begin() as connection:
            connection.execute(text("UPDATE log_entries SET leaf = leaf WHERE seq = 0"))


def flipped(data: bytes, position: int, mask: int = 0x01) -> bytes:
    return data[:position] + bytes([data[position] ^ mask]) + data[position + 1:]


# -- a clean ledger verifies ---------------------------------------------------------------------


def test_an_untampered_export_verifies(ledger, tmp_path):
    report = verify(export(ledger, tmp_path))
    assert report.ok, report.error
    assert report.error is None
    assert (report.origin, report.size, report.entries_checked) == (ORIGIN, ledger.size, ledger.size)
    assert report.checkpoints_checked == len(SERVED_SIZES) + 1
    assert report.tables_compared == TABLES and report.tables_not_available == []
    ops = {op["op"] for entry in ledger.entries for op in entry["command"]["ops"]}
    assert {"settlement.statement", "clearing.run", "trade", "trade.confirm", "retire", "surrender",
            "pledge", "account.freeze", "issue", "cny.deposit"} <= ops, "the demo log is not realistic enough"


def test_the_command_line_verifies_a_bundle_and_exits_0(ledger, tmp_path):
    bundle = export(ledger, tmp_path)
    result = ecoledger(ledger.env, "verify", str(bundle), "--json", "--key", ledger.log_key)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["error"] is None and report["entries_checked"] == ledger.size


# -- entries changed in the database -------------------------------------------------------------


def _quantity(entry: dict) -> bool:
    return any("quantity" in op for op in entry["command"]["ops"])


POSITIONS = [
    # (which entry, where in its leaf); every flip is XOR 0x01 of one byte. JCS sorts the keys
    # (command, key, seq, signature, time), so the last "key", "seq" or "time" is the entry's own.
    pytest.param(lambda L: L.first(_quantity), lambda leaf: leaf.index(b'"quantity":"') + 12,
                 id="a digit of a quantity"),
    pytest.param(lambda L: L.with_op("trade"), lambda leaf: leaf.index(b'"signature":"') + 30,
                 id="inside the signature"),
    pytest.param(lambda L: L.with_op("trade.confirm"), lambda leaf: leaf.rindex(b'"time":"') + 20,
                 id="inside the time"),
    pytest.param(lambda L: L.with_op("retire"), lambda leaf: leaf.index(b'"actor":"') + 9,
                 id="inside the actor"),
    pytest.param(lambda L: L.with_op("account.open", key="name"), lambda leaf: leaf.index(b'"name":"') + 9,
                 id="inside a Chinese name (a UTF-8 continuation byte)"),
    pytest.param(lambda L: L.entries[123], lambda leaf: leaf.rindex(b'"seq":') + 7,
                 id="the seq inside the entry"),
    pytest.param(lambda L: L.with_op("settlement.statement"), lambda leaf: leaf.index(b'"amount":"') + 10,
                 id="an amount of a settlement statement"),
    pytest.param(lambda L: L.with_op("clearing.run"), lambda leaf: leaf.rindex(b'"key":"') + 40,
                 id="the log key of a clearing run"),
    pytest.param(lambda L: L.entries[42], lambda leaf: 0, id="the first byte"),
    pytest.param(lambda L: L.entries[42], lambda leaf: len(leaf) - 1, id="the last byte"),
    pytest.param(lambda L: L.with_op("issue"), lambda leaf: leaf.index(b'"ops":'), id="a quote"),
]


@pytest.mark.parametrize("pick, where", POSITIONS)
def test_a_flipped_byte_of_a_stored_entry_is_named_by_its_seq(ledger, owner, tmp_path, pick, where):
    seq = pick(ledger)["seq"]
    leaf = owner.leaf(seq)
    position = where(leaf)
    owner.set_leaf(seq, flipped(leaf, position))
    assert owner.leaf(seq) != leaf
    assert_names(verify(export(ledger, tmp_path)), seq_named(seq))


def test_a_byte_that_is_no_longer_utf8_is_named_by_its_seq(ledger, owner, tmp_path):
    seq = ledger.with_op("trade")["seq"]
    leaf = owner.leaf(seq)
    owner.set_leaf(seq, flipped(leaf, leaf.index(b'"price":"') + 9, 0xFF))
    assert_names(verify(export(ledger, tmp_path)), seq_named(seq))


def test_of_two_flipped_entries_the_first_is_named(ledger, owner, tmp_path):
    early, late = ledger.with_op("issue")["seq"], ledger.with_op("clearing.run")["seq"]
    for seq in (late, early):
        leaf = owner.leaf(seq)
        owner.set_leaf(seq, flipped(leaf, leaf.rindex(b'"time":"') + 25))
    assert_names(verify(export(ledger, tmp_path)), seq_named(early))


def test_a_deleted_entry_is_named_as_missing(ledger, owner, tmp_path):
    seq = ledger.with_op("trade.confirm")["seq"]
    owner.delete(seq)
    assert_names(verify(export(ledger, tmp_path)), seq_named(seq), "missing", rf"seq {seq + 1}\b")


def test_two_swapped_entries_are_named_by_the_first(ledger, owner, tmp_path):
    first = ledger.with_op("settlement.statement")["seq"]
    second = first + 7
    a, b = owner.leaf(first), owner.leaf(second)
    owner.set_leaf(first, b)
    owner.set_leaf(second, a)
    assert_names(verify(export(ledger, tmp_path)), seq_named(first))


def test_two_adjacent_swapped_entries_are_named_by_the_first(ledger, owner, tmp_path):
    first = ledger.with_op("pledge")["seq"]
    a, b = owner.leaf(first), owner.leaf(first + 1)
    owner.set_leaf(first, b)
    owner.set_leaf(first + 1, a)
    assert_names(verify(export(ledger, tmp_path)), seq_named(first))


# -- projections changed in the database ---------------------------------------------------------


def _row(bundle: Path, table: str, predicate: Callable[[dict], bool]) -> dict:
    with (bundle / "projections" / f"{table}.jsonl").open(encoding="utf-8") as file:
        return next(row for row in map(json.loads, file) if predicate(row))


def test_a_changed_balance_total_is_named_by_table_and_row(ledger, owner, tmp_path):
    clean = export(ledger, tmp_path)
    row = _row(clean, "balances", lambda r: r["asset"] == "CNY" and r["total"] > 0)
    owner.update("balances", {"account": row["account"], "asset": "CNY"}, {"total": row["total"] + 100})
    assert_names(verify(export(ledger, tmp_path)), r"projection balances\b", re.escape(f"account={row['account']!r}"),
                 re.escape("asset='CNY'"), rf"'total': {row['total'] + 100}\b")


def test_a_changed_obligation_status_is_named_by_table_and_row(ledger, owner, tmp_path):
    clean = export(ledger, tmp_path)
    row = _row(clean, "obligations", lambda r: r["status"] == "settled")
    owner.update("obligations", {"id": row["id"]}, {"status": "open"})
    assert_names(verify(export(ledger, tmp_path)), r"projection obligations\b", re.escape(f"id={row['id']!r}"))


def test_a_changed_statement_body_is_named_by_table_and_row(ledger, owner, tmp_path):
    clean = export(ledger, tmp_path)
    row = _row(clean, "statements", lambda r: True)
    owner.update("statements", {"id": row["id"]}, {"body": row["body"].replace("0", "1", 1)})
    assert_names(verify(export(ledger, tmp_path)), r"projection statements\b", re.escape(f"id={row['id']!r}"))


def test_an_added_projection_row_is_named(ledger, tmp_path):
    bundle = export(ledger, tmp_path)
    with (bundle / "projections" / "holds.jsonl").open("a", encoding="utf-8") as file:
        file.write(json.dumps({"id": "ZZ-forged"}) + "\n")
    assert_names(verify(bundle), r"projection holds\b", re.escape("id='ZZ-forged'"))


# -- a bundle rewritten by someone who holds the log key ------------------------------------------


def rewrite_bundle(ledger: Ledger, bundle: Path, change: Callable[[dict], None]) -> None:
    """Rewrite ``bundle`` as a malicious exporter holding the log key would: each entry passes
    through ``change``; leaf hashes, the tree and the latest checkpoint are recomputed and
    re-signed, and the earlier checkpoints (which would betray the change) are dropped."""
    lines, frontier = [], []
    with (bundle / "entries.jsonl").open(encoding="utf-8") as file:
        for line in file:
            item = json.loads(line)
            change(item["entry"])
            digest = merkle.leaf_hash(canonical(item["entry"]))
            item["leaf_hash"] = b64encode(digest)
            _, frontier = merkle.extend(frontier, [(item["seq"], digest)])
            lines.append(json.dumps(item, ensure_ascii=False) + "\n")
    (bundle / "entries.jsonl").write_text("".join(lines), encoding="utf-8")
    root = merkle.fold([h for _, h in frontier])
    note = sign_note(Checkpoint(origin=ORIGIN, size=len(lines), root=root).body(),
                     ledger.store.keyring.signing_keys([ledger.log_key]))
    (bundle / "checkpoint.txt").write_text(note, encoding="utf-8")
    (bundle / "checkpoints.jsonl").write_text(json.dumps({"size": len(lines), "note": note}) + "\n", encoding="utf-8")


def forge(seq: int, change: Callable[[dict], None]) -> Callable[[dict], None]:
    """Change entry ``seq``'s command and sign it with a stranger's key, keeping the entry's key string."""
    def apply(entry: dict) -> None:
        if entry["seq"] == seq:
            change(entry["command"])
            entry["signature"] = b64encode(SigningKey.generate("forger").sign(canonical(entry["command"])))
    return apply


def test_the_rewritten_bundle_is_otherwise_consistent(ledger, tmp_path):
    """The rewriting itself is sound: an unchanged rewrite still verifies."""
    bundle = export(ledger, tmp_path)
    rewrite_bundle(ledger, bundle, lambda entry: None)
    report = verify(bundle)
    assert report.ok, report.error


def test_a_forged_signature_is_named_as_a_bad_signature(ledger, tmp_path):
    entry = ledger.with_op("account.open", key="name")
    actor = entry["command"]["actor"]

    def rename(command: dict) -> None:
        command["ops"][0]["name"] = "伪造的企业名称有限公司"

    bundle = export(ledger, tmp_path)
    rewrite_bundle(ledger, bundle, forge(entry["seq"], rename))
    for workers in (1, 2):
        assert_names(verify(bundle, workers=workers), seq_named(entry["seq"]), rf"bad signature by {actor}\b")


def test_a_forged_signature_of_the_ledger_itself_is_named(ledger, tmp_path):
    entry = ledger.with_op("clearing.run")

    def another_id(command: dict) -> None:
        command["id"] = command["id"] + "-forged"

    bundle = export(ledger, tmp_path)
    rewrite_bundle(ledger, bundle, forge(entry["seq"], another_id))
    assert_names(verify(bundle), seq_named(entry["seq"]), r"bad signature by ecoledger\.test/log")


def test_a_forged_deposit_is_named_as_a_bad_signature_not_where_the_money_runs_out(ledger, tmp_path):
    entry = ledger.first(lambda e: [op.get("op") for op in e["command"]["ops"]] == ["cny.deposit"])

    def smaller(command: dict) -> None:
        command["ops"][0]["amount"] = "1.00"

    bundle = export(ledger, tmp_path)
    rewrite_bundle(ledger, bundle, forge(entry["seq"], smaller))
    assert_names(verify(bundle), seq_named(entry["seq"]), "bad signature")


# -- checkpoints that fork history ----------------------------------------------------------------


def fork_note(ledger: Ledger, size: int) -> str:
    """A checkpoint signed with the log's own key over another root at an existing size."""
    root = hashlib.sha256(b"another history of %d entries" % size).digest()
    return sign_note(Checkpoint(origin=ORIGIN, size=size, root=root).body(),
                     ledger.store.keyring.signing_keys([ledger.log_key]))


def _checkpoint_lines(bundle: Path) -> list[dict]:
    return [json.loads(line) for line in (bundle / "checkpoints.jsonl").read_text(encoding="utf-8").splitlines()]


def _write_checkpoint_lines(bundle: Path, items: list[dict]) -> None:
    (bundle / "checkpoints.jsonl").write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items),
                                              encoding="utf-8")


def test_a_forking_checkpoint_in_the_bundle_is_named(ledger, tmp_path):
    bundle = export(ledger, tmp_path)
    items = [i if i["size"] != 100 else {"size": 100, "note": fork_note(ledger, 100)} for i in _checkpoint_lines(bundle)]
    _write_checkpoint_lines(bundle, items)
    assert_names(verify(bundle), r"checkpoint of size 100\b", r"root", r"entries 0\.\.99\b")


@pytest.mark.parametrize("fork_first", [
    pytest.param(True, id="fork before the genuine one"),
    pytest.param(False, id="fork after the genuine one"),
])
def test_two_checkpoints_of_one_size_with_different_roots_are_a_fork(ledger, tmp_path, fork_first):
    bundle = export(ledger, tmp_path)
    items = _checkpoint_lines(bundle)
    fork = {"size": 100, "note": fork_note(ledger, 100)}
    at = next(n for n, i in enumerate(items) if i["size"] == 100) + (0 if fork_first else 1)
    _write_checkpoint_lines(bundle, items[:at] + [fork] + items[at:])
    assert_names(verify(bundle), r"\b100\b", r"fork|root")


def test_a_second_latest_checkpoint_with_another_root_is_a_fork(ledger, tmp_path):
    bundle = export(ledger, tmp_path)
    _write_checkpoint_lines(bundle, [*_checkpoint_lines(bundle), {"size": ledger.size, "note": fork_note(ledger, ledger.size)}])
    assert_names(verify(bundle), rf"\b{ledger.size}\b", r"fork|root")


def test_a_kept_checkpoint_of_the_same_size_with_another_root_is_a_fork(ledger, tmp_path):
    bundle = export(ledger, tmp_path)
    report = audit_since(DirectorySource(bundle), fork_note(ledger, ledger.size), trusted_keys=[ledger.log_key])
    assert_names(report, rf"two different trees of size {ledger.size}\b", "forked")


def test_a_kept_forking_checkpoint_of_a_smaller_size_is_caught_by_the_bundles_entries(ledger, tmp_path):
    """A bundle serves no consistency proofs; the tree of its entries must have the kept root."""
    bundle = export(ledger, tmp_path)
    report = audit_since(DirectorySource(bundle), fork_note(ledger, 100), trusted_keys=[ledger.log_key])
    assert_names(report, r"kept checkpoint of size 100 is not the tree of the source's entries 0\.\.99", "forked")
    genuine = ledger.store.checkpoint(100)
    report = audit_since(DirectorySource(bundle), genuine, trusted_keys=[ledger.log_key], workers=2)
    assert report.ok, report.error
    assert report.entries_checked == ledger.size - 100


def test_a_kept_checkpoint_signed_by_another_key_is_refused(ledger, tmp_path):
    bundle = export(ledger, tmp_path)
    stranger = SigningKey.generate(ORIGIN)
    kept = sign_note(Checkpoint(origin=ORIGIN, size=100, root=ledger.store.root(100)).body(), [stranger])
    report = audit_since(DirectorySource(bundle), kept, trusted_keys=[ledger.log_key])
    assert_names(report, r"^the kept checkpoint: ", "not signed by any known key")


# -- damaged bundle files -----------------------------------------------------------------------------


def _truncate_mid_line(path: Path, line: int) -> None:
    """Cut ``path`` in the middle of its ``line``-th line (1-based)."""
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    kept = b"".join(lines[:line - 1]) + lines[line - 1][: len(lines[line - 1]) // 2]
    path.write_bytes(kept)


def test_entries_truncated_mid_line_are_named_by_file_and_line(ledger, tmp_path):
    bundle = export(ledger, tmp_path)
    _truncate_mid_line(bundle / "entries.jsonl", 151)
    assert_names(verify(bundle), r"entries\.jsonl line 151\b")


def test_checkpoints_truncated_mid_line_are_named_by_file_and_line(ledger, tmp_path):
    bundle = export(ledger, tmp_path)
    _truncate_mid_line(bundle / "checkpoints.jsonl", 3)
    assert_names(verify(bundle), r"checkpoints\.jsonl line 3\b")


def test_a_projection_truncated_mid_line_is_named_by_file_and_line(ledger, tmp_path):
    bundle = export(ledger, tmp_path)
    _truncate_mid_line(bundle / "projections" / "balances.jsonl", 5)
    assert_names(verify(bundle), r"projections/balances\.jsonl line 5\b")


def test_entries_cut_at_a_line_end_are_fewer_than_the_checkpoint(ledger, tmp_path):
    bundle = export(ledger, tmp_path)
    path = bundle / "entries.jsonl"
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-3]))
    assert_names(verify(bundle), rf"size {ledger.size}\b", rf"\b{ledger.size - 3}\b")


def test_a_missing_entries_file_is_named(ledger, tmp_path):
    bundle = export(ledger, tmp_path)
    (bundle / "entries.jsonl").unlink()
    assert_names(verify(bundle), r"no entries\.jsonl")


def test_a_missing_projection_file_is_named(ledger, tmp_path):
    bundle = export(ledger, tmp_path)
    (bundle / "projections" / "balances.jsonl").unlink()
    assert_names(verify(bundle), r"projections/balances\.jsonl|balances")


@pytest.mark.parametrize("name", ["checkpoint.txt", "keys.json"])
def test_a_missing_checkpoint_or_keys_file_is_a_report_not_an_exception(ledger, tmp_path, name):
    bundle = export(ledger, tmp_path)
    (bundle / name).unlink()
    assert_names(verify(bundle), re.escape(name))


def test_the_command_line_names_the_bad_seq_and_exits_1(ledger, owner, tmp_path):
    seq = ledger.with_op("surrender")["seq"]
    leaf = owner.leaf(seq)
    owner.set_leaf(seq, flipped(leaf, leaf.index(b'"quantity":"') + 12))
    bundle = export(ledger, tmp_path)
    owner.restore()
    result = ecoledger(ledger.env, "verify", str(bundle), "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False and re.search(seq_named(seq), report["error"]), report
    human = ecoledger(ledger.env, "verify", str(bundle))
    assert human.returncode == 1
    assert human.stdout.startswith("NOT INTACT: ") and re.search(rf"problem: +entry {seq}:", human.stdout), human.stdout


def test_the_ledger_is_clean_again(ledger, tmp_path):
    """Every tamper above was undone: the shared ledger still verifies."""
    report = verify(export(ledger, tmp_path))
    assert report.ok, report.error


# -- through a running server ---------------------------------------------------------------------


def ecoledger(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*ecoledger_command(), *args], env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT)


@pytest.fixture(scope="module")
def server(ledger, database_url, tmp_path_factory):
    with LedgerServer.start(home=ledger.home, database_url=database_url, origin=ORIGIN, timeout=120) as server:
        yield server
        print(server.output())


def test_the_command_line_verifies_a_server_and_exits_0(ledger, server):
    result = ecoledger(server.env, "verify", server.url, "--json", "--key", ledger.log_key)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["source"] == server.url
    assert report["entries_checked"] == report["size"] >= ledger.size
    assert report["checkpoints_checked"] >= len(SERVED_SIZES) + 1
    assert report["tables_compared"] == [] and report["tables_not_available"] == TABLES


def test_with_an_auditors_token_the_projections_are_compared(ledger, server):
    result = ecoledger(server.env, "verify", server.url, "--json", "--token", ledger.token("auditor"))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["tables_compared"] == TABLES and report["tables_not_available"] == []


def test_a_token_without_the_auditor_role_is_refused_the_projections(ledger, server):
    report = audit(HttpSource(server.url, token=ledger.token("sc-exchange")), workers=1)
    assert_names(report, r"/v1/export/projections/\w+: HTTP 403")


def test_a_flipped_byte_is_named_over_http(ledger, server, owner):
    seq = ledger.with_op("issue")["seq"]
    leaf = owner.leaf(seq)
    owner.set_leaf(seq, flipped(leaf, leaf.index(b'"quantity":"') + 12))
    assert_names(audit(HttpSource(server.url), trusted_keys=[ledger.log_key], workers=2), seq_named(seq))


def test_a_changed_balance_is_named_over_http(ledger, server, owner, tmp_path):
    clean = export(ledger, tmp_path)
    row = _row(clean, "balances", lambda r: r["asset"] != "CNY" and r["total"] > 0)
    owner.update("balances", {"account": row["account"], "asset": row["asset"]}, {"frozen": row["frozen"] + 1})
    report = audit(HttpSource(server.url, token=ledger.token("auditor")), workers=1)
    assert_names(report, r"projection balances\b", re.escape(f"account={row['account']!r}"),
                 re.escape(f"asset={row['asset']!r}"))


def test_a_kept_forking_checkpoint_is_caught_by_the_servers_consistency_proof(ledger, server):
    report = audit_since(HttpSource(server.url), fork_note(ledger, 100), trusted_keys=[ledger.log_key])
    assert_names(report, r"does not lead to the root of the tree of size 100\b")


def test_since_a_kept_checkpoint_only_the_new_entries_are_checked(ledger, server, tmp_path):
    kept = server.get("/v1/log/checkpoint").text
    kept_size = parse_body(split_note(kept)[0]).size
    (tmp_path / "kept.txt").write_text(kept, encoding="utf-8")
    exchange = ledger.client(server.url, "sc-exchange")
    account = ledger.sc_deposit_account()
    for n in range(3):
        exchange.submit([{"op": "cny.deposit", "account": account, "amount": f"{n + 1}.00"}])
    result = ecoledger(server.env, "verify", server.url, "--since", str(tmp_path / "kept.txt"), "--json",
                       "--key", ledger.log_key)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["since"] == kept_size
    assert report["size"] == kept_size + 3 and report["entries_checked"] == 3
    human = ecoledger(server.env, "verify", server.url, "--since", str(tmp_path / "kept.txt"))
    assert human.returncode == 0 and human.stdout.startswith("INTACT: "), human.stdout + human.stderr
    assert f"since:        size {kept_size}" in human.stdout


def test_since_a_checkpoint_kept_from_a_forked_server_exits_1(ledger, server, tmp_path):
    (tmp_path / "kept.txt").write_text(fork_note(ledger, 40), encoding="utf-8")
    result = ecoledger(server.env, "verify", server.url, "--since", str(tmp_path / "kept.txt"), "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "tree of size 40" in json.loads(result.stdout)["error"]


def test_a_log_that_grows_during_the_audit_is_still_intact(ledger, server):
    exchange = ledger.client(server.url, "sc-exchange")
    account = ledger.sc_deposit_account()

    class Growing(HttpSource):
        def checkpoint(self) -> str:
            note = super().checkpoint()
            exchange.submit([{"op": "cny.deposit", "account": account, "amount": "0.01"}])  # someone else's command
            return note

    report = audit(Growing(server.url), trusted_keys=[ledger.log_key], workers=1)
    assert report.ok, report.error


def _receipt_seqs(ledger: Ledger) -> list[int]:
    return [0, ledger.with_op("settlement.statement")["seq"], ledger.with_op("clearing.run")["seq"], ledger.size - 1]


def test_receipts_from_the_server_verify_offline(ledger, server, tmp_path):
    for seq in _receipt_seqs(ledger):
        path = tmp_path / f"receipt-{seq}.txt"
        path.write_text(server.get(f"/v1/log/receipts/{seq}").text, encoding="utf-8")
        result = ecoledger(server.env, "verify-receipt", str(path), "--key", ledger.log_key)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith(f"VALID: entry {seq} ("), result.stdout
        assert f"is in {ORIGIN} at tree size " in result.stdout


def _tampered_receipts(receipt: str) -> dict[str, str]:
    head, _, note = receipt.partition("\n\n")
    lines = head.split("\n")
    extra = b64decode(lines[1][len("extra "):])
    quantity = extra.index(b'"quantity":"') + 12
    index = int(lines[2][len("index "):])
    return {
        "a flipped proof hash": "\n".join([*lines[:3], b64encode(flipped(b64decode(lines[3]), 0)), *lines[4:]]) + "\n\n" + note,
        "another index": "\n".join([lines[0], lines[1], f"index {index + 1}", *lines[3:]]) + "\n\n" + note,
        "a changed quantity in the entry": "\n".join([lines[0], "extra " + b64encode(flipped(extra, quantity)),
                                                      *lines[2:]]) + "\n\n" + note,
        "a dropped proof hash": "\n".join(lines[:-1]) + "\n\n" + note,
        "another root in the checkpoint": head + "\n\n" + _with_root(note, hashlib.sha256(b"another").digest()),
    }


def _with_root(note: str, root: bytes) -> str:
    body, separator, signatures = note.partition("\n\n")
    lines = body.split("\n")
    lines[2] = b64encode(root)
    return "\n".join(lines) + separator + signatures


def test_tampered_receipts_exit_1(ledger, server, tmp_path):
    seq = ledger.with_op("issue")["seq"]
    receipt = server.get(f"/v1/log/receipts/{seq}").text
    for name, tampered in _tampered_receipts(receipt).items():
        path = tmp_path / "tampered.txt"
        path.write_text(tampered, encoding="utf-8")
        result = ecoledger(server.env, "verify-receipt", str(path), "--key", ledger.log_key)
        assert result.returncode == 1, f"{name}: {result.stdout}{result.stderr}"
        assert result.stderr.startswith("NOT VALID: "), f"{name}: {result.stderr}"
        assert result.stdout == "", f"{name}: {result.stdout}"
    path = tmp_path / "genuine.txt"
    path.write_text(receipt, encoding="utf-8")
    stranger = str(SigningKey.generate(ORIGIN).verifier)
    result = ecoledger(server.env, "verify-receipt", str(path), "--key", stranger)
    assert result.returncode == 1 and "not signed by any known key" in result.stderr, result.stderr

"""settlement.auditor: ``audit`` and ``audit_since`` on small logs built in process (SQLite, fast).

The log is real — principals, accounts, an asset issued and traded within and across the
provinces, an obligation and its clearing run, a log-key rotation — appended through the
contracts as ``POST /v1/commands`` does. The auditor reads it through :class:`MemorySource`, an
in-memory source with the shapes of ``DirectorySource``/``HttpSource`` (specs/log.md §4) that
also serves consistency proofs computed from the leaf hashes it serves (with the naive tree of
tests/support/naive.py), so tests can tamper with any part of what a server would serve.

Every failure must be ``ok=False`` with an error naming the seq, checkpoint, table or row;
``workers=1`` and ``workers=2`` must give the same verdict (CHUNK is made small so the process
pool really runs). ``xfail(strict=True)`` tests state the right behaviour of a known bug.
"""

import copy
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import settlement.auditor as auditor_module
from api import create_app
from api.storage import get_store, initialise
from contracts.clearing import open_obligations
from ledger import merkle
from ledger.checkpoint import Checkpoint, parse_body
from ledger.encoding import b64decode, b64encode, canonical
from ledger.entry import format_time
from ledger.export import export_bundle, key_registry, rows
from ledger.keys import SigningKey
from ledger.note import sign_note, split_note
from ledger.sources import DirectorySource
from ledger.store import LogStore
from settlement.audit import AUDITED_TABLES
from settlement.auditor import AuditReport, audit, audit_since
from settlement.clearing import clear
from support.naive import complete_subtrees, root as naive_root
from support.registry import Registry, enterprise

ORIGIN = "ecoledger.test/log"
OTHER_ORIGIN = "other.test/log"
TABLES = [table.__tablename__ for table in AUDITED_TABLES]
EMPTY_ROOT = hashlib.sha256(b"").digest()

# -- a small real log ------------------------------------------------------------------------------


class Log:
    """A ledger with an app, its registry of principals, and helpers to grow it."""

    def __init__(self, tmp_path: Path):
        self.app = create_app({"home": tmp_path / "home", "database_url": f"sqlite:///{tmp_path}/ledger.db",
                               "origin": ORIGIN})
        initialise(self.app.config["ECOLEDGER"])
        self.registry = Registry(self.app)
        self.A, self.B, self.C = enterprise("SC", 1), enterprise("SC", 2), enterprise("CQ", 3)
        self.deposits = 0

    @property
    def store(self) -> LogStore:
        return self.app.extensions["ecoledger.store"]

    def build(self) -> "Log":
        r = self.registry
        r.principal("admin", "admin")
        r.principal("sc-sthj", "issuer", "SC", ["PDR"], display_name="四川省生态环境厅")
        r.principal("sc-exchange", "operator", "SC", display_name="四川联合环境交易所")
        r.principal("cq-exchange", "operator", "CQ", display_name="重庆联合产权交易所")
        r.command("sc-exchange", {"op": "account.open", "account": self.A, "name": "成都甲化工有限公司"},
                  {"op": "account.open", "account": self.B, "name": "成都乙电力有限公司"})
        r.command("cq-exchange", {"op": "account.open", "account": self.C, "name": "重庆丙钢铁有限公司"})
        r.command("sc-exchange", {"op": "cny.deposit", "account": self.B, "amount": "10000.00"})
        r.command("cq-exchange", {"op": "cny.deposit", "account": self.C, "amount": "5000.00"})
        asset = r.result("sc-sthj", {"op": "asset.define", "instrument": "PDR", "attributes": {
            "pollutant": "COD", "valid_from": "2025-01-01", "valid_until": "2029-12-31"}})["asset"]
        r.command("sc-sthj", {"op": "issue", "asset": asset, "to": self.A, "quantity": "100.000"})
        r.command("sc-exchange", {"op": "trade", "asset": asset, "quantity": "10.5", "price": "123.45",
                                  "seller": self.A, "buyer": self.B})
        cross = r.result("sc-exchange", {"op": "trade", "asset": asset, "quantity": "20", "price": "100",
                                         "seller": self.A, "buyer": self.C})["trade"]
        r.command("cq-exchange", {"op": "trade.confirm", "trade": cross})
        cutoff = format_time(datetime.now(UTC))
        with self.app.app_context():
            with get_store().writer() as writer:
                assert open_obligations(writer.session, "trade", cutoff)
                assert clear(writer, "trade", cutoff) is not None
        self.store.rotate_key()  # a log.key_add: both keys sign from here on
        self.checkpoint()
        return self

    def deposit(self, n: int = 1) -> None:
        for _ in range(n):
            self.deposits += 1
            self.registry.command("sc-exchange", {"op": "cny.deposit", "account": self.B,
                                                  "amount": f"{self.deposits}.00"})

    def checkpoint(self, size: int | None = None) -> str:
        return self.store.checkpoint(size)

    @property
    def log_keys(self) -> list[str]:
        with self.store.reader() as session:
            registry = key_registry(session)
        return [registry["log"], *registry["previous"]]

    def signers(self) -> list[SigningKey]:
        return self.store.keyring.signing_keys(self.log_keys)

    def sign(self, size: int, root: bytes, origin: str = ORIGIN, keys: list[SigningKey] | None = None) -> str:
        return sign_note(Checkpoint(origin=origin, size=size, root=root).body(), keys or self.signers())

    def seq_of(self, predicate: Callable[[dict], bool]) -> int:
        for start in range(0, self.store.size(), 1000):
            for stored in self.store.entries(start, 1000):
                if predicate(stored.entry):
                    return stored.seq
        raise LookupError("no such entry")

    def seq_of_op(self, name: str) -> int:
        return self.seq_of(lambda e: any(op.get("op") == name for op in e["command"]["ops"]))


class MemorySource:
    """What a server serves, held in memory so a test can change any of it."""

    def __init__(self, *, items: list[dict], latest: str, notes: list[str], keys: dict[str, Any],
                 projections: dict[str, list[dict]] | None, proofs: bool = True):
        self.items, self.latest, self.notes, self.registry = items, latest, notes, keys
        self.projections, self.proofs = projections, proofs
        self.tree = [b64decode(item["leaf_hash"]) for item in items]
        """The leaf hashes the source's tree (and so its proofs) is made of, whatever it serves."""

    @classmethod
    def of(cls, log: Log, *, projections: bool = True) -> "MemorySource":
        store = log.store
        latest = store.checkpoint()
        size = parse_body(split_note(latest)[0]).size
        items = [{"seq": e.seq, "leaf_hash": b64encode(e.leaf_hash), "entry": e.entry}
                 for start in range(0, size, 1000) for e in store.entries(start, 1000)]
        notes = [c.note for c in store.checkpoints(0, 10_000) if c.size <= size]
        with store.reader() as session:
            keys = key_registry(session)
            tables = ({t.__tablename__: [json.loads(json.dumps(row)) for row in rows(session, t)]
                       for t in AUDITED_TABLES} if projections else None)
        return cls(items=items, latest=latest, notes=notes, keys=keys, projections=tables)

    def __str__(self) -> str:
        return "memory"

    def checkpoint(self) -> str:
        return self.latest

    def checkpoints(self) -> Iterator[str]:
        yield from self.notes

    def keys(self) -> dict[str, Any]:
        return copy.deepcopy(self.registry)

    def entries(self, start: int = 0) -> Iterator[dict]:
        for item in self.items:
            if item["seq"] >= start:
                yield copy.deepcopy(item)

    def projection(self, table: str):
        if self.projections is None:
            return None
        return iter(copy.deepcopy(self.projections[table]))

    def consistency_proof(self, first: int, second: int) -> list[bytes] | None:
        if not self.proofs:
            return None
        nodes = complete_subtrees(self.tree[:second])
        return merkle.consistency_proof(first, second, lambda wanted: {n: nodes[n] for n in wanted})

    # -- a malicious server's rewriting --------------------------------------------------------------

    def rewrite(self, log: Log, seq: int, change: Callable[[dict], None], *, resign: bool = True,
                signing_key: SigningKey | None = None) -> None:
        """Change entry ``seq`` with ``change(entry)``; if ``signing_key`` is given, re-sign its
        command with it (the entry keeps whatever key string ``change`` leaves). With ``resign``,
        recompute every leaf hash and sign a new latest checkpoint with the log's keys, dropping
        the earlier checkpoints — the best a forger holding the log key can do."""
        entry = self.items[seq]["entry"]
        change(entry)
        if signing_key is not None:
            entry["signature"] = b64encode(signing_key.sign(canonical(entry["command"])))
        if resign:
            for item in self.items:
                item["leaf_hash"] = b64encode(merkle.leaf_hash(canonical(item["entry"])))
            self.tree = [b64decode(i["leaf_hash"]) for i in self.items]
            self.latest = log.sign(len(self.items), naive_root(self.tree))
            self.notes = [self.latest]


@pytest.fixture
def log(tmp_path) -> Iterator[Log]:
    log = Log(tmp_path).build()
    yield log
    log.store.engine.dispose()


@pytest.fixture
def small_chunks(monkeypatch):
    """Signature chunks of 3 entries, so a small log really goes through the process pool."""
    monkeypatch.setattr(auditor_module, "CHUNK", 3)


def verdict(report: AuditReport) -> dict[str, Any]:
    """What must not depend on the number of workers. (How far the reading got when it failed
    does: with one worker, a bad signature stops it at its chunk; with a pool, the reading runs on.
    A passing audit's counts must agree too.)"""
    keep = ("ok", "error", "origin", "size", "since")
    if report.ok:
        keep += ("entries_checked", "checkpoints_checked", "tables_compared", "tables_not_available")
    return {k: v for k, v in report.as_dict().items() if k in keep}


def both_ways(run: Callable[[int], AuditReport]) -> AuditReport:
    """Run with workers=1 and workers=2; the verdicts must agree; return the second."""
    one, two = run(1), run(2)
    assert verdict(one) == verdict(two), f"workers=1: {one}\nworkers=2: {two}"
    return two


def failed(report: AuditReport, *patterns: str) -> str:
    assert not report.ok, f"not noticed: {report}"
    for pattern in patterns:
        assert re.search(pattern, report.error or ""), f"{pattern!r} not in {report.error!r}"
    return report.error


# -- audit(): the whole log ------------------------------------------------------------------------------


def test_a_small_log_verifies_with_every_check(log, small_chunks):
    size = log.store.size()
    report = both_ways(lambda workers: audit(MemorySource.of(log), workers=workers))
    assert report.ok and report.error is None, report
    assert (report.origin, report.size, report.entries_checked) == (ORIGIN, size, size)
    assert report.checkpoints_checked == 1 and report.tables_compared == TABLES and not report.tables_not_available
    assert report.since is None


def test_an_exported_bundle_verifies(log, tmp_path):
    log.checkpoint(5)
    bundle = tmp_path / "bundle"
    export_bundle(log.store, bundle, AUDITED_TABLES)
    report = audit(DirectorySource(bundle), trusted_keys=log.log_keys[:1], workers=1)
    assert report.ok, report.error
    assert report.checkpoints_checked == 2 and report.tables_compared == TABLES


def test_every_served_checkpoint_is_checked(log):
    for size in (1, 2, 3, 7, 8, 9):
        log.checkpoint(size)
    log.deposit(2)
    report = audit(MemorySource.of(log), workers=1)
    assert report.ok, report.error
    assert report.checkpoints_checked == 8  # six served, the one build() served, the latest


def test_without_projections_the_log_is_checked_and_the_tables_listed(log):
    report = audit(MemorySource.of(log, projections=False), workers=1)
    assert report.ok and report.tables_compared == [] and report.tables_not_available == TABLES


def test_the_genesis_alone_verifies(tmp_path):
    log = Log(tmp_path)
    report = audit(MemorySource.of(log), workers=1)
    log.store.engine.dispose()
    assert report.ok, report.error
    assert (report.size, report.entries_checked, report.checkpoints_checked) == (1, 1, 1)


def _empty_source(key: SigningKey, root: bytes = EMPTY_ROOT) -> MemorySource:
    note = sign_note(Checkpoint(origin=ORIGIN, size=0, root=root).body(), [key])
    return MemorySource(items=[], latest=note, notes=[note], keys={"log": str(key.verifier), "previous": []},
                        projections={t: [] for t in TABLES})


def test_an_empty_log_verifies():
    key = SigningKey.generate(ORIGIN)
    report = audit(_empty_source(key), workers=1)
    assert report.ok, report.error
    assert (report.size, report.entries_checked, report.checkpoints_checked) == (0, 0, 1)


def test_a_checkpoint_of_size_0_must_have_the_empty_trees_root():
    key = SigningKey.generate(ORIGIN)
    failed(audit(_empty_source(key, root=hashlib.sha256(b"x").digest()), workers=1),
           "^the checkpoint of size 0 does not have the empty tree's root$")


def test_pinned_keys_are_the_only_ones_trusted(log):
    stranger = str(SigningKey.generate(ORIGIN).verifier)
    failed(audit(MemorySource.of(log), trusted_keys=[stranger], workers=1), "not signed by any known key")
    report = audit(MemorySource.of(log), trusted_keys=[log.log_keys[-1]], workers=1)  # the first key alone
    assert report.ok, report.error


def test_a_flipped_entry_is_named(log, small_chunks):
    source = MemorySource.of(log)
    seq = log.seq_of_op("trade")
    source.items[seq]["entry"]["command"]["ops"][0]["quantity"] = "10.6"
    report = both_ways(lambda w: audit(copy.deepcopy(source), workers=w))
    failed(report, rf"^entry {seq}: its bytes do not hash to its leaf hash$")
    assert report.entries_checked == seq


def test_a_served_seq_that_disagrees_with_the_entry_is_named(log):
    source = MemorySource.of(log)
    source.items[6]["entry"]["seq"] = 7
    failed(audit(source, workers=1), r"^entry 6: ")


def test_a_missing_entry_is_named(log, small_chunks):
    source = MemorySource.of(log)
    del source.items[9]
    report = both_ways(lambda w: audit(copy.deepcopy(source), workers=w))
    failed(report, r"^entry 9: missing; the source gives seq 10 next$")


def test_entries_short_of_the_checkpoint_are_named(log):
    source = MemorySource.of(log)
    size = len(source.items)
    del source.items[-2:]
    failed(audit(source, workers=1), rf"^the checkpoint of size {size} is beyond the {size - 2} entries given$")


def test_a_forged_signature_is_named(log, small_chunks):
    source = MemorySource.of(log)
    seq = log.seq_of_op("account.open")

    def rename(entry: dict) -> None:
        entry["command"]["ops"][0]["name"] = "伪造有限公司"

    source.rewrite(log, seq, rename, signing_key=SigningKey.generate("sc-exchange"))
    report = both_ways(lambda w: audit(copy.deepcopy(source), workers=w))
    failed(report, rf"^entry {seq}: bad signature by sc-exchange$")


def test_a_key_that_was_not_the_actors_is_named(log):
    """A command validly signed — but by a key never registered for its actor."""
    source = MemorySource.of(log)
    seq = log.seq_of_op("issue")
    intruder = SigningKey.generate("sc-sthj")

    def take_over(entry: dict) -> None:
        entry["key"] = str(intruder.verifier)

    source.rewrite(log, seq, take_over, signing_key=intruder)
    failed(audit(source, workers=1), rf"^entry {seq}: sc-sthj was not sc-sthj's key at seq {seq}$")


def test_a_ledger_entry_signed_by_a_key_before_it_was_added_is_named(log):
    """The rotated-in log key (log.key_add) may sign only after the entry that adds it."""
    source = MemorySource.of(log)
    seq = log.seq_of_op("clearing.run")  # before the rotation
    newer = log.store.keyring.signing_keys([log.log_keys[0]])[0]

    def newer_key(entry: dict) -> None:
        entry["key"] = str(newer.verifier)

    source.rewrite(log, seq, newer_key, signing_key=newer)
    failed(audit(source, workers=1), rf"^entry {seq}: ecoledger\.test/log was not ledger's key at seq {seq}$")


def test_a_forged_clearing_run_is_recomputed_and_named(log):
    source = MemorySource.of(log)
    seq = log.seq_of_op("clearing.run")
    ledger_key = log.store.keyring.signing_keys([log.log_keys[-1]])[0]

    def double(entry: dict) -> None:
        for payment in entry["command"]["ops"][0]["payments"]:
            payment["amount"] *= 2  # integers of the smallest unit

    source.rewrite(log, seq, double, signing_key=ledger_key)  # properly signed by the log key
    failed(audit(source, workers=1), rf"^entry {seq}: clearing run of trade: the netting is not of its obligations$")


def test_a_changed_projection_row_is_named(log):
    source = MemorySource.of(log)
    row = next(r for r in source.projections["balances"] if r["asset"] == "CNY" and r["account"] == log.B)
    row["total"] += 1
    failed(audit(source, workers=1), r"^projection balances: ", re.escape(f"account={log.B!r}"), re.escape("asset='CNY'"))


def test_a_missing_and_an_extra_projection_row_are_named(log):
    source = MemorySource.of(log)
    gone = source.projections["trades"].pop(0)
    failed(audit(source, workers=1), r"^projection trades: ", re.escape(f"id={gone['id']!r}"), "None")
    source = MemorySource.of(log)
    source.projections["accounts"].append({"id": "ZZ:ENT:forged"})
    failed(audit(source, workers=1), r"^projection accounts: ", re.escape("id='ZZ:ENT:forged'"))


def test_a_checkpoint_that_forks_history_is_named(log):
    log.checkpoint(6)
    source = MemorySource.of(log)
    source.notes = [log.sign(6, hashlib.sha256(b"fork").digest()) if parse_body(split_note(n)[0]).size == 6 else n
                    for n in source.notes]
    failed(audit(source, workers=1), r"^checkpoint of size 6: its root is not the tree of entries 0\.\.5: "
                                     r"history was rewritten at or before seq 5$")


def test_two_checkpoints_of_one_size_with_different_roots_are_a_fork(log):
    log.checkpoint(6)
    source = MemorySource.of(log)
    source.notes = [log.sign(6, hashlib.sha256(b"fork").digest()), *source.notes]
    failed(audit(source, workers=1), r"\b6\b")


def test_a_checkpoint_of_another_log_is_named(log):
    other = SigningKey.generate(OTHER_ORIGIN)
    source = MemorySource.of(log)
    source.notes = [sign_note(Checkpoint(origin=OTHER_ORIGIN, size=4, root=log.store.root(4)).body(), [other]),
                    *source.notes]
    failed(audit(source, trusted_keys=[*log.log_keys, str(other.verifier)], workers=1),
           r"^checkpoint of size 4 is of another log \(other\.test/log\)$")


def test_a_forged_command_is_named_as_a_bad_signature_even_if_a_later_entry_then_fails(log):
    source = MemorySource.of(log)
    seq = log.seq_of(lambda e: e["command"]["ops"][0].get("op") == "cny.deposit" and e["command"]["actor"] == "sc-exchange")

    def less(entry: dict) -> None:
        entry["command"]["ops"][0]["amount"] = "1.00"  # B can no longer pay for its trade

    source.rewrite(log, seq, less, signing_key=SigningKey.generate("sc-exchange"))
    failed(audit(source, workers=1), rf"^entry {seq}: bad signature")


def test_entries_beyond_the_audited_checkpoint_are_not_the_audits(log):
    source = MemorySource.of(log, projections=False)
    log.deposit(1)
    source.items = MemorySource.of(log).items  # the log grew while the auditor read it
    report = audit(source, workers=1)
    assert report.ok, report.error


# -- audit_since(): what was added since a kept checkpoint ------------------------------------------------


def test_since_the_same_checkpoint_nothing_is_checked_and_all_is_well(log, small_chunks):
    kept = log.checkpoint()
    report = both_ways(lambda w: audit_since(MemorySource.of(log), kept, workers=w))
    assert report.ok, report.error
    assert (report.since, report.size, report.entries_checked, report.checkpoints_checked) == (
        log.store.size(), log.store.size(), 0, 2)


def test_since_a_checkpoint_only_the_new_entries_are_checked(log, small_chunks):
    kept = log.checkpoint()
    old = log.store.size()
    log.deposit(7)
    report = both_ways(lambda w: audit_since(MemorySource.of(log), kept, workers=w))
    assert report.ok, report.error
    assert (report.since, report.size, report.entries_checked) == (old, old + 7, 7)
    assert report.tables_compared == []


@pytest.mark.parametrize("kept_size", [1, 2, 3, 4, 8, 13])
def test_since_any_earlier_size(log, kept_size):
    kept = log.checkpoint(kept_size)
    log.deposit(3)
    report = audit_since(MemorySource.of(log), kept, workers=1)
    assert report.ok, report.error
    assert report.entries_checked == log.store.size() - kept_size


def test_the_same_size_with_another_root_is_a_fork(log, small_chunks):
    size = log.store.size()
    fork = log.sign(size, hashlib.sha256(b"fork").digest())
    report = both_ways(lambda w: audit_since(MemorySource.of(log), fork, workers=w))
    failed(report, rf"^two different trees of size {size}: the log forked$")


def test_a_log_that_shrank_is_named(log):
    kept = log.checkpoint()
    size = log.store.size()
    source = MemorySource.of(log)
    source.items = source.items[:-2]
    source.latest = log.sign(size - 2, log.store.root(size - 2))
    failed(audit_since(source, kept, workers=1), rf"^the log shrank from {size} to {size - 2} entries$")


def test_a_kept_checkpoint_of_size_0_proves_nothing(log):
    kept = log.sign(0, EMPTY_ROOT)
    failed(audit_since(MemorySource.of(log), kept, workers=1), "^a checkpoint of size 0 proves nothing: run a full audit$")


def test_a_kept_checkpoint_that_forks_at_an_earlier_size_is_named(log, small_chunks):
    fork = log.sign(6, hashlib.sha256(b"fork").digest())
    report = both_ways(lambda w: audit_since(MemorySource.of(log), fork, workers=w))
    failed(report, r"^the proof does not lead to the root of the tree of size 6$")


def test_a_served_proof_that_does_not_hold_is_named(log):
    kept = log.checkpoint(5)
    source = MemorySource.of(log)
    good = source.consistency_proof
    source.consistency_proof = lambda first, second: [hashlib.sha256(b"x").digest(), *good(first, second)[1:]]
    failed(audit_since(source, kept, workers=1), r"^the proof does not lead to the root of the tree of size \d+$")


def test_a_changed_new_entry_is_named_by_its_bad_signature(log, small_chunks):
    kept = log.checkpoint()
    old = log.store.size()
    log.deposit(6)
    source = MemorySource.of(log)
    source.items[old + 2]["entry"]["command"]["ops"][0]["amount"] = "999.00"
    report = both_ways(lambda w: audit_since(copy.deepcopy(source), kept, workers=w))
    failed(report, rf"^entry {old + 2}: (bad signature by sc-exchange|its bytes do not hash to its leaf hash)$")


def test_a_new_entry_with_another_time_is_caught_by_the_tree(log, small_chunks):
    """The time is the ledger's, outside the signed command; a server that also serves the changed
    entry's leaf hash (but cannot change the tree its checkpoint signs) is caught by the proof."""
    kept = log.checkpoint()
    old = log.store.size()
    log.deposit(6)
    source = MemorySource.of(log)
    changed = source.items[old + 2]
    changed["entry"]["time"] = "2020-01-01T00:00:00.000000Z"
    changed["leaf_hash"] = b64encode(merkle.leaf_hash(canonical(changed["entry"])))
    report = both_ways(lambda w: audit_since(copy.deepcopy(source), kept, workers=w))
    error = failed(report, r"^entries \d+\.\.\d+ are not the ones the checkpoint of size \d+ commits to$")
    start, end = map(int, re.match(r"entries (\d+)\.\.(\d+)", error).groups())
    assert start <= old + 2 <= end


def test_a_new_entry_with_another_time_is_named_by_its_seq(log):
    """The served leaf hash is the stored one; the entry beside it is not: that names the seq."""
    kept = log.checkpoint()
    old = log.store.size()
    log.deposit(6)
    source = MemorySource.of(log)
    source.items[old + 2]["entry"]["time"] = "2020-01-01T00:00:00.000000Z"
    failed(audit_since(source, kept, workers=1), rf"^entry {old + 2}\b")


def test_a_forged_new_entry_is_named_as_a_bad_signature(log, small_chunks):
    kept = log.checkpoint()
    old = log.store.size()
    log.deposit(6)
    source = MemorySource.of(log)

    def more(entry: dict) -> None:
        entry["command"]["ops"][0]["amount"] = "999999.00"

    source.rewrite(log, old + 4, more, signing_key=SigningKey.generate("sc-exchange"))
    report = both_ways(lambda w: audit_since(copy.deepcopy(source), kept, workers=w))
    failed(report, rf"^entry {old + 4}: bad signature by sc-exchange$")


def test_a_new_entry_signed_outside_its_keys_period_is_named(log):
    kept = log.checkpoint()
    old = log.store.size()
    log.deposit(3)
    source = MemorySource.of(log)
    for period in source.registry["principals"]["sc-exchange"]:
        period["until_seq"] = old + 1  # the source says the key was replaced at old + 1
    failed(audit_since(source, kept, workers=1), rf"^entry {old + 1}: sc-exchange was not sc-exchange's key at seq {old + 1}$")


def test_missing_new_entries_are_named(log):
    kept = log.checkpoint()
    old = log.store.size()
    log.deposit(4)
    source = MemorySource.of(log)
    source.items = source.items[:-2]
    failed(audit_since(source, kept, workers=1), rf"^entries {old + 2}\.\.{old + 3} are missing$")


def test_new_entries_out_of_order_are_named(log):
    kept = log.checkpoint()
    old = log.store.size()
    log.deposit(4)
    source = MemorySource.of(log)
    source.items[old + 1], source.items[old + 2] = source.items[old + 2], source.items[old + 1]
    failed(audit_since(source, kept, workers=1), rf"^entry {old + 1}: missing or out of order$")


def test_a_kept_checkpoint_of_another_log_is_named(log):
    other = SigningKey.generate(OTHER_ORIGIN)
    kept = sign_note(Checkpoint(origin=OTHER_ORIGIN, size=3, root=log.store.root(3)).body(), [other])
    failed(audit_since(MemorySource.of(log), kept, trusted_keys=[*log.log_keys, str(other.verifier)], workers=1),
           r"^the kept checkpoint is of log other\.test/log, the source's of ecoledger\.test/log$")


def test_a_kept_checkpoint_not_signed_by_a_trusted_key_is_named(log):
    kept = log.sign(3, log.store.root(3), keys=[SigningKey.generate(ORIGIN)])
    failed(audit_since(MemorySource.of(log), kept, workers=1),
           r"^the kept checkpoint: the note is not signed by any known key \(signers: ecoledger\.test/log\)$")


def test_a_malformed_kept_checkpoint_is_named(log):
    failed(audit_since(MemorySource.of(log), "not a checkpoint", workers=1), r"^the kept checkpoint: malformed note")


def test_a_bundle_proves_consistency_by_its_own_entries(log, tmp_path, small_chunks):
    """A bundle serves no consistency proofs, but it holds every entry: the tree is recomputed."""
    kept = log.checkpoint(5)
    bundle = tmp_path / "bundle"
    export_bundle(log.store, bundle, AUDITED_TABLES)
    size = log.store.size()
    report = both_ways(lambda w: audit_since(DirectorySource(bundle), kept, workers=w))
    assert report.ok, report.error
    assert (report.since, report.size, report.entries_checked) == (5, size, size - 5)
    forked = log.sign(5, hashlib.sha256(b"another history").digest())
    failed(audit_since(DirectorySource(bundle), forked, workers=1),
           r"^the kept checkpoint of size 5 is not the tree of the source's entries 0\.\.4: the log forked")
    assert audit_since(DirectorySource(bundle), log.checkpoint(), workers=1).ok  # the same size needs no proof

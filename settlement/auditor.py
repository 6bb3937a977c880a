"""The auditor's verification of a whole log, or of what it added since a kept checkpoint.

:func:`audit` reads a source (an export bundle or a server) once, streaming, and checks:

1. every checkpoint's signatures (by the log keys the auditor trusts) and root;
2. every entry: seqs 0, 1, 2… without a gap, its leaf hash recomputed from its JSON, the Merkle
   tree over all of them, whose root at each checkpoint's size must be that checkpoint's root —
   so all checkpoints are consistent with each other, being prefixes of the same entries;
3. every actor's signature (in a process pool over every core) and that the key was the actor's
   at that seq;
4. a replay from entry 0 with the contracts, recomputing every statement and clearing run, and
   a row-by-row comparison of every projection with the source's.

Memory stays flat: entries stream through; the tree is kept as its O(log n) frontier.
"""

import multiprocessing
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any

from sqlmodel import Session

from ledger import merkle
from ledger.database import create_database_engine, upgrade
from ledger.encoding import b64decode
from ledger.errors import VerificationError
from ledger.export import rows
from ledger.merkle import consistency_ranges, fold
from ledger.replay import replay
from ledger.verify import Checkpoint, leaf_hash, open_checkpoint, verify_consistency, verify_entry_signature
from settlement.audit import AUDITED_TABLES, apply_audited

CHUNK = 512
Progress = Callable[[str, int, int], None]
"""(stage, done, total)"""


@dataclass
class AuditReport:
    source: str
    origin: str | None = None
    size: int = 0
    entries_checked: int = 0
    checkpoints_checked: int = 0
    tables_compared: list[str] = field(default_factory=list)
    tables_not_available: list[str] = field(default_factory=list)
    since: int | None = None
    ok: bool = False
    error: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_chunk(entries: list[dict]) -> str | None:
    """Verify a chunk of entries' signatures; the first failure's message, or None."""
    for entry in entries:
        try:
            verify_entry_signature(entry)
        except VerificationError as error:
            return str(error)
    return None


class _Signatures:
    """Entries' signatures checked on other cores while the main process replays."""

    def __init__(self, workers: int):
        self.workers = workers
        self.pool = (ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
                     if workers > 1 else None)
        self.pending: deque[Future] = deque()
        self.chunk: list[dict] = []

    def add(self, entry: dict) -> None:
        self.chunk.append(entry)
        if len(self.chunk) >= CHUNK:
            self._submit()

    def _submit(self) -> None:
        chunk, self.chunk = self.chunk, []
        if not chunk:
            return
        if self.pool is None:
            self._raise(_check_chunk(chunk))
            return
        self.pending.append(self.pool.submit(_check_chunk, chunk))
        while len(self.pending) > 4 * self.workers:  # bounded memory
            self._raise(self.pending.popleft().result())

    def finish(self) -> None:
        if not self.pending:  # a few entries only: not worth starting processes
            self._raise(_check_chunk(self.chunk))
            self.chunk = []
        self._submit()
        while self.pending:
            self._raise(self.pending.popleft().result())

    def close(self) -> None:
        if self.pool:
            self.pool.shutdown(cancel_futures=True)

    @staticmethod
    def _raise(failure: str | None) -> None:
        if failure:
            raise VerificationError(failure)


def _trusted(source, trusted_keys: list[str] | None) -> list[str]:
    if trusted_keys:
        return trusted_keys
    keys = source.keys()
    return [k for k in [keys.get("log"), *keys.get("previous", [])] if k]


def _checked_entries(source, checkpoints: list[Checkpoint], report: AuditReport, signatures: _Signatures,
                     progress: Progress | None, total: int) -> Iterator[dict]:
    """The entries, each checked against its leaf hash and the tree before it is yielded."""
    frontier: list = []
    pending = deque(checkpoints)
    while pending and pending[0].size == 0:
        if pending.popleft().root != merkle.EMPTY_ROOT:
            raise VerificationError("the checkpoint of size 0 does not have the empty tree's root")
        report.checkpoints_checked += 1
    for seq, item in enumerate(source.entries()):
        if item.get("seq") != seq:
            raise VerificationError(f"entry {seq}: missing; the source gives seq {item.get('seq')!r} next")
        entry = item.get("entry")
        digest = leaf_hash(entry)
        if b64decode(item.get("leaf_hash", "")) != digest or entry.get("seq") != seq:
            raise VerificationError(f"entry {seq}: its bytes do not hash to its leaf hash")
        _, frontier = merkle.extend(frontier, [(seq, digest)])
        while pending and pending[0].size == seq + 1:
            checkpoint = pending.popleft()
            if fold([h for _, h in frontier]) != checkpoint.root:
                raise VerificationError(f"checkpoint of size {checkpoint.size}: its root is not the tree of "
                                        f"entries 0..{seq}: history was rewritten at or before seq {seq}")
            report.checkpoints_checked += 1
        signatures.add(entry)
        report.entries_checked = seq + 1
        if progress and seq % 1000 == 0:
            progress("entries", seq, total)
        yield entry
    if pending:
        raise VerificationError(f"the checkpoint of size {pending[0].size} is beyond the "
                                f"{report.entries_checked} entries given")


def _compare(source, engine, report: AuditReport) -> None:
    with Session(engine) as session:
        for table in AUDITED_TABLES:
            name = table.__tablename__
            given = source.projection(name)
            if given is None:
                report.tables_not_available.append(name)
                continue
            keys = [c.name for c in table.__table__.columns if c.primary_key]
            for want, got in zip_longest(rows(session, table), given):
                if want != got:
                    where = want or got
                    raise VerificationError(f"projection {name}: row {', '.join(f'{k}={where[k]!r}' for k in keys)} "
                                            f"differs from the replay of the log: {got!r}, the log says {want!r}")
            report.tables_compared.append(name)


def audit(source, *, trusted_keys: list[str] | None = None, workers: int | None = None,
          progress: Progress | None = None) -> AuditReport:
    """Verify everything the source holds; the report says whether it is intact, and if not, why."""
    report = AuditReport(source=str(source))
    started = time.monotonic()
    signatures = _Signatures(workers or os.cpu_count() or 1)
    try:
        keys = _trusted(source, trusted_keys)
        latest = open_checkpoint(source.checkpoint(), keys)
        report.origin, report.size = latest.origin, latest.size
        served = sorted({cp.size: cp for cp in (open_checkpoint(n, keys) for n in source.checkpoints())}.values(),
                        key=lambda cp: cp.size)
        checkpoints = sorted({cp.size: cp for cp in [*served, latest]}.values(), key=lambda cp: cp.size)
        for checkpoint in checkpoints:
            if checkpoint.origin != latest.origin:
                raise VerificationError(f"checkpoint of size {checkpoint.size} is of another log ({checkpoint.origin})")
        with tempfile.TemporaryDirectory(prefix="ecoledger-audit-") as scratch:
            engine = create_database_engine(f"sqlite:///{Path(scratch) / 'replay.db'}")
            upgrade(engine)
            entries = _checked_entries(source, checkpoints, report, signatures, progress, latest.size)
            replay(entries, engine=engine, apply=apply_audited, check_signatures=False)
            signatures.finish()
            if report.entries_checked != latest.size:
                raise VerificationError(f"the latest checkpoint covers {latest.size} entries but "
                                        f"{report.entries_checked} were given")
            if progress:
                progress("projections", 0, len(AUDITED_TABLES))
            _compare(source, engine, report)
            engine.dispose()
        report.ok = True
    except VerificationError as error:
        report.error = str(error)
    finally:
        signatures.close()
        report.seconds = round(time.monotonic() - started, 3)
    return report


def audit_since(source, kept_checkpoint: str, *, trusted_keys: list[str] | None = None,
                workers: int | None = None) -> AuditReport:
    """Prove the source's latest checkpoint consistent with one kept from an earlier visit, and
    check only the entries added since: each belongs where the consistency proof says, and each
    is signed by a key its actor held at that seq."""
    report = AuditReport(source=str(source))
    started = time.monotonic()
    signatures = _Signatures(workers or os.cpu_count() or 1)
    try:
        keys = _trusted(source, trusted_keys)
        try:
            old = open_checkpoint(kept_checkpoint, keys)
        except VerificationError as error:
            raise VerificationError(f"the kept checkpoint: {error}") from None
        new = open_checkpoint(source.checkpoint(), keys)
        report.origin, report.size, report.since = new.origin, new.size, old.size
        if new.origin != old.origin:
            raise VerificationError(f"the kept checkpoint is of log {old.origin}, the source's of {new.origin}")
        if new.size < old.size:
            raise VerificationError(f"the log shrank from {old.size} to {new.size} entries")
        if new.size == old.size:
            if new.root != old.root:
                raise VerificationError(f"two different trees of size {new.size}: the log forked")
            report.checkpoints_checked, report.ok = 2, True
            return report
        if old.size == 0:
            raise VerificationError("a checkpoint of size 0 proves nothing: run a full audit")
        proof = source.consistency_proof(old.size, new.size)
        if proof is None:
            raise VerificationError("this source serves no consistency proofs: run a full audit of it")
        verify_consistency(old.size, new.size, proof, old.root, new.root)
        report.checkpoints_checked = 2
        registry = source.keys()
        periods = {**registry.get("principals", {}), "ledger": registry.get("log_history", [])}
        leaves: list[bytes] = []
        for seq, item in enumerate(source.entries(old.size), start=old.size):
            if seq >= new.size:
                break
            entry = item.get("entry")
            if item.get("seq") != seq or not isinstance(entry, dict) or entry.get("seq") != seq:
                raise VerificationError(f"entry {seq}: missing or out of order")
            leaves.append(leaf_hash(entry))
            _check_key_period(entry, periods)
            signatures.add(entry)
            report.entries_checked += 1
        signatures.finish()
        if len(leaves) != new.size - old.size:
            raise VerificationError(f"entries {old.size + len(leaves)}..{new.size - 1} are missing")
        for (start, end), expected in zip(consistency_ranges(old.size, new.size), proof):
            if start >= old.size and fold_range(leaves, start - old.size, end - old.size) != expected:
                raise VerificationError(f"entries {start}..{end - 1} are not the ones the checkpoint of size "
                                        f"{new.size} commits to")
        report.ok = True
    except VerificationError as error:
        report.error = str(error)
    finally:
        signatures.close()
        report.seconds = round(time.monotonic() - started, 3)
    return report


def fold_range(leaves: list[bytes], start: int, end: int) -> bytes:
    """The RFC 9162 hash of leaves[start:end] (an aligned range, as proofs use)."""
    if end - start == 1:
        return leaves[start]
    k = merkle.split_point(end - start)
    return merkle.node_hash(fold_range(leaves, start, start + k), fold_range(leaves, start + k, end))


def _check_key_period(entry: dict, periods: dict[str, list[dict]]) -> None:
    """The entry's key was its actor's at its seq, by the key registry the source serves (for the
    ledger's own entries, a log key between its addition and its retirement)."""
    actor, seq = entry["command"].get("actor"), entry["seq"]
    for period in periods.get(actor, []):
        if actor == "ledger":
            valid = period["from_seq"] < seq and (period["until_seq"] is None or seq <= period["until_seq"])
        else:
            valid = period["from_seq"] <= seq and (period["until_seq"] is None or seq < period["until_seq"])
        if period["key"] == entry["key"] and valid:
            return
    raise VerificationError(f"entry {seq}: {entry['key'].split('+')[0]} was not {actor}'s key at seq {seq}")

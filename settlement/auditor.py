"""The auditor's verification of a whole log, or of what it added since a kept checkpoint.

:func:`audit` reads a source (an export bundle or a server) once, streaming, and checks:

1. every checkpoint's signatures (by the log keys the auditor trusts), one root per size (two
   roots of one size are a fork), and one log;
2. every entry: seqs 0, 1, 2… without a gap, and the Merkle tree over their leaf hashes, whose
   root at each checkpoint's size must be that checkpoint's root — so all checkpoints are
   consistent with each other, being prefixes of the same entries;
3. every leaf hash recomputed from its entry's JSON, and every actor's signature, in a process
   pool over every core; and that the key was the actor's at that seq;
4. a replay from entry 0 with the contracts, recomputing every statement and clearing run, and
   a row-by-row comparison of every projection with the source's.

The first problem by seq is the one reported. Memory stays flat: entries stream through, the
tree is kept as its O(log n) frontier, and at most a few chunks of entries wait for the pool.
"""

import multiprocessing
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import islice, zip_longest
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


def _check_chunk(entries: list[tuple[dict, bytes]]) -> tuple[int, str] | None:
    """Check a chunk of (entry, served leaf hash): each entry's JCS bytes hash to its leaf hash,
    and its signature verifies. The first failure's seq and message, or None."""
    for entry, served in entries:
        seq = entry["seq"]
        try:
            digest = leaf_hash(entry)
        except VerificationError as error:
            return seq, f"entry {seq}: {error}"
        if digest != served:
            return seq, f"entry {seq}: its bytes do not hash to its leaf hash"
        try:
            verify_entry_signature(entry)
        except VerificationError as error:
            return seq, str(error)
    return None


class _Signatures:
    """Entries' leaf hashes and signatures checked on other cores while the main process builds
    the tree from the served leaf hashes and replays.

    Entries are added in seq order. The first failure is kept, not raised: whoever checks entries
    in other ways compares it with their own first problem, and the one at the earlier seq is the
    audit's finding (so a forged command is named as forged, and not where its effects make a
    later entry fail to apply).
    """

    def __init__(self, workers: int):
        self.workers = workers
        self.pool = (ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
                     if workers > 1 else None)
        self.pending: deque[Future] = deque()
        self.chunk: list[tuple[dict, bytes]] = []
        self.failure: VerificationError | None = None

    def add(self, entry: dict, served_leaf_hash: bytes) -> None:
        if self.failure is not None:
            return  # later entries cannot hold the first failure
        self.chunk.append((entry, served_leaf_hash))
        if len(self.chunk) >= CHUNK:
            self._submit()

    def _submit(self) -> None:
        chunk, self.chunk = self.chunk, []
        if not chunk:
            return
        if self.pool is None:
            self._record(_check_chunk(chunk))
            return
        self.pending.append(self.pool.submit(_check_chunk, chunk))
        while len(self.pending) > 4 * self.workers:  # bounded memory
            self._record(self.pending.popleft().result())

    def _record(self, failure: tuple[int, str] | None) -> None:
        if failure is not None and self.failure is None:
            self.failure = VerificationError(failure[1], seq=failure[0])

    def first_failure(self) -> VerificationError | None:
        """Check whatever is left; the first bad signature, or None."""
        if not self.pending:  # a few entries only: not worth starting processes
            chunk, self.chunk = self.chunk, []
            self._record(_check_chunk(chunk) if chunk else None)
        self._submit()
        while self.pending:
            self._record(self.pending.popleft().result())
        return self.failure

    def earlier(self, error: VerificationError | None) -> VerificationError | None:
        """Of ``error`` and the first bad signature, the one at the earlier seq."""
        failure = self.first_failure()
        if failure is not None and (error is None or error.seq is None or failure.seq <= error.seq):
            return failure
        return error

    def close(self) -> None:
        if self.pool:
            self.pool.shutdown(cancel_futures=True)


def _trusted(source, trusted_keys: list[str] | None) -> list[str]:
    if trusted_keys:
        return trusted_keys
    keys = source.keys()
    return [k for k in [keys.get("log"), *keys.get("previous", [])] if k]


def _checkpoints(source, keys: list[str], latest: Checkpoint) -> list[Checkpoint]:
    """Every checkpoint the source has served, and the latest: verified, of one log, one per size
    (two of one size with different roots are proof that the log forked), smallest first."""
    by_size: dict[int, Checkpoint] = {}
    for checkpoint in [*(open_checkpoint(note, keys) for note in source.checkpoints()), latest]:
        if checkpoint.origin != latest.origin:
            raise VerificationError(f"checkpoint of size {checkpoint.size} is of another log ({checkpoint.origin})")
        seen = by_size.setdefault(checkpoint.size, checkpoint)
        if seen.root != checkpoint.root:
            raise VerificationError(f"two checkpoints of size {checkpoint.size} with different roots: "
                                    f"the log forked")
    return sorted(by_size.values(), key=lambda cp: cp.size)


def _checked_entries(source, checkpoints: list[Checkpoint], report: AuditReport, signatures: _Signatures,
                     progress: Progress | None) -> Iterator[dict]:
    """The entries the latest checkpoint covers, each checked against its leaf hash and the tree
    before it is yielded. ``report.entries_checked`` counts those checked so far."""
    total = checkpoints[-1].size
    frontier: list = []
    pending = deque(checkpoints)
    while pending and pending[0].size == 0:
        if pending.popleft().root != merkle.EMPTY_ROOT:
            raise VerificationError("the checkpoint of size 0 does not have the empty tree's root")
        report.checkpoints_checked += 1
    for seq, item in enumerate(islice(source.entries(), total)):
        report.entries_checked = seq
        if not isinstance(item, dict) or item.get("seq") != seq:
            found = item.get("seq") if isinstance(item, dict) else item
            raise VerificationError(f"entry {seq}: missing; the source gives seq {found!r} next", seq=seq)
        entry = item.get("entry")
        try:
            served = b64decode(item.get("leaf_hash", ""))
        except ValueError as error:
            raise VerificationError(f"entry {seq}: its leaf hash: {error}", seq=seq) from None
        if not isinstance(entry, dict):
            raise VerificationError(f"entry {seq}: not a JSON object", seq=seq)
        if entry.get("seq") != seq:
            raise VerificationError(f"entry {seq}: the entry says it is seq {entry.get('seq')!r}", seq=seq)
        signatures.add(entry, served)  # the served hash is checked against the entry there
        _, frontier = merkle.extend(frontier, [(seq, served)])
        while pending and pending[0].size == seq + 1:
            checkpoint = pending.popleft()
            if fold([h for _, h in frontier]) != checkpoint.root:
                raise VerificationError(f"checkpoint of size {checkpoint.size}: its root is not the tree of "
                                        f"entries 0..{seq}: history was rewritten at or before seq {seq}", seq=seq)
            report.checkpoints_checked += 1
        if progress and seq % 1000 == 0:
            progress("entries", seq, total)
        yield entry
        report.entries_checked = seq + 1
    if report.entries_checked != total:
        raise VerificationError(f"the checkpoint of size {total} is beyond the {report.entries_checked} "
                                f"entries given")


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
    """Verify everything the source holds up to its latest checkpoint; the report says whether
    it is intact, and if not, the first thing that is wrong."""
    report = AuditReport(source=str(source))
    started = time.monotonic()
    signatures = _Signatures(workers or os.cpu_count() or 1)
    try:
        keys = _trusted(source, trusted_keys)
        latest = open_checkpoint(source.checkpoint(), keys)
        report.origin, report.size = latest.origin, latest.size
        checkpoints = _checkpoints(source, keys, latest)
        with tempfile.TemporaryDirectory(prefix="ecoledger-audit-") as scratch:
            engine = create_database_engine(f"sqlite:///{Path(scratch) / 'replay.db'}")
            try:
                upgrade(engine)
                _replay(source, engine, checkpoints, report, signatures, progress)
                if progress:
                    progress("projections", 0, len(AUDITED_TABLES))
                _compare(source, engine, report)
            finally:
                engine.dispose()
        report.ok = True
    except VerificationError as error:
        report.error = str(error)
    finally:
        signatures.close()
        report.seconds = round(time.monotonic() - started, 3)
    return report


def _replay(source, engine, checkpoints: list[Checkpoint], report: AuditReport, signatures: _Signatures,
            progress: Progress | None) -> None:
    """Check and replay every entry; of two problems, the one at the earlier seq is raised."""
    try:
        entries = _checked_entries(source, checkpoints, report, signatures, progress)
        replay(entries, engine=engine, apply=apply_audited, check_signatures=False)
        error = None
    except VerificationError as raised:
        error = raised
    error = signatures.earlier(error)
    if error is not None:
        if error.seq is not None:
            report.entries_checked = error.seq
        raise error


def audit_since(source, kept_checkpoint: str, *, trusted_keys: list[str] | None = None,
                workers: int | None = None) -> AuditReport:
    """Prove the source's latest checkpoint consistent with one kept from an earlier visit, and
    check only the entries added since: each is where the new checkpoint's tree says, and each
    is signed by a key its actor held at that seq.

    A server proves consistency with an RFC 9162 proof. A bundle serves none, but it holds every
    entry: the tree is recomputed from them and must have the kept root at the kept size."""
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
        registry = source.keys()
        periods = {**registry.get("principals", {}), "ledger": registry.get("log_history", [])}
        proof = source.consistency_proof(old.size, new.size)
        try:
            if proof is None:
                _check_whole_tree(source, old, new, report, signatures, periods)
            else:
                verify_consistency(old.size, new.size, proof, old.root, new.root)
                _check_new_leaves(source, old, new, proof, report, signatures, periods)
            error = None
        except VerificationError as raised:
            error = raised
        error = signatures.earlier(error)
        if error is not None:
            raise error
        report.checkpoints_checked = 2
        report.ok = True
    except VerificationError as error:
        report.error = str(error)
    finally:
        signatures.close()
        report.seconds = round(time.monotonic() - started, 3)
    return report


def _new_entries(source, start: int, stop: int, report: AuditReport, signatures: _Signatures,
                 periods: dict[str, list[dict]]) -> Iterator[tuple[int, bytes]]:
    """Seqs ``start``..``stop - 1`` and their leaf hashes, recomputed; entries from ``since`` on
    (``report.since``) are also checked for their key's period and signature."""
    seq = start
    for item in islice(source.entries(start), stop - start):
        entry = item.get("entry") if isinstance(item, dict) else None
        if not isinstance(entry, dict) or item.get("seq") != seq or entry.get("seq") != seq:
            raise VerificationError(f"entry {seq}: missing or out of order", seq=seq)
        try:
            digest = leaf_hash(entry)
            served = b64decode(item.get("leaf_hash", ""))
        except (VerificationError, ValueError) as error:
            raise VerificationError(f"entry {seq}: {error}", seq=seq) from None
        if served != digest:
            raise VerificationError(f"entry {seq}: its bytes do not hash to its leaf hash", seq=seq)
        if seq >= report.since:
            _check_key_period(entry, periods)
            signatures.add(entry, digest)
            report.entries_checked += 1
        yield seq, digest
        seq += 1
    if seq != stop:
        raise VerificationError(f"entries {seq}..{stop - 1} are missing", seq=seq)


def _check_new_leaves(source, old: Checkpoint, new: Checkpoint, proof: list[bytes], report: AuditReport,
                      signatures: _Signatures, periods: dict[str, list[dict]]) -> None:
    """The new entries are the leaves the (verified) consistency proof commits to."""
    leaves = [digest for _, digest in _new_entries(source, old.size, new.size, report, signatures, periods)]
    for (start, end), expected in zip(consistency_ranges(old.size, new.size), proof):
        if start >= old.size and fold_range(leaves, start - old.size, end - old.size) != expected:
            raise VerificationError(f"entries {start}..{end - 1} are not the ones the checkpoint of size "
                                    f"{new.size} commits to", seq=start)


def _check_whole_tree(source, old: Checkpoint, new: Checkpoint, report: AuditReport, signatures: _Signatures,
                      periods: dict[str, list[dict]]) -> None:
    """Recompute the tree from every entry: the kept root at the kept size, the new at the new."""
    frontier: list = []
    for seq, digest in _new_entries(source, 0, new.size, report, signatures, periods):
        _, frontier = merkle.extend(frontier, [(seq, digest)])
        if seq + 1 == old.size and fold([h for _, h in frontier]) != old.root:
            raise VerificationError(f"the kept checkpoint of size {old.size} is not the tree of the source's "
                                    f"entries 0..{old.size - 1}: the log forked or was rewritten", seq=old.size - 1)
    if fold([h for _, h in frontier]) != new.root:
        raise VerificationError(f"checkpoint of size {new.size}: its root is not the tree of entries "
                                f"0..{new.size - 1}")


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
    raise VerificationError(f"entry {seq}: {entry['key'].split('+')[0]} was not {actor}'s key at seq {seq}",
                            seq=seq)

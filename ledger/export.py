"""Export bundles: everything an auditor needs, self-contained, in stable line formats.

A bundle is a directory::

    manifest.json          format, origin, size, the checkpoint, and each file's SHA-256
    checkpoint.txt         the signed checkpoint of exactly the exported entries
    entries.jsonl          {"seq", "leaf_hash", "entry"} per line, entry 0 first (as GET /v1/log/entries)
    checkpoints.jsonl      {"size", "note"} per line: every checkpoint the log has served, up to the size
    keys.json              the log's and the principals' verifier keys (as GET /v1/log/keys)
    projections/<table>.jsonl   the server's projections, one JSON row per line in primary-key order

Everything is read in one snapshot of the database and streamed to disk, so memory stays flat
however long the log is. The auditor's tool recomputes all of it from ``entries.jsonl``.
"""

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlmodel import Session, SQLModel

from ledger.encoding import b64encode
from ledger.logkeys import all_keys
from ledger.models import LogEntry, StoredCheckpoint, TreeNode
from ledger.projections import PrincipalKey
from ledger.store import LogStore

FORMAT = "ecoledger-bundle/1"
PAGE = 2000


@dataclass(frozen=True, slots=True)
class ExportSummary:
    directory: Path
    size: int
    checkpoints: int
    rows: dict[str, int]


class _HashingWriter:
    """Writes lines to a file and hashes them on the way."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file: IO[bytes] = path.open("wb")
        self.digest = hashlib.sha256()
        self.lines = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.digest.update(data)
        self.lines += 1

    def close(self) -> str:
        self.file.close()
        return self.digest.hexdigest()


def rows(session: Session, table: type[SQLModel]) -> Iterator[dict[str, Any]]:
    """A table's rows in primary-key order, as JSON-ready dicts, fetched in pages."""
    columns = list(table.__table__.columns)
    keys = [c for c in columns if c.primary_key]
    query = select(*columns).order_by(*keys).execution_options(yield_per=PAGE)
    for row in session.execute(query):
        yield {c.name: (b64encode(bytes(v)) if isinstance(v, bytes | memoryview) else v)
               for c, v in zip(columns, row)}


def key_registry(session: Session) -> dict[str, Any]:
    """The log's and principals' verifier keys with their validity: GET /v1/log/keys."""
    log_keys = all_keys(session)
    active = [k.verifier for k in log_keys if k.retired_seq is None]
    principals: dict[str, list] = {}
    for key in session.exec(select(PrincipalKey).order_by(PrincipalKey.from_seq)).scalars():
        principals.setdefault(key.principal, []).append(
            {"key": key.verifier, "from_seq": key.from_seq, "until_seq": key.until_seq})
    return {"log": active[-1] if active else None,
            "previous": [k.verifier for k in reversed(log_keys) if active and k.verifier != active[-1]],
            "log_history": [{"key": k.verifier, "from_seq": k.added_seq, "until_seq": k.retired_seq}
                            for k in log_keys],
            "principals": principals}


def _snapshot(store: LogStore) -> Session:
    """A read session that sees one consistent state of the whole database."""
    session = Session(store.engine)
    if store.engine.dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    return session


def export_bundle(store: LogStore, directory: Path, tables: Iterable[type[SQLModel]]) -> ExportSummary:
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise ValueError(f"{directory} is not empty")
    digests: dict[str, str] = {}
    counts: dict[str, int] = {}
    with _snapshot(store) as session:
        size = store._size(session)
        checkpoint = store.checkpoint(size)
        (directory / "checkpoint.txt").write_text(checkpoint, encoding="utf-8")

        out = _HashingWriter(directory / "entries.jsonl")
        for start in range(0, size, PAGE):
            page = session.exec(select(LogEntry.seq, LogEntry.leaf, TreeNode.hash)
                                .join(TreeNode, TreeNode.id == LogEntry.seq)
                                .where(LogEntry.seq >= start, LogEntry.seq < min(start + PAGE, size))
                                .order_by(LogEntry.seq)).all()
            for seq, leaf, leaf_hash in page:
                out.write(b'{"seq":%d,"leaf_hash":"%s","entry":%s}\n'
                          % (seq, b64encode(bytes(leaf_hash)).encode(), bytes(leaf)))
        digests["entries.jsonl"], counts["entries.jsonl"] = out.close(), out.lines

        out = _HashingWriter(directory / "checkpoints.jsonl")
        earlier = session.exec(select(StoredCheckpoint.size, StoredCheckpoint.note)
                               .where(StoredCheckpoint.size < size).order_by(StoredCheckpoint.size)).all()
        for stored_size, note in [*earlier, (size, checkpoint)]:
            out.write(json.dumps({"size": stored_size, "note": note}, ensure_ascii=False).encode() + b"\n")
        digests["checkpoints.jsonl"], counts["checkpoints.jsonl"] = out.close(), out.lines

        (directory / "keys.json").write_text(json.dumps(key_registry(session), ensure_ascii=False, indent=1),
                                             encoding="utf-8")
        for table in tables:
            name = f"projections/{table.__tablename__}.jsonl"
            out = _HashingWriter(directory / name)
            for row in rows(session, table):
                out.write(json.dumps(row, ensure_ascii=False, sort_keys=True).encode() + b"\n")
            digests[name], counts[name] = out.close(), out.lines
    manifest = {"format": FORMAT, "origin": store.origin, "size": size, "checkpoint": checkpoint,
                "created_at": datetime.now(UTC).isoformat(), "files": {
                    name: {"sha256": digests[name], "lines": counts[name]} for name in sorted(digests)}}
    (directory / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    return ExportSummary(directory=directory, size=size, checkpoints=counts["checkpoints.jsonl"],
                         rows={n: c for n, c in counts.items() if n.startswith("projections/")})

"""The log in SQL: the serialised, batched writer and the O(log n) reads of proofs.

One writer at a time: a write transaction takes the database's writer lock, reads the tree
size and its frontier (the O(log n) complete subtrees on its right edge), appends entries,
and at commit stores their leaves and every tree node they complete. Readers never wait.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
import json
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from ledger import merkle
from ledger.checkpoint import Checkpoint
from ledger.database import WRITE_OPTION, HoldingSession, take_writer_lock
from ledger.entry import LEDGER_ACTOR, Entry, SignedCommand, format_time
from ledger.errors import LogError
from ledger.logkeys import GENESIS_OP, KEY_ADD_OP, KEY_RETIRE_OP, Keyring, active_keys, apply_log_op
from ledger.models import LogEntry, StoredCheckpoint, TreeNode, node_id
from ledger.note import sign_note

_MAX_SEQ = select(func.max(LogEntry.seq))
_NODES = select(TreeNode.id, TreeNode.hash).where(TreeNode.id.in_(bindparam("ids", expanding=True)))
_STORED_IDS = select(LogEntry.command_id).where(LogEntry.actor == bindparam("actor"),
                                                LogEntry.command_id.in_(bindparam("ids", expanding=True)))
"""The hot reads of the tree and of command ids, built once."""


@dataclass(frozen=True, slots=True)
class StoredEntry:
    seq: int
    leaf: bytes
    leaf_hash: bytes

    @property
    def entry(self) -> dict:
        return json.loads(self.leaf)


class LogWriter:
    """The open write transaction. Use :meth:`savepoint` around each command of a batch so a
    refused command leaves neither entries nor projection rows behind."""

    def __init__(self, *, store: "LogStore", session: Session):
        self.store = store
        self.session = session
        self.start = store._size(session)
        self._frontier = self._read_frontier()
        self._last_time = self._read_last_time()
        self.pending: list[Entry] = []
        self._pending_ids: dict[tuple[str, str], Entry] = {}
        self._absent: set[tuple[str, str]] = set()

    @property
    def size(self) -> int:
        return self.start + len(self.pending)

    def _read_frontier(self) -> list[tuple[merkle.Node, bytes]]:
        nodes = merkle.complete_subtrees(0, self.start)
        stored = self.store._read_nodes(self.session, nodes)
        return [(node, stored[node]) for node in nodes]

    def _read_last_time(self) -> str | None:
        if self.start == 0:
            return None
        leaf = self.session.exec(select(LogEntry.leaf).where(LogEntry.seq == self.start - 1)).scalar_one()
        return json.loads(leaf)["time"]

    def _next_time(self) -> str:
        """Now, but never earlier than the previous entry: entry times never go backwards."""
        now = format_time(datetime.now(UTC))
        last = self.pending[-1].time if self.pending else self._last_time
        # Fixed-width UTC timestamps order as strings: no parsing per entry.
        return now if last is None or now >= last else last

    def find(self, actor: str, command_id: str) -> Entry | StoredEntry | None:
        """The entry of an actor's command id, pending in this transaction or stored.

        An id found absent stays absent until this transaction appends it: the writer holds the
        log's lock, so the check before appending need not ask the database twice."""
        key = (actor, command_id)
        if key in self._pending_ids:
            return self._pending_ids[key]
        if key in self._absent:
            return None
        stored = self.store._find(self.session, actor, command_id)
        if stored is None:
            self._absent.add(key)
        return stored

    def prefetch(self, keys: Iterable[tuple[str, str]]) -> None:
        """Look up a batch's (actor, command id) pairs at once, before its commands are appended
        one by one: the ids not in the log are remembered as absent, so neither :meth:`find` nor
        :meth:`append` asks the database about them again. One query per actor and 500 ids."""
        by_actor: dict[str, set[str]] = {}
        for key in keys:
            if key not in self._pending_ids and key not in self._absent:
                by_actor.setdefault(key[0], set()).add(key[1])
        for actor, wanted in by_actor.items():
            ids = sorted(wanted)
            stored: set[str] = set()
            for start in range(0, len(ids), 500):
                stored.update(self.session.execute(_STORED_IDS, {"actor": actor, "ids": ids[start:start + 500]})
                              .scalars())
            self._absent.update((actor, command_id) for command_id in wanted - stored)

    def append(self, signed: SignedCommand) -> Entry:
        """Append a signed command as the next entry. The caller has checked it."""
        key = (signed.actor, signed.id)
        if self.find(*key) is not None:
            raise LogError(f"command {signed.id!r} of {signed.actor!r} is already in the log")
        entry = Entry.create(seq=self.size, time=self._next_time(), signed=signed)
        self.pending.append(entry)
        self._pending_ids[key] = entry
        self._absent.discard(key)
        return entry

    def append_ledger(self, command_id: str, ops: list[dict]) -> Entry:
        """Append a command of the ledger itself, signed with the newest active log key."""
        signer = self.store.ledger_signer(self.session)
        command = {"id": command_id, "actor": LEDGER_ACTOR, "ops": ops}
        entry = self.append(SignedCommand.sign(command, signer))
        for op in ops:
            if op["op"] in (GENESIS_OP, KEY_ADD_OP, KEY_RETIRE_OP):
                apply_log_op(self.session, entry, op)
        return entry

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Everything inside succeeds together or is undone together, entries included."""
        mark = len(self.pending)
        nested = self.session.begin_nested()
        try:
            yield
        except BaseException:
            nested.rollback()
            self.session.expire_all()  # objects changed inside must be read again, not reused
            for entry in self.pending[mark:]:
                del self._pending_ids[(entry.actor, entry.command["id"])]
            del self.pending[mark:]
            raise
        nested.commit()

    def flush(self) -> None:
        """Store the pending entries and the tree nodes they complete."""
        if not self.pending:
            return
        connection = self.session.connection()
        connection.execute(insert(LogEntry.__table__), [
            {"seq": e.seq, "actor": e.actor, "command_id": e.command["id"], "leaf": e.leaf}
            for e in self.pending])
        created, self._frontier = merkle.extend(
            self._frontier, ((e.seq, e.leaf_hash) for e in self.pending))
        connection.execute(insert(TreeNode.__table__), [
            {"id": node_id(*node), "hash": digest} for node, digest in created])
        self._last_time = self.pending[-1].time
        self.start += len(self.pending)
        self.pending.clear()
        self._pending_ids.clear()


class LogStore:
    def __init__(self, *, engine: Engine, keyring: Keyring):
        self.engine = engine
        self.keyring = keyring

    @property
    def origin(self) -> str:
        return self.keyring.origin

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def writer(self) -> Iterator[LogWriter]:
        """A serialised write transaction: commits everything appended, or nothing."""
        with self.engine.connect() as connection:
            connection.execution_options(**{WRITE_OPTION: True})
            with connection.begin():
                take_writer_lock(connection)
                with HoldingSession(bind=connection) as session:
                    writer = LogWriter(store=self, session=session)
                    yield writer
                    writer.flush()
                    session.flush()

    def initialise(self) -> Entry | None:
        """Append the genesis entry with a new log key, unless the log has begun already."""
        with self.writer() as writer:
            if writer.size:
                return None
            key = self.keyring.generate()
            entry = writer.append(SignedCommand.sign(
                {"id": "genesis", "actor": LEDGER_ACTOR,
                 "ops": [{"op": GENESIS_OP, "origin": self.origin, "key": str(key.verifier)}]}, key))
            apply_log_op(writer.session, entry, entry.command["ops"][0])
            return entry

    def rotate_key(self) -> Entry:
        """Add a new log key, vouched for by the current one. Both sign until one is retired."""
        key = self.keyring.generate()
        with self.writer() as writer:
            return writer.append_ledger(f"log-key-add:{key.verifier.hash.hex()}",
                                        [{"op": KEY_ADD_OP, "key": str(key.verifier)}])

    def retire_key(self, verifier: str) -> Entry:
        with self.writer() as writer:
            return writer.append_ledger(f"log-key-retire:{verifier}",
                                        [{"op": KEY_RETIRE_OP, "key": verifier}])

    def ledger_signer(self, session: Session):
        keys = active_keys(session)
        if not keys:
            raise LogError("the log has no active key: run `ecoledger init`")
        return self.keyring.signing_keys([keys[-1].verifier])[0]

    # -- reading ---------------------------------------------------------------------------

    @contextmanager
    def reader(self) -> Iterator[Session]:
        with Session(self.engine) as session:
            yield session

    @contextmanager
    def _tree_reader(self) -> Iterator[Connection]:
        """A bare connection for the hot reads of the tree (sizes, nodes): proofs are served on
        every request, and an ORM session would cost more than the queries themselves."""
        with self.engine.connect() as connection:
            yield connection

    @staticmethod
    def _size(session: Session | Connection) -> int:
        last = session.execute(_MAX_SEQ).scalar_one()
        return 0 if last is None else last + 1

    @staticmethod
    def _find(session: Session, actor: str, command_id: str) -> StoredEntry | None:
        row = session.exec(select(LogEntry.seq).where(
            LogEntry.actor == actor, LogEntry.command_id == command_id)).scalar_one_or_none()
        return None if row is None else LogStore._entries(session, row, 1)[0]

    @staticmethod
    def _read_nodes(session: Session | Connection, nodes: Iterable[merkle.Node]) -> dict[merkle.Node, bytes]:
        wanted = {node_id(*node): node for node in nodes}
        if not wanted:
            return {}
        rows = session.execute(_NODES, {"ids": list(wanted)}).all()
        found = {wanted[row.id]: bytes(row.hash) for row in rows}
        if len(found) != len(wanted):
            missing = sorted(set(wanted.values()) - set(found))
            raise LogError(f"the stored tree is missing nodes {missing[:5]}")
        return found

    @staticmethod
    def _entries(session: Session, start: int, limit: int) -> list[StoredEntry]:
        rows = session.exec(
            select(LogEntry.seq, LogEntry.leaf, TreeNode.hash)
            .join(TreeNode, TreeNode.id == LogEntry.seq)
            .where(LogEntry.seq >= start, LogEntry.seq < start + limit)
            .order_by(LogEntry.seq)).all()
        return [StoredEntry(seq=r.seq, leaf=bytes(r.leaf), leaf_hash=bytes(r.hash)) for r in rows]

    def size(self) -> int:
        with self.reader() as session:
            return self._size(session)

    def entries(self, start: int, limit: int) -> list[StoredEntry]:
        with self.reader() as session:
            return self._entries(session, start, limit)

    def entry(self, seq: int) -> StoredEntry:
        found = self.entries(seq, 1)
        if not found:
            raise LogError(f"there is no entry {seq}")
        return found[0]

    def _reader_for(self, session: Session | Connection) -> merkle.NodeReader:
        return lambda nodes: self._read_nodes(session, nodes)

    def root(self, size: int) -> bytes:
        with self._tree_reader() as connection:
            self._check_size(connection, size)
            return merkle.root(size, self._reader_for(connection))

    def _check_size(self, session: Session | Connection, size: int) -> int:
        current = self._size(session)
        if size < 0:
            raise LogError(f"tree size {size} is negative")
        if size > current:
            raise LogError(f"tree size {size} is beyond the log's size {current}")
        return current

    def inclusion_proof(self, seq: int, size: int) -> list[bytes]:
        with self._tree_reader() as connection:
            self._check_size(connection, size)
            if not 0 <= seq < size:
                raise LogError(f"seq {seq} is not in the tree of size {size}")
            return merkle.inclusion_proof(seq, size, self._reader_for(connection))

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        with self._tree_reader() as connection:
            self._check_size(connection, second)
            if not 0 < first <= second:
                raise LogError(f"no consistency proof from size {first} to size {second}: "
                               "the first size must be at least 1 and at most the second")
            return merkle.consistency_proof(first, second, self._reader_for(connection))

    # -- checkpoints -----------------------------------------------------------------------

    def checkpoint(self, size: int | None = None) -> str:
        """The signed checkpoint of the tree of ``size`` (default: the whole log), stored the
        first time it is served."""
        with self.reader() as session:
            size = self._size(session) if size is None else size
            self._check_size(session, size)
            stored = session.get(StoredCheckpoint, size)
            if stored is not None:
                return stored.note
            body = Checkpoint(origin=self.origin, size=size,
                              root=merkle.root(size, self._reader_for(session))).body()
            signers = self.keyring.signing_keys(k.verifier for k in active_keys(session))
            note = sign_note(body, signers)
        with Session(self.engine) as session:
            session.add(StoredCheckpoint(size=size, note=note, created_at=datetime.now(UTC)))
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                return session.get(StoredCheckpoint, size).note
        return note

    def checkpoints(self, start_size: int = 0, limit: int = 1000) -> list[StoredCheckpoint]:
        with self.reader() as session:
            rows = session.exec(select(StoredCheckpoint).where(StoredCheckpoint.size >= start_size)
                                .order_by(StoredCheckpoint.size).limit(limit))
            return list(rows.scalars())

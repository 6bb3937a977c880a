"""Replaying the log: rebuild every projection from the entries alone, then compare.

The replay applies entries in order to an empty database, checking on the way that seqs run
0, 1, 2… without a gap, that every entry's signature verifies with the key it names, and that
the key was its actor's at that seq (a log key for the ledger's own entries, the principal's
registered key otherwise). What each entry *does* is the caller's: ``apply`` runs the rules.
Afterwards :func:`compare_tables` walks two databases' projection tables in key order, in
constant memory, and names the first row that differs.
"""

from collections.abc import Callable, Iterable, Iterator
from itertools import zip_longest
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session, SQLModel

from ledger.database import HoldingSession
from ledger.entry import LEDGER_ACTOR, Entry, SignedCommand
from ledger.errors import VerificationError
from ledger.logkeys import LOG_OPS, apply_log_op
from ledger.models import LogKey
from ledger.projections import PrincipalKey
from ledger.verify import verify_entry_signature

Apply = Callable[[Session, Entry], None]


def entry_from_dict(raw: dict[str, Any]) -> Entry:
    try:
        signed = SignedCommand(command=raw["command"], signature=raw["signature"], key=raw["key"])
        return Entry.create(seq=raw["seq"], time=raw["time"], signed=signed)
    except (KeyError, TypeError) as error:
        seq = raw.get("seq") if isinstance(raw, dict) else None
        raise VerificationError(f"entry {seq if seq is not None else '?'}: malformed: {error}", seq=seq) from None


def _check_key(session: Session, entry: Entry) -> None:
    if entry.actor == LEDGER_ACTOR:
        if entry.seq == 0:
            return  # the genesis entry registers the key that signs it
        key = session.get(LogKey, entry.key)
        valid = key is not None and key.added_seq < entry.seq and (key.retired_seq is None or entry.seq <= key.retired_seq)
    else:
        key = session.get(PrincipalKey, entry.key)
        valid = (key is not None and key.principal == entry.actor and key.from_seq <= entry.seq
                 and (key.until_seq is None or entry.seq < key.until_seq))
    if not valid:
        raise VerificationError(f"entry {entry.seq}: {entry.key.split('+')[0]} was not {entry.actor}'s key at seq {entry.seq}",
                                seq=entry.seq)


def replay(entries: Iterable[dict[str, Any]], *, engine: Engine, apply: Apply, commit_every: int = 1000,
           progress: Callable[[int], None] | None = None, check_signatures: bool = True) -> int:
    """Apply ``entries`` (dicts as served by the log) to the empty, migrated database of
    ``engine``. Returns how many were applied; raises :class:`VerificationError` naming the
    first bad seq. ``check_signatures=False`` is for callers that check them elsewhere (in
    parallel); which key may sign at each seq is checked here either way.

    Entries are applied ``commit_every`` to a transaction, with no savepoint between them: a
    valid log applies without a failure, and a failure ends the replay. When a batch fails, it
    is rolled back and applied again one entry at a time, so the error names the entry that
    fails and not a later one whose flush or query surfaced it. If ``entries`` itself raises
    (a source that finds an entry bad), the entries before it are applied first: a failure among
    them is the earlier problem."""
    applied = 0
    batch: list[dict[str, Any]] = []
    with HoldingSession(engine) as session:
        try:
            for raw in entries:
                expected = applied + len(batch)
                if not isinstance(raw, dict) or raw.get("seq") != expected:
                    found = raw.get("seq") if isinstance(raw, dict) else raw
                    raise VerificationError(f"entry {expected}: missing; the next entry has seq {found!r}",
                                            seq=expected)
                batch.append(raw)
                if len(batch) == commit_every:
                    applied += _apply_batch(session, batch, apply, check_signatures)
                    batch = []
                    if progress:
                        progress(applied)
        except VerificationError:
            _apply_batch(session, batch, apply, check_signatures)
            raise
        applied += _apply_batch(session, batch, apply, check_signatures)
    if progress:
        progress(applied)
    return applied


def _apply_batch(session: Session, batch: list[dict[str, Any]], apply: Apply, check_signatures: bool) -> int:
    try:
        for raw in batch:
            _apply_entry(session, raw, apply, check_signatures)
        session.commit()
    except Exception:
        session.rollback()
        for raw in batch:  # again, one by one, to name the entry that fails
            _apply_entry(session, raw, apply, check_signatures)
            try:
                session.flush()
            except Exception as error:
                raise VerificationError(f"entry {raw['seq']}: does not apply: {error}", seq=raw["seq"]) from None
        raise  # a batch that fails together but not one by one: not expected, and not to be hidden
    return len(batch)


def _apply_entry(session: Session, raw: dict[str, Any], apply: Apply, check_signatures: bool) -> None:
    entry = entry_from_dict(raw)
    if check_signatures:
        verify_entry_signature(raw)
    _check_key(session, entry)
    try:
        ops = entry.command.get("ops") or []
        if entry.actor == LEDGER_ACTOR and ops and all(op.get("op") in LOG_OPS for op in ops):
            for op in ops:
                apply_log_op(session, entry, op)
        else:
            apply(session, entry)
    except VerificationError:
        raise
    except Exception as error:
        raise VerificationError(f"entry {entry.seq}: does not apply: {error}", seq=entry.seq) from None


def _rows(session: Session, table: type[SQLModel]) -> Iterator[dict[str, Any]]:
    columns = list(table.__table__.columns)
    keys = [c for c in columns if c.primary_key]
    query = select(*columns).order_by(*keys).execution_options(yield_per=2000)
    for row in session.execute(query):
        yield {c.name: _plain(value) for c, value in zip(columns, row)}


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value


def compare_tables(expected: Engine, actual: Engine, tables: Iterable[type[SQLModel]]) -> None:
    """Raise :class:`VerificationError` at the first row where ``actual`` differs from ``expected``."""
    with Session(expected) as left, Session(actual) as right:
        for table in tables:
            name = table.__tablename__
            keys = [c.name for c in table.__table__.columns if c.primary_key]
            for want, got in zip_longest(_rows(left, table), _rows(right, table)):
                if want == got:
                    continue
                if got is None:
                    raise VerificationError(f"{name}: row {_key(want, keys)} is missing")
                if want is None:
                    raise VerificationError(f"{name}: row {_key(got, keys)} should not exist")
                if _key(want, keys) != _key(got, keys):
                    raise VerificationError(f"{name}: rows differ at {_key(want, keys)} / {_key(got, keys)}")
                column = next(c for c in want if want[c] != got[c])
                raise VerificationError(f"{name}: row {_key(want, keys)}: {column} is {got[column]!r}, "
                                        f"the log says {want[column]!r}")


def _key(row: dict[str, Any], keys: list[str]) -> str:
    return ", ".join(f"{k}={row[k]!r}" for k in keys)

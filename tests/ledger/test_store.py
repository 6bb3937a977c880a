"""The log in SQL, as its users rely on it: append-only, gap-free, provable, signed.

Every test runs on SQLite and, when ECOLEDGER_TEST_DATABASE_URL is set, on PostgreSQL.
"""

import os
import re
import stat
from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from support import naive
from support.commands import signed_command

from ledger import verify
from ledger.keys import SigningKey, read_private_key
from ledger.logkeys import Keyring, LogKeyError
from ledger.store import LogError, LogStore

APPEND_ONLY = {"log_entries": "seq", "log_tree_nodes": "id", "log_checkpoints": "size"}
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@pytest.fixture
def actor():
    return SigningKey.generate("sc-exchange")


def log_key(store: LogStore) -> str:
    """The log's first verifier key string, as the genesis entry publishes it."""
    return store.entry(0).entry["command"]["ops"][0]["key"]


def append_batches(store: LogStore, actor: SigningKey, sizes: list[int]) -> list[list[int]]:
    """Append one write transaction per batch size; return the seqs each batch was given.

    The command at seq s is ``cmd-<s - 1>`` with op field ``n = s - 1``.
    """
    seqs = []
    for size in sizes:
        with store.writer() as writer:
            batch = []
            for _ in range(size):
                n = writer.size - 1
                batch.append(writer.append(signed_command(actor, f"cmd-{n}", n=n)).seq)
        seqs.append(batch)
    return seqs


def rows(engine, table: str) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(f"SELECT * FROM {table} ORDER BY {APPEND_ONLY[table]}"))]


# -- append-only ---------------------------------------------------------------------------


def refused_statements(dialect: str, table: str) -> list[str]:
    key = APPEND_ONLY[table]
    first = f"(SELECT MIN({key}) FROM {table})"
    statements = [f"UPDATE {table} SET {key} = {key} + 1000",
                  f"UPDATE {table} SET {key} = {key} WHERE {key} = {first}",
                  f"DELETE FROM {table} WHERE {key} = {first}",
                  f"DELETE FROM {table}"]
    if dialect == "postgresql":
        statements.append(f"TRUNCATE {table}")
    return statements


@pytest.mark.parametrize("table", APPEND_ONLY)
def test_the_database_refuses_to_change_or_remove_rows(store, engine, actor, table):
    append_batches(store, actor, [3])
    store.checkpoint()
    before = rows(engine, table)
    assert before, "the table must hold rows for its triggers to fire"
    for statement in refused_statements(engine.dialect.name, table):
        with engine.connect() as connection:
            with pytest.raises(DBAPIError, match="append-only"):
                with connection.begin():
                    connection.execute(text(statement))
    assert rows(engine, table) == before


@pytest.mark.parametrize("table", APPEND_ONLY)
def test_an_upsert_cannot_overwrite_a_row(store, engine, actor, table):
    append_batches(store, actor, [2])
    store.checkpoint()
    before = rows(engine, table)
    upsert = {
        "log_entries": "INSERT INTO log_entries (seq, actor, command_id, leaf) VALUES (0, 'x', 'y', :blob) "
                       "ON CONFLICT (seq) DO UPDATE SET leaf = excluded.leaf",
        "log_tree_nodes": "INSERT INTO log_tree_nodes (id, hash) VALUES (0, :blob) "
                          "ON CONFLICT (id) DO UPDATE SET hash = excluded.hash",
        "log_checkpoints": "INSERT INTO log_checkpoints (size, note, created_at) "
                           "VALUES (:size, 'forged', CURRENT_TIMESTAMP) "
                           "ON CONFLICT (size) DO UPDATE SET note = excluded.note",
    }[table]
    with engine.connect() as connection:
        with pytest.raises(DBAPIError, match="append-only"):
            with connection.begin():
                connection.execute(text(upsert), {"blob": b"\0" * 32, "size": store.size()})
    assert rows(engine, table) == before


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # SQLite's own syntax
@pytest.mark.parametrize("table", APPEND_ONLY)
def test_insert_or_replace_cannot_overwrite_a_row_on_sqlite(store, engine, actor, table):
    append_batches(store, actor, [2])
    store.checkpoint()
    before = rows(engine, table)
    replace = {
        "log_entries": "INSERT OR REPLACE INTO log_entries (seq, actor, command_id, leaf) "
                       "VALUES (0, 'ledger', 'genesis', :blob)",
        "log_tree_nodes": "INSERT OR REPLACE INTO log_tree_nodes (id, hash) VALUES (0, :blob)",
        "log_checkpoints": "INSERT OR REPLACE INTO log_checkpoints (size, note, created_at) "
                           "VALUES (:size, 'forged', CURRENT_TIMESTAMP)",
    }[table]
    with engine.connect() as connection:
        try:
            with connection.begin():
                connection.execute(text(replace), {"blob": b"\0" * 32, "size": store.size()})
        except DBAPIError:
            pass
    assert rows(engine, table) == before


def test_the_database_refuses_a_second_entry_for_a_command_or_a_seq(store, engine, actor):
    """The unique keys hold even for a writer that skips the store's own checks."""
    append_batches(store, actor, [2])
    before = rows(engine, "log_entries")
    duplicates = [(store.size(), "sc-exchange", "cmd-0"),  # a new seq, a command already logged
                  (1, "sc-exchange", "cmd-new")]  # a new command at a seq already taken
    for seq, who, command_id in duplicates:
        with engine.connect() as connection:
            with pytest.raises(IntegrityError):
                with connection.begin():
                    connection.execute(
                        text("INSERT INTO log_entries (seq, actor, command_id, leaf) VALUES (:s, :a, :c, :l)"),
                        {"s": seq, "a": who, "c": command_id, "l": b"{}"})
    assert rows(engine, "log_entries") == before


def test_a_prefetched_batch_still_refuses_every_duplicate(store, actor):
    """prefetch() looks a batch's ids up at once; ids already logged, or appended earlier in the
    same transaction, are still refused, and a refused duplicate leaves the log as it was."""
    append_batches(store, actor, [3])  # cmd-0, cmd-1, cmd-2
    other = SigningKey.generate("cq-exchange")
    size = store.size()
    with store.writer() as writer:
        writer.prefetch([("sc-exchange", "cmd-1"), ("sc-exchange", "new-1"), ("cq-exchange", "cmd-1")])
        assert writer.find("sc-exchange", "cmd-1").seq == 2  # logged: found, not taken for absent
        assert writer.find("sc-exchange", "new-1") is None
        writer.append(signed_command(actor, "new-1"))
        writer.append(signed_command(other, "cmd-1"))  # another actor's id of the same name
        with pytest.raises(LogError, match="already in the log"):
            writer.append(signed_command(actor, "new-1"))
        with pytest.raises(LogError, match="already in the log"):
            writer.append(signed_command(actor, "cmd-2"))
    assert store.size() == size + 2
    with store.writer() as writer:
        writer.prefetch([("sc-exchange", "new-1"), ("cq-exchange", "cmd-1")])
        for key in (actor, other):
            with pytest.raises(LogError, match="already in the log"):
                writer.append(signed_command(key, "new-1" if key is actor else "cmd-1"))
    assert store.size() == size + 2


# -- genesis -------------------------------------------------------------------------------


def test_the_genesis_entry_names_the_origin_and_the_log_key(store):
    assert store.size() == 1
    genesis = store.entry(0).entry
    assert genesis["seq"] == 0
    assert genesis["command"]["actor"] == "ledger"
    assert genesis["command"]["ops"] == [{"op": "log.genesis", "origin": store.origin, "key": genesis["key"]}]
    assert genesis["key"].startswith(store.origin + "+")


def test_the_logs_own_entries_verify_with_the_log_key(store):
    rotation = store.rotate_key()
    for entry in (store.entry(0).entry, store.entry(rotation.seq).entry):
        assert str(verify.verify_entry_signature(entry)) == log_key(store)


def test_initialising_twice_appends_nothing(store):
    first = store.entry(0)
    assert store.initialise() is None
    assert store.size() == 1
    assert store.entry(0) == first
    assert len(list(store.keyring.directory.glob("*.pem"))) == 1


# -- appending -----------------------------------------------------------------------------


def test_batches_get_consecutive_seqs(store, actor):
    sizes = [1, 2, 3, 5, 8, 13, 1, 30]
    batches = append_batches(store, actor, sizes)
    assert [seq for batch in batches for seq in batch] == list(range(1, 1 + sum(sizes)))
    assert store.size() == 1 + sum(sizes)
    stored = store.entries(0, 1000)
    assert [e.seq for e in stored] == list(range(store.size()))
    for e in stored[1:]:
        assert e.entry["command"]["ops"] == [{"op": "test.note", "n": e.seq - 1}]


def test_every_leaf_hash_is_recomputable_from_the_entry_alone(store, actor):
    append_batches(store, actor, [4, 7, 1])
    stored = store.entries(0, 1000)
    assert len(stored) == store.size()
    for e in stored:
        entry = e.entry
        assert set(entry) == {"seq", "time", "command", "signature", "key"}
        assert entry["seq"] == e.seq
        assert verify.leaf_hash(entry) == e.leaf_hash
        if entry["command"]["actor"] == "sc-exchange":
            assert verify.verify_entry_signature(entry) == actor.verifier
    # and the stored tree is the RFC's tree of exactly those leaves
    leaves = [verify.leaf_hash(e.entry) for e in stored]
    for size in range(1, len(leaves) + 1):
        assert store.root(size) == naive.root(leaves[:size])


def test_entries_paginate(store, actor):
    append_batches(store, actor, [10, 10, 4])
    size = store.size()
    everything = store.entries(0, size)
    for limit in (1, 3, 7, size, size + 5):
        pages, start = [], 0
        while start < size:
            page = store.entries(start, limit)
            assert 0 < len(page) <= limit
            assert page[0].seq == start
            pages.extend(page)
            start += len(page)
        assert pages == everything
    assert store.entries(size, 10) == []
    assert store.entries(size - 2, 10) == everything[-2:]
    assert store.entry(5) == everything[5]
    with pytest.raises(LogError):
        store.entry(size)


def test_time_is_utc_with_microseconds_and_never_goes_back(store, actor):
    append_batches(store, actor, [5, 1, 20, 3])
    times = [e.entry["time"] for e in store.entries(0, 1000)]
    for time in times:
        assert TIME.fullmatch(time), time
    moments = [datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%f%z") for t in times]
    assert all(m.utcoffset().total_seconds() == 0 for m in moments)
    assert moments == sorted(moments)


# -- proofs --------------------------------------------------------------------------------


def test_proofs_from_storage_verify_against_stored_checkpoints(store, actor):
    keys = [log_key(store)]
    notes = [store.checkpoint()]
    for size in [1, 2, 1, 4, 3, 8, 5, 16, 7]:
        append_batches(store, actor, [size])
        notes.append(store.checkpoint())
    checkpoints = [verify.open_checkpoint(note, keys) for note in notes]
    assert [c.size for c in checkpoints] == sorted({c.size for c in checkpoints})
    leaves = [e.leaf_hash for e in store.entries(0, 1000)]

    for checkpoint in checkpoints:
        assert checkpoint.root == naive.root(leaves[:checkpoint.size])
        for seq in range(checkpoint.size):
            proof = store.inclusion_proof(seq, checkpoint.size)
            verify.verify_inclusion(seq, checkpoint.size, leaves[seq], proof, checkpoint.root)

    for older in checkpoints:
        for newer in checkpoints:
            if older.size <= newer.size:
                proof = store.consistency_proof(older.size, newer.size)
                verify.verify_consistency(older.size, newer.size, proof, older.root, newer.root)


def test_a_proof_does_not_verify_for_another_leaf_or_root(store, actor):
    append_batches(store, actor, [6])
    checkpoint = verify.open_checkpoint(store.checkpoint(), [log_key(store)])
    leaves = [e.leaf_hash for e in store.entries(0, 100)]
    proof = store.inclusion_proof(3, checkpoint.size)
    with pytest.raises(verify.VerificationError):
        verify.verify_inclusion(3, checkpoint.size, leaves[4], proof, checkpoint.root)
    with pytest.raises(verify.VerificationError):
        verify.verify_inclusion(3, checkpoint.size, leaves[3], proof, store.root(checkpoint.size - 1))


def test_proofs_outside_the_tree_are_refused(store, actor):
    append_batches(store, actor, [4])  # size 5
    for seq, size in [(5, 5), (6, 5), (0, 0), (-1, 3), (0, 6), (2, 100)]:
        with pytest.raises(LogError):
            store.inclusion_proof(seq, size)
    for first, second in [(0, 3), (0, 0), (4, 3), (5, 6), (1, 6), (3, 100), (-1, 2)]:
        with pytest.raises(LogError):
            store.consistency_proof(first, second)
    with pytest.raises(LogError):
        store.root(6)


# -- transactions and savepoints -----------------------------------------------------------


def test_a_failed_savepoint_leaves_nothing_and_appends_continue_without_a_gap(store, engine, actor):
    stranger = SigningKey.generate(store.origin)
    with store.writer() as writer:
        kept = writer.append(signed_command(actor, "kept"))
        with pytest.raises(RuntimeError):
            with writer.savepoint():
                writer.append(signed_command(actor, "undone-1"))
                writer.append_ledger("undone-key", [{"op": "log.key_add", "key": str(stranger.verifier)}])
                raise RuntimeError("the contract refused")
        assert writer.size == kept.seq + 1
        assert writer.find("sc-exchange", "undone-1") is None
        after = writer.append(signed_command(actor, "after"))
        again = writer.append(signed_command(actor, "undone-1"))  # may be retried once undone
    assert (after.seq, again.seq) == (kept.seq + 1, kept.seq + 2)

    with store.writer() as writer:
        later = writer.append(signed_command(actor, "later"))
    assert later.seq == again.seq + 1
    stored = store.entries(0, 100)
    assert [e.seq for e in stored] == list(range(later.seq + 1))
    assert [e.entry["command"]["id"] for e in stored[1:]] == ["kept", "after", "undone-1", "later"]
    with engine.connect() as connection:  # the projection row went with the savepoint
        assert connection.execute(text("SELECT verifier FROM log_keys")).scalars().all() == [log_key(store)]
    assert store.root(store.size()) == naive.root([e.leaf_hash for e in stored])


def test_a_failed_transaction_leaves_nothing(store, actor):
    size, root = store.size(), store.root(store.size())
    with pytest.raises(RuntimeError):
        with store.writer() as writer:
            writer.append(signed_command(actor, "lost"))
            raise RuntimeError("crash before commit")
    assert (store.size(), store.root(store.size())) == (size, root)
    with store.writer() as writer:
        assert writer.find("sc-exchange", "lost") is None
        assert writer.append(signed_command(actor, "lost")).seq == size


def test_a_command_is_logged_once(store, actor):
    with store.writer() as writer:
        first = writer.append(signed_command(actor, "pay-1", amount="10.00"))
        assert writer.find("sc-exchange", "pay-1") == first
        with pytest.raises(LogError):
            writer.append(signed_command(actor, "pay-1", amount="10.00"))
        with pytest.raises(LogError):  # the id is the key, whatever the content
            writer.append(signed_command(actor, "pay-1", amount="99.00"))
        other = writer.append(signed_command(SigningKey.generate("cq-exchange"), "pay-1"))
    assert other.seq == first.seq + 1  # ids are unique per actor, not globally

    with store.writer() as writer:
        assert writer.find("sc-exchange", "pay-1").seq == first.seq
        with pytest.raises(LogError):
            writer.append(signed_command(actor, "pay-1", amount="10.00"))
    assert store.size() == other.seq + 1


# -- checkpoints ---------------------------------------------------------------------------


def test_serving_a_checkpoint_stores_it(store):
    assert store.checkpoints() == []
    note = store.checkpoint()
    assert store.checkpoint() == note
    [stored] = store.checkpoints()
    assert (stored.size, stored.note) == (store.size(), note)

    checkpoint = verify.open_checkpoint(note, [log_key(store)])
    assert (checkpoint.origin, checkpoint.size) == (store.origin, store.size())
    assert checkpoint.root == store.root(store.size())
    assert [str(k) for k in checkpoint.signed_by] == [log_key(store)]
    with pytest.raises(verify.VerificationError):
        verify.open_checkpoint(note, [str(SigningKey.generate(store.origin).verifier)])


def test_checkpoints_at_two_sizes_are_consistent(store, actor):
    first_note = store.checkpoint()
    append_batches(store, actor, [9, 4])
    second_note = store.checkpoint()
    assert [c.note for c in store.checkpoints()] == [first_note, second_note]
    first, second = (verify.open_checkpoint(n, [log_key(store)]) for n in (first_note, second_note))
    assert first.size < second.size
    proof = store.consistency_proof(first.size, second.size)
    verify.verify_consistency(first.size, second.size, proof, first.root, second.root)
    with pytest.raises(verify.VerificationError):
        verify.verify_consistency(first.size, second.size, proof, store.root(2), second.root)


# -- log keys ------------------------------------------------------------------------------


def test_key_rotation_keeps_every_verifier_working(store, actor):
    old = log_key(store)
    before = store.checkpoint()
    rotation = store.rotate_key()
    new = rotation.command["ops"][0]["key"]
    assert rotation.command["ops"] == [{"op": "log.key_add", "key": new}]
    assert rotation.key == old  # the new key is vouched for by the old one
    assert new != old and new.startswith(store.origin + "+")

    append_batches(store, actor, [3])
    overlap = store.checkpoint()
    for keys in ([old], [new], [old, new]):
        assert verify.open_checkpoint(overlap, keys).size == store.size()
    assert {str(k) for k in verify.open_checkpoint(overlap, [old, new]).signed_by} == {old, new}

    retirement = store.retire_key(old)
    assert retirement.command["ops"] == [{"op": "log.key_retire", "key": old}]
    assert retirement.key == new
    after = store.checkpoint()
    assert verify.open_checkpoint(after, [new]).size == store.size()
    assert [str(k) for k in verify.open_checkpoint(after, [old, new]).signed_by] == [new]
    with pytest.raises(verify.VerificationError):
        verify.open_checkpoint(after, [old])

    # Checkpoints served before stay as they were, and the history stays consistent.
    assert [c.note for c in store.checkpoints()] == [before, overlap, after]
    assert verify.open_checkpoint(before, [old]).size == 1
    a, b = verify.open_checkpoint(before, [old]), verify.open_checkpoint(after, [new])
    verify.verify_consistency(a.size, b.size, store.consistency_proof(a.size, b.size), a.root, b.root)


def test_the_last_active_key_cannot_be_retired(store):
    old = log_key(store)
    size = store.size()
    with pytest.raises(LogKeyError):
        store.retire_key(old)
    assert store.size() == size
    new = store.rotate_key().command["ops"][0]["key"]
    store.retire_key(old)
    with pytest.raises(LogKeyError):
        store.retire_key(new)
    with pytest.raises((LogKeyError, LogError)):  # nor can a retired key be retired again
        store.retire_key(old)
    assert verify.open_checkpoint(store.checkpoint(), [new]).size == size + 2


def test_any_log_key_opens_its_checkpoints(store):
    """Regression: verifier key strings whose base64 holds a '+' (about half of them) must parse."""
    for _ in range(40):
        key = store.rotate_key().command["ops"][0]["key"]
        if "+" in key.split("+", 2)[2]:
            break
    assert verify.open_checkpoint(store.checkpoint(), [key]).size == store.size()


# -- private key files ---------------------------------------------------------------------


def test_the_private_key_file_is_readable_by_its_owner_only(store):
    [path] = store.keyring.directory.glob("*.pem")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    store.rotate_key()
    for path in store.keyring.directory.glob("*.pem"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_passphrase_encrypts_the_private_key(engine, tmp_path):
    directory = tmp_path / "secret-keys"
    store = LogStore(engine=engine, keyring=Keyring(directory=directory, origin="ecoledger.test/log",
                                                    passphrase=b"correct horse"))
    store.initialise()
    [path] = directory.glob("*.pem")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    pem = path.read_bytes()
    assert b"ENCRYPTED" in pem
    with pytest.raises(ValueError):
        read_private_key(path)
    with pytest.raises(ValueError):
        read_private_key(path, passphrase=b"wrong horse")
    assert read_private_key(path, passphrase=b"correct horse") is not None

    # A server restarted without the passphrase cannot sign; with it, it can.
    without = LogStore(engine=engine, keyring=Keyring(directory=directory, origin="ecoledger.test/log"))
    with pytest.raises(ValueError):
        without.checkpoint()
    assert store.checkpoints() == []
    restarted = LogStore(engine=engine, keyring=Keyring(directory=directory, origin="ecoledger.test/log",
                                                        passphrase=b"correct horse"))
    verify.open_checkpoint(restarted.checkpoint(), [log_key(restarted)])

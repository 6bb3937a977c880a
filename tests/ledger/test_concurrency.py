"""Several OS processes append to one log at once: the log stays one gap-free, unforked tree."""

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from support import naive

from ledger import verify
from ledger.models import node_id

WRITERS, BATCHES, PER_BATCH = 4, 25, 10
APPENDER = Path(__file__).parents[1] / "support" / "appender.py"


def start_writers(database_url: str, store) -> list[subprocess.Popen]:
    """Start the writer processes and release them together once all are connected."""
    writers = [subprocess.Popen(
        [sys.executable, str(APPENDER), database_url, str(store.keyring.directory), store.origin,
         f"writer-{i}", str(BATCHES), str(PER_BATCH)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(WRITERS)]
    for writer in writers:
        if writer.stdout.readline().strip() != "ready":
            for other in writers:
                other.kill()
            pytest.fail(f"a writer did not start: {writer.communicate()[1]}")
    for writer in writers:
        writer.stdin.write("go\n")
        writer.stdin.flush()
    return writers


def finish(writer: subprocess.Popen) -> dict:
    out, err = writer.communicate(timeout=300)  # a guard against a hang, not a performance bound
    assert writer.returncode == 0, err
    return json.loads(out)


@pytest.mark.slow
def test_concurrent_writers_build_one_gap_free_tree(database_url, engine, store):
    reports = [finish(writer) for writer in start_writers(database_url, store)]
    size = 1 + WRITERS * BATCHES * PER_BATCH

    # Exactly 0..size-1: no gap, no duplicate, nothing lost, nothing extra.
    assert store.size() == size
    entries = store.entries(0, size + 10)
    assert [e.seq for e in entries] == list(range(size))
    assert sorted(seq for report in reports for seq in report["seqs"]) == list(range(1, size))
    for report in reports:
        # Each writer's commands are in the log in the order it appended them, each exactly once.
        assert report["seqs"] == sorted(report["seqs"])
        for n, seq in enumerate(report["seqs"]):
            entry = entries[seq].entry
            assert entry["command"]["id"] == f"{report['actor']}-{n}"
            assert entry["key"] == report["key"]

    # No fork: every stored node is the naive tree's node over the leaves recomputed from the
    # entries alone, and no other node is stored.
    leaves = [verify.leaf_hash(e.entry) for e in entries]
    with engine.connect() as connection:
        stored = {row.id: bytes(row.hash) for row in connection.execute(text("SELECT id, hash FROM log_tree_nodes"))}
    assert stored == {node_id(*node): digest for node, digest in naive.complete_subtrees(leaves).items()}
    root = naive.root(leaves)
    assert store.root(size) == root

    times = [datetime.strptime(e.entry["time"], "%Y-%m-%dT%H:%M:%S.%f%z") for e in entries]
    assert times == sorted(times)

    # The final checkpoint verifies, and so does every checkpoint the writers served on the way,
    # each consistent with the final one.
    log_key = entries[0].entry["command"]["ops"][0]["key"]
    final = verify.open_checkpoint(store.checkpoint(), [log_key])
    assert (final.size, final.root) == (size, root)
    served = store.checkpoints()
    assert len(served) > 1
    for note in (c.note for c in served):
        checkpoint = verify.open_checkpoint(note, [log_key])
        assert checkpoint.root == naive.root(leaves[:checkpoint.size])
        proof = store.consistency_proof(checkpoint.size, final.size)
        verify.verify_consistency(checkpoint.size, final.size, proof, checkpoint.root, final.root)

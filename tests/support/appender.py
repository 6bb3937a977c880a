"""A writer process for the concurrency tests: appends batches to a shared log, then reports.

    python tests/support/appender.py URL KEYS_DIR ORIGIN ACTOR BATCHES PER_BATCH

It prints ``ready`` once connected, waits for a line on stdin (so that every writer starts at
once), appends BATCHES write transactions of PER_BATCH commands each, serving a checkpoint
after every fifth one, and prints one JSON line: the seqs its commands got, in append order.
"""

import json
import sys
from pathlib import Path

from sqlalchemy import text

from ledger.database import create_database_engine
from ledger.entry import SignedCommand
from ledger.keys import SigningKey
from ledger.logkeys import Keyring
from ledger.store import LogStore


def main(url: str, keys: str, origin: str, actor: str, batches: str, per_batch: str) -> None:
    engine = create_database_engine(url)
    store = LogStore(engine=engine, keyring=Keyring(directory=Path(keys), origin=origin))
    key = SigningKey.generate(actor)
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    print("ready", flush=True)
    sys.stdin.readline()

    seqs, n = [], 0
    for batch in range(int(batches)):
        with store.writer() as writer:
            for _ in range(int(per_batch)):
                command = {"id": f"{actor}-{n}", "actor": actor, "ops": [{"op": "test.note", "n": n}]}
                seqs.append(writer.append(SignedCommand.sign(command, key)).seq)
                n += 1
        if batch % 5 == 4:
            store.checkpoint()
    engine.dispose()
    print(json.dumps({"actor": actor, "key": str(key.verifier), "seqs": seqs}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])

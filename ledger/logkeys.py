"""The log's own signing keys: registered, rotated and retired by the log's own entries.

The genesis entry names the first key; ``log.key_add`` (signed by a key already active) adds
one; ``log.key_retire`` retires one. While two keys are active, checkpoints carry both
signatures, so verifiers that know either key keep working through a rotation.
The ``log_keys`` table is the projection of those entries.
"""

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

from ledger.entry import Entry
from ledger.errors import LogError
from ledger.keys import SigningKey, VerifierKey, read_private_key, write_private_key
from ledger.models import LogKey

GENESIS_OP = "log.genesis"
KEY_ADD_OP = "log.key_add"
KEY_RETIRE_OP = "log.key_retire"
LOG_OPS = frozenset({GENESIS_OP, KEY_ADD_OP, KEY_RETIRE_OP})


class LogKeyError(LogError):
    """A log-key operation that cannot be applied."""


def apply_log_op(session: Session, entry: Entry, op: dict) -> None:
    """Project one of the log's own operations into ``log_keys``."""
    name = op["op"]
    if name in (GENESIS_OP, KEY_ADD_OP):
        if session.get(LogKey, op["key"]) is not None:
            raise LogKeyError(f"log key {op['key']} is already registered")
        session.add(LogKey(verifier=op["key"], added_seq=entry.seq))
    elif name == KEY_RETIRE_OP:
        key = session.get(LogKey, op["key"])
        if key is None or key.retired_seq is not None:
            raise LogKeyError(f"log key {op['key']} is not an active log key")
        if len(active_keys(session)) == 1:
            raise LogKeyError("the last active log key cannot be retired")
        key.retired_seq = entry.seq
        session.add(key)
    else:
        raise LogKeyError(f"unknown log operation {name!r}")


def active_keys(session: Session) -> list[LogKey]:
    """Active log keys, oldest first."""
    rows = session.exec(select(LogKey).where(LogKey.retired_seq.is_(None)).order_by(LogKey.added_seq))
    return list(rows.scalars())


def all_keys(session: Session) -> list[LogKey]:
    return list(session.exec(select(LogKey).order_by(LogKey.added_seq)).scalars())


class Keyring:
    """The log's private keys, read from PEM files in one directory.

    Files are named ``<key hash hex>.pem``; a passphrase, if set, decrypts all of them.
    """

    def __init__(self, *, directory: Path, origin: str, passphrase: bytes | None = None):
        self.directory = directory
        self.origin = origin
        self._passphrase = passphrase
        self._keys: dict[str, SigningKey] = {}

    def __repr__(self) -> str:
        return f"Keyring(directory={self.directory!s}, origin={self.origin!r})"

    def path_for(self, key: VerifierKey) -> Path:
        return self.directory / f"{key.hash.hex()}.pem"

    def load(self) -> None:
        for path in sorted(self.directory.glob("*.pem")):
            key = SigningKey(name=self.origin, private_key=read_private_key(path, passphrase=self._passphrase))
            self._keys[str(key.verifier)] = key

    def generate(self) -> SigningKey:
        key = SigningKey.generate(self.origin)
        write_private_key(self.path_for(key.verifier), key.private_key, passphrase=self._passphrase)
        self._keys[str(key.verifier)] = key
        return key

    def signing_keys(self, verifiers: Iterable[str]) -> list[SigningKey]:
        """The private keys for the given verifier strings; a missing one is an error."""
        keys = []
        for verifier in verifiers:
            if verifier not in self._keys:
                self.load()
            if verifier not in self._keys:
                raise LogKeyError(f"the private key of log key {verifier} is not in {self.directory}")
            keys.append(self._keys[verifier])
        return keys

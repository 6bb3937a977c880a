"""Entries: one signed command each, appended at the next sequence number (specs/log.md §1)."""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledger.encoding import b64encode, canonical
from ledger.keys import SigningKey
from ledger.merkle import leaf_hash

LEDGER_ACTOR = "ledger"
"""The actor of entries the ledger makes itself, signed with the log key."""


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds and ``Z``: ``2026-11-22T02:15:07.123456Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedCommand:
    """A command as its actor signed it, with the signature and the actor's verifier key."""

    command: dict[str, Any]
    signature: str
    key: str

    @property
    def actor(self) -> str:
        return self.command["actor"]

    @property
    def id(self) -> str:
        return self.command["id"]

    @classmethod
    def sign(cls, command: dict[str, Any], key: SigningKey) -> "SignedCommand":
        return cls(command=command, signature=b64encode(key.sign(canonical(command))),
                   key=str(key.verifier))


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    seq: int
    time: str
    command: dict[str, Any]
    signature: str
    key: str
    leaf: bytes = field(repr=False, compare=False)

    @classmethod
    def create(cls, *, seq: int, time: str, signed: SignedCommand) -> "Entry":
        body = {"seq": seq, "time": time, "command": signed.command,
                "signature": signed.signature, "key": signed.key}
        return cls(seq=seq, time=time, command=signed.command, signature=signed.signature,
                   key=signed.key, leaf=canonical(body))

    @property
    def actor(self) -> str:
        return self.command["actor"]

    @property
    def leaf_hash(self) -> bytes:
        return leaf_hash(self.leaf)

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": self.time, "command": self.command,
                "signature": self.signature, "key": self.key}

"""The log's tables. Entries, tree nodes and checkpoints are append-only: the database itself
refuses UPDATE and DELETE on them (see the migrations)."""

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Integer, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class LogEntry(SQLModel, table=True):
    """One entry: its canonical leaf bytes are the truth; actor and command id are indexed
    copies that make (actor, id) unique, which is what makes commands idempotent."""

    __tablename__ = "log_entries"
    __table_args__ = (UniqueConstraint("actor", "command_id", name="uq_log_entries_actor_command"),)

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    actor: str = Field(max_length=64)
    command_id: str = Field(max_length=128)
    leaf: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class TreeNode(SQLModel, table=True):
    """The hash of a complete subtree ``(level, index)``, keyed by ``level << 48 | index``.

    Level 0 holds the leaf hashes, so a leaf's node id is its seq.
    """

    __tablename__ = "log_tree_nodes"

    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))


class StoredCheckpoint(SQLModel, table=True):
    """Every checkpoint the log has served, so any two can be proven consistent."""

    __tablename__ = "log_checkpoints"

    size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class LogKey(SQLModel, table=True):
    """A log signing key, as registered by the log's own entries (a projection)."""

    __tablename__ = "log_keys"

    verifier: str = Field(primary_key=True, max_length=200)
    added_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    retired_seq: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


NODE_LEVEL_SHIFT = 48


def node_id(level: int, index: int) -> int:
    return (level << NODE_LEVEL_SHIFT) | index


class JobRun(SQLModel, table=True):
    """One run of a scheduled job: operational bookkeeping, not ledger state."""

    __tablename__ = "job_runs"

    id: int | None = Field(default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"),
                                                          primary_key=True, autoincrement=True))
    job: str = Field(max_length=32, index=True)
    started_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    status: str = Field(default="running", max_length=10, description="running, ok or failed")
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))

"""The log: entries, stored tree nodes, checkpoints, log keys; append-only triggers.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY = {"log_entries": "seq", "log_tree_nodes": "id", "log_checkpoints": "size"}
"""The append-only tables and their keys."""


def upgrade() -> None:
    op.create_table(
        "log_entries",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("command_id", sa.String(128), nullable=False),
        sa.Column("leaf", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("actor", "command_id", name="uq_log_entries_actor_command"),
    )
    op.create_table(
        "log_tree_nodes",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "log_checkpoints",
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "log_keys",
        sa.Column("verifier", sa.String(200), primary_key=True),
        sa.Column("added_seq", sa.BigInteger, nullable=False),
        sa.Column("retired_seq", sa.BigInteger, nullable=True),
    )
    for table, key in APPEND_ONLY.items():
        forbid_update_and_delete(table, key)


def forbid_update_and_delete(table: str, key: str) -> None:
    """Make the database itself refuse to change or remove rows of an append-only table."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE OR REPLACE FUNCTION ecoledger_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
            END $$ LANGUAGE plpgsql""")
        op.execute(f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                       FOR EACH ROW EXECUTE FUNCTION ecoledger_append_only()""")
        op.execute(f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                       FOR EACH STATEMENT EXECUTE FUNCTION ecoledger_append_only()""")
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"""CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table}
                           BEGIN SELECT RAISE(ABORT, '{table} is append-only: {action} refused'); END""")
        # INSERT OR REPLACE deletes the old row without firing DELETE triggers: refuse the insert.
        op.execute(f"""CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table}
                       WHEN EXISTS (SELECT 1 FROM {table} WHERE {key} = NEW.{key})
                       BEGIN SELECT RAISE(ABORT, '{table} is append-only: {key} exists'); END""")

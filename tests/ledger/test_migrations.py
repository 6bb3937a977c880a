"""The schema the migrations build is exactly the schema the models describe, on every engine."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import ledger.models  # noqa: F401  (registers the log's tables)
import ledger.projections  # noqa: F401  (registers the projections' tables)
from ledger.database import upgrade


def test_migrations_build_the_models_schema(engine):
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []


def test_upgrading_twice_changes_nothing(engine):
    before = sorted(inspect(engine).get_table_names())
    upgrade(engine)
    assert sorted(inspect(engine).get_table_names()) == before
    assert {"log_entries", "log_tree_nodes", "balances", "postings", "trades"} <= set(before)

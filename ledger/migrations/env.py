"""Alembic environment: migrations run on the engine the caller hands over, as the log's writer.

Holding the writer's lock (SQLite ``BEGIN IMMEDIATE``, the PostgreSQL advisory lock) makes two
processes that start together on a fresh database take turns: the second finds the schema at
its head and has nothing to do."""

from alembic import context

from ledger.database import WRITE_OPTION, take_writer_lock

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    connection.execution_options(**{WRITE_OPTION: True})
    with connection.begin():
        take_writer_lock(connection)
        context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()

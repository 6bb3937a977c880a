"""Throw-away PostgreSQL schemas, so tests sharing one database never see each other's tables.

The log's tables refuse DELETE and TRUNCATE, so a test's data goes away with its schema.
"""

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from ledger.database import normalise_url


@contextmanager
def postgresql_schema(base_url: str) -> Iterator[str]:
    """Create a fresh schema; yield a URL whose connections use it alone; drop it afterwards.

    The schema is chosen through libpq options (``?options=-csearch_path%3D<schema>``), so
    everything unqualified — tables, the migrations' trigger function, ``alembic_version`` —
    is created in it.
    """
    schema = f"t_{secrets.token_hex(8)}"
    admin = create_engine(normalise_url(base_url), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            yield (make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
                   .render_as_string(hide_password=False))
        finally:
            with admin.connect() as connection:
                # A connection left inside a transaction would block the drop: fail, don't hang.
                connection.execute(text("SET lock_timeout = '10s'"))
                connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    finally:
        admin.dispose()

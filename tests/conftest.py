"""Fixtures shared by the whole suite: a database on every engine under test, and a log on it.

Storage tests run on SQLite always and on PostgreSQL when ``ECOLEDGER_TEST_DATABASE_URL`` is set
(e.g. ``postgresql://postgres@127.0.0.1:5432/test``); each PostgreSQL test gets a schema of its own.
"""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # makes tests/support importable as `support`

from support.databases import postgresql_schema  # noqa: E402

from ledger.database import create_database_engine, upgrade  # noqa: E402
from ledger.logkeys import Keyring  # noqa: E402
from ledger.store import LogStore  # noqa: E402

TEST_DATABASE_URL = os.environ.get("ECOLEDGER_TEST_DATABASE_URL")
ORIGIN = "ecoledger.test/log"


@pytest.fixture(params=[
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.skipif(
        not TEST_DATABASE_URL,
        reason="PostgreSQL not under test: set ECOLEDGER_TEST_DATABASE_URL "
               "(e.g. postgresql://postgres@127.0.0.1:5432/test)")),
])
def database_url(request, tmp_path):
    """The URL of an empty database of its own for this test, on each engine under test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/ledger.db"
    else:
        with postgresql_schema(TEST_DATABASE_URL) as url:
            yield url


@pytest.fixture
def engine(database_url):
    """An engine on the test's database, migrated to the latest schema."""
    engine = create_database_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine, tmp_path):
    """An initialised log (genesis entry appended) with its private keys in ``tmp_path/keys``."""
    store = LogStore(engine=engine, keyring=Keyring(directory=tmp_path / "keys", origin=ORIGIN))
    store.initialise()
    return store

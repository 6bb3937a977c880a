"""Fixtures of the contract tests.

``book``: a scenario builder (contract_book.Book) on the ``store`` fixture, so on every engine
under test. ``standard_book``: the same with the usual cast of principals, accounts and assets
(contract_book.standard_cast) already in the log. The cast is built once per session, on SQLite,
by the code under test; each test copies its rows (log entries, tree nodes, log keys and every
projection) and the log's key into its own freshly migrated database, on each engine.
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from contract_book import ORIGIN, Book, standard_cast
from sqlalchemy import inspect, select
from sqlmodel import SQLModel

from ledger.database import create_database_engine, upgrade
from ledger.keys import SigningKey
from ledger.logkeys import Keyring
from ledger.store import LogStore


@dataclass(frozen=True)
class CastTemplate:
    database: Path
    keys_directory: Path
    keys: dict[str, SigningKey]
    counter: int
    rows: dict[str, list[dict]]

    def store(self, engine, directory: Path) -> LogStore:
        """A store on ``engine`` (migrated and empty) holding the cast's log and projections."""
        shutil.copytree(self.keys_directory, directory)
        with engine.begin() as connection:
            for table in SQLModel.metadata.sorted_tables:
                if self.rows.get(table.name):
                    connection.execute(table.insert(), self.rows[table.name])
        return LogStore(engine=engine, keyring=Keyring(directory=directory, origin=ORIGIN))

    def book(self, store: LogStore) -> Book:
        return Book(store=store, keys=dict(self.keys), counter=self.counter)


@pytest.fixture(scope="session")
def cast_template(tmp_path_factory) -> CastTemplate:
    directory = tmp_path_factory.mktemp("cast")
    engine = create_database_engine(f"sqlite:///{directory}/cast.db")
    upgrade(engine)
    store = LogStore(engine=engine, keyring=Keyring(directory=directory / "keys", origin=ORIGIN))
    store.initialise()
    book = standard_cast(Book(store=store))
    present = set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        rows = {table.name: [dict(row._mapping) for row in connection.execute(select(table))]
                for table in SQLModel.metadata.sorted_tables if table.name in present}
    engine.dispose()
    return CastTemplate(database=directory / "cast.db", keys_directory=directory / "keys",
                        keys=dict(book.keys), counter=book.counter, rows=rows)


@pytest.fixture
def book(store) -> Book:
    return Book(store=store)


@pytest.fixture
def standard_book(engine, tmp_path, cast_template) -> Book:
    return cast_template.book(cast_template.store(engine, tmp_path / "cast-keys"))

"""The ledger's storage as a Flask extension: one engine and one log store per process."""

from flask import Flask, current_app

from ledger.database import create_database_engine, upgrade
from ledger.logkeys import Keyring
from ledger.store import LogStore
from api.settings import Settings

EXTENSION = "ecoledger.store"


def open_store(settings: Settings) -> LogStore:
    keyring = Keyring(directory=settings.log_keys_dir, origin=settings.origin,
                      passphrase=settings.log_key_passphrase)
    return LogStore(engine=create_database_engine(settings.database), keyring=keyring)


def initialise(settings: Settings) -> LogStore:
    """Create the home directory, the schema and the genesis entry; idempotent."""
    settings.home.mkdir(parents=True, exist_ok=True)
    store = open_store(settings)
    upgrade(store.engine)
    store.initialise()
    return store


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = open_store(app.config["ECOLEDGER"])


def get_store() -> LogStore:
    return current_app.extensions[EXTENSION]

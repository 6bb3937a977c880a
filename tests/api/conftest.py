"""The application under test, in the style of Flask's tutorial: ``app``, ``client``, ``runner``."""

import pytest

from api import create_app
from api.storage import get_store, initialise
from ledger.entry import SignedCommand
from ledger.keys import SigningKey

ORIGIN = "ecoledger.test/log"


@pytest.fixture
def app(database_url, tmp_path):
    app = create_app({"home": tmp_path / "home", "database_url": database_url, "origin": ORIGIN})
    initialise(app.config["ECOLEDGER"])
    yield app
    app.extensions["ecoledger.store"].engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def append(app):
    """Append ``n`` signed test commands straight to the log (commands arrive over HTTP later)."""
    author = SigningKey.generate("test-author")
    counter = iter(range(10**9))

    def append(n: int) -> None:
        with app.app_context():
            with get_store().writer() as writer:
                for _ in range(n):
                    command = {"id": f"c{next(counter)}", "actor": author.name, "ops": []}
                    writer.append(SignedCommand.sign(command, author))

    return append

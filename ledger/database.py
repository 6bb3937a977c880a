"""Engines for the two supported databases, and schema upgrades through Alembic.

SQLite is the embedded default; PostgreSQL is the production engine. Both give the log one
writer at a time: SQLite through ``BEGIN IMMEDIATE`` (taken only by write transactions, so
readers under WAL never wait), PostgreSQL through a transaction-scoped advisory lock.
"""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlmodel import Session

WRITE_OPTION = "ecoledger_write"
"""Execution option that marks a connection as the log's writer."""

_ADVISORY_LOCK = 0x65636F6C  # "ecol": the log's writer lock on PostgreSQL (with the schema)
_MIGRATIONS = Path(__file__).with_name("migrations")


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use the psycopg 3 driver for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_database_engine(url: str) -> Engine:
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin_sqlite)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    return engine


def _configure_sqlite(dbapi_connection, _record) -> None:
    # Let SQLAlchemy emit BEGIN itself (see _begin_sqlite) so savepoints and
    # BEGIN IMMEDIATE work as documented.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin_sqlite(connection: Connection) -> None:
    writer = connection.get_execution_options().get(WRITE_OPTION)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def take_writer_lock(connection: Connection) -> None:
    """Serialise writers. On SQLite ``BEGIN IMMEDIATE`` already did; PostgreSQL needs a lock."""
    if connection.dialect.name == "postgresql":
        # One lock per schema: logs kept in different schemas of one database do not wait on each other.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key, hashtext(current_schema()))"),
                           {"key": _ADVISORY_LOCK})


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision`` with the project's Alembic migrations."""
    command.upgrade(alembic_config(engine), revision)


class HoldingSession(Session):
    """A session that holds every object it loads or stores until its transaction ends.

    SQLAlchemy's identity map holds objects weakly, so an account or balance that one op reads
    and drops is read again from the database by the next. Applying an entry reads the same
    accounts, assets and balances many times over; the writer and the replay keep them for the
    transaction instead (SQLAlchemy's "strong reference session" recipe). They are let go when
    the transaction commits or rolls back, which bounds the memory of a long replay. The events
    are listened to once, for the class.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.held: dict[int, object] = {}  # by id(): the models are unhashable


def _hold(session: HoldingSession, instance: object) -> None:
    session.held[id(instance)] = instance


def _let_go(session: HoldingSession, instance: object) -> None:
    session.held.pop(id(instance), None)


def _end(session: HoldingSession, transaction) -> None:
    if transaction.parent is None:  # the transaction itself, not a savepoint
        session.held.clear()


for _name in ("loaded_as_persistent", "pending_to_persistent", "detached_to_persistent", "deleted_to_persistent"):
    event.listen(HoldingSession, _name, _hold)
for _name in ("persistent_to_detached", "persistent_to_deleted", "persistent_to_transient"):
    event.listen(HoldingSession, _name, _let_go)
event.listen(HoldingSession, "after_transaction_end", _end)

"""The ``ecoledger`` command line.

Every command reads the same settings as the service. Errors end with a one-line message and a
non-zero exit status, never a traceback.
"""

import logging.config
import sys

import click
from flask import Flask, current_app
from flask.cli import ScriptInfo, with_appcontext

from api.logs import logging_config
from api.settings import SettingsError
from ledger.logkeys import LogKeyError, all_keys
from ledger.store import LogError

FAILURES = (SettingsError, LogError, LogKeyError, OSError, ValueError)


class _OneLineErrors:
    """Known failures end the command with one line and exit status 1, not a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FAILURES as error:
            raise click.ClickException(str(error)) from None


class Command(_OneLineErrors, click.Command):
    pass


class Group(_OneLineErrors, click.Group):
    pass


def _settings():
    return current_app.config["ECOLEDGER"]


@click.command("init", cls=Command)
@with_appcontext
def init_command() -> None:
    """Create the home directory, the log key, the database and the genesis entry."""
    from api.storage import initialise

    settings = _settings()
    store = initialise(settings)
    click.echo(f"ledger ready in {settings.home}: {store.size()} entries, origin {store.origin}")


@click.command("serve", cls=Command)
@click.option("--dev", is_flag=True, help="Use Flask's development server instead of gunicorn.")
@click.option("--bind", help="host:port to listen on (default: the server_bind setting).")
@click.option("--workers", type=click.IntRange(min=1), help="gunicorn worker processes.")
@with_appcontext
def serve_command(dev: bool, bind: str | None, workers: int | None) -> None:
    """Initialise if needed, then serve the HTTP API."""
    from dataclasses import replace

    from api.serve import GunicornServer
    from api.storage import initialise

    settings = _settings()
    settings = replace(settings, server_bind=bind or settings.server_bind,
                       server_workers=workers or settings.server_workers)
    initialise(settings)
    if dev:
        host, _, port = settings.server_bind.rpartition(":")
        current_app.run(host=host or "127.0.0.1", port=int(port), debug=False, use_reloader=False)
    else:
        GunicornServer(settings).run()


@click.command("checkpoint", cls=Command)
@with_appcontext
def checkpoint_command() -> None:
    """Print the latest signed checkpoint."""
    from api.storage import get_store

    click.echo(get_store().checkpoint(), nl=False)


@click.group("log-key", cls=Group)
def log_key_group() -> None:
    """Rotate and retire the log's signing keys."""


@log_key_group.command("list")
@with_appcontext
def log_key_list() -> None:
    """List the log keys with the seqs they were valid for."""
    from api.storage import get_store

    with get_store().reader() as session:
        for key in all_keys(session):
            until = "active" if key.retired_seq is None else f"retired at seq {key.retired_seq}"
            click.echo(f"{key.verifier}  from seq {key.added_seq}, {until}")


@log_key_group.command("rotate")
@with_appcontext
def log_key_rotate() -> None:
    """Add a new log key; checkpoints are signed by every active key until old ones are retired."""
    from api.storage import get_store

    entry = get_store().rotate_key()
    click.echo(f"added {entry.command['ops'][0]['key']} at seq {entry.seq}")


@log_key_group.command("retire")
@click.argument("verifier_key")
@with_appcontext
def log_key_retire(verifier_key: str) -> None:
    """Retire a log key (give its verifier key string)."""
    from api.storage import get_store

    entry = get_store().retire_key(verifier_key)
    click.echo(f"retired {verifier_key} at seq {entry.seq}")


COMMANDS = (init_command, serve_command, checkpoint_command, log_key_group)


def init_app(app: Flask) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)


cli = Group("ecoledger", commands=COMMANDS, help="The Chuan–Yu eco-rights ledger.")


def main() -> None:
    from api import create_app
    from api.settings import load_settings

    try:
        settings = load_settings()
    except SettingsError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(1)
    logging.config.dictConfig(logging_config(settings.log_level))
    cli.main(prog_name="ecoledger", obj=ScriptInfo(create_app=create_app, load_dotenv_defaults=False))

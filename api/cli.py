"""The ``ecoledger`` command line.

Every command reads the same settings as the service. Errors end with a one-line message and a
non-zero exit status, never a traceback.
"""

import json
import logging.config
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import ScriptInfo, with_appcontext

from api.client import TOKEN_ENV, ClientError
from api.logs import logging_config
from api.settings import SettingsError
from contracts.errors import Refused
from contracts.registry import ROLES
from ledger.logkeys import LogKeyError, all_keys
from ledger.store import LogError

FAILURES = (SettingsError, LogError, LogKeyError, OSError, ValueError, Refused, ClientError)


def one_line(error: Exception) -> str:
    """A failure as one line; a refusal as ``CODE: detail (op N)``."""
    if isinstance(error, Refused):
        text = f"{error.code}: {error.detail}" + ("" if error.op is None else f" (op {error.op})")
    else:
        text = str(error)
    return " ".join(text.split())


class _OneLineErrors:
    """Known failures end the command with one line and exit status 1, not a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FAILURES as error:
            raise click.ClickException(one_line(error)) from None


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
@click.option("--demo", is_flag=True, help="Fill the ledger with the demo data set first (see `ecoledger demo`).")
@with_appcontext
def serve_command(dev: bool, bind: str | None, workers: int | None, demo: bool) -> None:
    """Initialise if needed, then serve the HTTP API."""
    from dataclasses import replace

    from api.serve import GunicornServer
    from api.storage import initialise

    settings = _settings()
    settings = replace(settings, server_bind=bind or settings.server_bind,
                       server_workers=workers or settings.server_workers)
    initialise(settings)
    if demo:
        _seed_demo(f"http://{settings.server_bind}")
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


# -- principals ------------------------------------------------------------------------------


def _key_path(name: str):
    from api.client import principal_key_path
    from contracts.fields import NAME

    if not NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a principal's name: 1–64 lowercase letters, digits, '.', '_' or '-'")
    return principal_key_path(_settings().home, name)


def _signing_key(name: str):
    from api.client import load_key

    path = _key_path(name)
    if not path.exists():
        raise ValueError(f"no private key for {name} at {path} (`ecoledger principal add` creates one)")
    return load_key(path, name)


@click.group("principal", cls=Group)
def principal_group() -> None:
    """Register the principals who sign commands, and their API tokens."""


@principal_group.command("add", cls=Command)
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the principal may do.")
@click.option("--province", help="Its province (SC, CQ…): issuers, operators, finance bureaus, monitors.")
@click.option("--instrument", "instruments", multiple=True, metavar="CODE",
              help="An instrument an issuer issues (PDR, WR, EUR, CHTF, CQCER); repeat for several.")
@click.option("--display-name", default="", help="Its full name, e.g. 四川联合环境交易所.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def principal_add(name: str, role: str, province: str | None, instruments: tuple[str, ...],
                  display_name: str, as_json: bool) -> None:
    """Register NAME with a new key (as the ledger's own command) and print its first token once."""
    from api.auth import mint_token
    from api.demo import principal_op
    from api.storage import get_store
    from contracts.commands import submit_ledger
    from ledger.keys import SigningKey, write_private_key
    from ledger.projections import Principal

    path = _key_path(name)
    if path.exists():
        raise FileExistsError(f"{path} exists already; it is not overwritten")
    codes = [code.strip().upper() for item in instruments for code in item.split(",") if code.strip()]
    key = SigningKey.generate(name)
    op = principal_op(name, role, province.upper() if province else None, key, display_name=display_name,
                      instruments=codes)
    written = False
    try:
        with get_store().writer() as writer:
            if writer.session.get(Principal, name) is not None:
                raise Refused("PRINCIPAL_EXISTS", f"there is a principal {name!r} already")
            outcome = submit_ledger(writer, f"principal-add:{name}", [op])
            token = mint_token(writer.session, name)
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_private_key(path, key.private_key)
            written = True
    except BaseException:
        if written:
            path.unlink(missing_ok=True)
        raise
    if as_json:
        click.echo(json.dumps({"name": name, "role": role, "province": op.get("province"), "token": token,
                               "private_key_path": str(path.resolve()), "verifier_key": str(key.verifier)},
                              ensure_ascii=False))
        return
    account = outcome.results[0].get("account")
    where = f", {op['province']}" if op.get("province") else ""
    click.echo(f"added principal {name} ({role}{where}) at seq {outcome.seq}"
               + (f"; its account is {account}" if account else ""))
    click.echo(f"private key:  {path.resolve()}")
    click.echo(f"verifier key: {key.verifier}")
    click.echo(f"token:        {token}")
    click.echo("The token is shown this once; only its hash is stored. `ecoledger principal token` mints another.")


@principal_group.command("token", cls=Command)
@click.argument("name")
@with_appcontext
def principal_token(name: str) -> None:
    """Mint another API token for NAME and print it (once)."""
    from api.auth import mint_token
    from api.storage import get_store
    from ledger.projections import Principal

    with get_store().reader() as session:
        if session.get(Principal, name) is None:
            raise Refused("UNKNOWN_PRINCIPAL", f"there is no principal {name!r}")
        token = mint_token(session, name)
        session.commit()
    click.echo(token)


@principal_group.command("list", cls=Command)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@with_appcontext
def principal_list(as_json: bool) -> None:
    """List the principals with their roles, provinces and current keys."""
    from sqlalchemy import select

    from api.storage import get_store
    from contracts.principals import current_key, instruments_of
    from ledger.projections import Principal

    with get_store().reader() as session:
        rows = [{"name": p.name, "role": p.role, "province": p.province, "instruments": instruments_of(p),
                 "display_name": p.display_name, "key": current_key(session, p.name).verifier,
                 "added_seq": p.added_seq}
                for p in session.exec(select(Principal).order_by(Principal.added_seq, Principal.name)).scalars()]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no principals yet: `ecoledger principal add NAME --role admin` registers the first")
    for row in rows:
        extra = " ".join(filter(None, [row["province"] or "", ",".join(row["instruments"]), row["display_name"]]))
        click.echo(f"{row['name']:<16} {row['role']:<9} {extra}".rstrip())


# -- commands --------------------------------------------------------------------------------


def _read_command(document: object, actor: str) -> tuple[str | None, object]:
    """A command file: a list of ops, or a command object ``{"id"?, "actor"?, "ops"}``."""
    if isinstance(document, list):
        return None, document
    if isinstance(document, dict) and "ops" in document and not set(document) - {"id", "actor", "ops"}:
        if document.get("actor", actor) != actor:
            raise ValueError(f"the file's command is {document['actor']}'s, not {actor}'s")
        return document.get("id"), document["ops"]
    raise ValueError("the file holds a JSON list of ops or a command object {\"id\"?, \"ops\": [...]}")


@click.command("submit", cls=Command)
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--as", "actor", required=True, metavar="NAME",
              help="The principal who signs, with its key in <home>/keys/principals/NAME.pem.")
@click.option("--url", help="Submit to the server at URL; without it, append to the local ledger directly.")
@click.option("--token", envvar=TOKEN_ENV, help=f"The API token for --url (default: ${TOKEN_ENV}).")
@with_appcontext
def submit_command(file, actor: str, url: str | None, token: str | None) -> None:
    """Sign the command in FILE (JSON; - reads stdin) as NAME, submit it, print the outcome."""
    from api.client import Client, new_command_id, sign_command

    try:
        document = json.load(file)
    except ValueError as error:
        raise ValueError(f"{file.name} is not JSON: {error}") from None
    command_id, ops = _read_command(document, actor)
    key = _signing_key(actor)
    if url:
        if not token:
            raise ValueError(f"--url needs a token: give --token or set {TOKEN_ENV}")
        body = Client(url, token=token, name=actor, key=key).submit(ops, command_id=command_id)
    else:
        from api.storage import get_store
        from contracts.commands import submit

        envelope = sign_command(key, {"id": command_id or new_command_id(actor), "actor": actor, "ops": ops})
        with get_store().writer() as writer:
            body = submit(writer, command=envelope["command"], signature=envelope["signature"]).as_dict()
    click.echo(json.dumps(body, ensure_ascii=False, indent=2))


def _jobs():
    from api.storage import get_store
    from settlement.jobs import Jobs

    settings = _settings()
    return Jobs(store=get_store(), grace_days=settings.settlement_grace_days,
                overdue_days=settings.clearing_overdue_days, clock=lambda: datetime.now(UTC))


def _run_job(name: str, *, quiet_when_idle: str | None = None) -> None:
    record = _jobs().run(name)
    detail = quiet_when_idle if quiet_when_idle and record.detail == "nothing to do" else record.detail
    click.echo(detail)
    if record.status == "failed":
        raise click.ClickException(f"job {name} failed; it will be retried at its next run")


@click.command("expire", cls=Command)
@with_appcontext
def expire_command() -> None:
    """Expire, as the ledger, the trades past their hold and the assets past their validity now
    (the same as `ecoledger jobs run expiry`)."""
    _run_job("expiry", quiet_when_idle="nothing to expire")


@click.command("scheduler", cls=Command)
@with_appcontext
def scheduler_command() -> None:
    """Run the scheduled jobs (checkpoints, expiry, settlement, clearing) until stopped.

    Run it as its own process, never inside web workers. Two schedulers on one database are
    safe: every job is idempotent.
    """
    from api.storage import initialise
    from settlement.jobs import build_scheduler

    settings = _settings()
    initialise(settings)
    scheduler = build_scheduler(_jobs(), settings.schedules)
    logging.getLogger("ecoledger.jobs").info("scheduler started", extra={"schedules": settings.schedules})
    scheduler.start()


@click.group("jobs", cls=Group, invoke_without_command=True)
@click.pass_context
@with_appcontext
def jobs_group(ctx: click.Context) -> None:
    """List the scheduled jobs with their last and next runs."""
    if ctx.invoked_subcommand is not None:
        return
    from api.storage import get_store
    from settlement.jobs import JOB_NAMES, SHANGHAI, last_runs, next_runs

    settings = _settings()
    last = last_runs(get_store())
    upcoming = next_runs(settings.schedules, datetime.now(UTC))
    for name in JOB_NAMES:
        run = last.get(name)
        when = "never" if run is None else (
            f"{run.started_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M:%S} {run.status}")
        click.echo(f"{name:<11} {settings.schedules[name]:<14} last: {when:<28} "
                   f"next: {upcoming[name]:%Y-%m-%d %H:%M} (Asia/Shanghai)")


@jobs_group.command("run", cls=Command)
@click.argument("name", type=click.Choice(["checkpoint", "expiry", "settlement", "clearing"]))
@with_appcontext
def jobs_run(name: str) -> None:
    """Run one job now."""
    _run_job(name)


@click.group("settle", cls=Group)
def settle_group() -> None:
    """Compensation settlement: preview a statement offline, or compute statements now."""


@settle_group.command("preview", cls=Command)
@click.option("--agreement", "agreement_file", required=True, type=click.File("r", encoding="utf-8"),
              help="The agreement document (JSON).")
@click.option("--monitoring", "monitoring_file", required=True, type=click.File("r", encoding="utf-8"),
              help="A JSON list of monitoring.submit bodies (section, samples), reference periods included.")
@click.option("--period", required=True, help="YYYY-MM for monthly agreements, YYYY for yearly ones.")
@click.option("--json", "as_json", is_flag=True, help="Print the statement as JSON.")
def settle_preview(agreement_file, monitoring_file, period: str, as_json: bool) -> None:
    """Compute a statement without a server or a database."""
    from settlement.preview import preview, render

    statement = preview(agreement_file, monitoring_file, period)
    click.echo(json.dumps(statement, ensure_ascii=False, indent=2) if as_json else render(statement))


@settle_group.command("run", cls=Command)
@click.option("--agreement", help="Only this agreement (with --period).")
@click.option("--period", help="Only this period (with --agreement); it need not be past its grace days.")
@with_appcontext
def settle_run(agreement: str | None, period: str | None) -> None:
    """Append the statements that are due now (the settlement job), or one given statement."""
    if (agreement is None) != (period is None):
        raise click.UsageError("give both --agreement and --period, or neither")
    if agreement is None:
        _run_job("settlement")
        return
    from api.storage import get_store
    from settlement.service import settle

    with get_store().writer() as writer:
        outcome = settle(writer, agreement, period)
    click.echo("the latest statement already says the same: nothing appended" if outcome is None
               else f"statement {outcome.results[0]['statement']} appended at seq {outcome.seq}")


# -- auditors -----------------------------------------------------------------------------------


@click.command("export", cls=Command)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@with_appcontext
def export_command(directory: Path) -> None:
    """Write a self-contained export bundle of the log and its projections to DIRECTORY."""
    from api.storage import get_store
    from ledger.export import export_bundle
    from settlement.audit import AUDITED_TABLES

    summary = export_bundle(get_store(), directory, AUDITED_TABLES)
    click.echo(f"exported {summary.size} entries, {summary.checkpoints} checkpoints and "
               f"{len(summary.rows)} projections ({sum(summary.rows.values())} rows) to {summary.directory}")


def _source(location: str, token: str | None):
    from ledger.sources import DirectorySource, HttpSource

    return HttpSource(location, token=token) if "://" in location else DirectorySource(Path(location))


@click.command("verify", cls=Command)
@click.argument("source")
@click.option("--since", "since", type=click.File("r", encoding="utf-8"),
              help="A checkpoint kept from an earlier visit: prove the log only grew, check only new entries.")
@click.option("--key", "keys", multiple=True, metavar="VERIFIER_KEY",
              help="Trust only these log keys (default: the keys the source names).")
@click.option("--token", envvar=TOKEN_ENV, help="An auditor's token, to compare a server's projections too.")
@click.option("--workers", type=click.IntRange(min=1), help="Processes for signature checks (default: every core).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify_command(source: str, since, keys: tuple[str, ...], token: str | None, workers: int | None,
                   as_json: bool) -> None:
    """Verify a bundle directory or a server URL; exit 0 if intact, 1 if not."""
    from settlement.auditor import audit, audit_since

    origin = _source(source, token)
    if since is not None:
        report = audit_since(origin, since.read(), trusted_keys=list(keys) or None, workers=workers)
    else:
        with _progress(enabled=not as_json and sys.stderr.isatty()) as progress:
            report = audit(origin, trusted_keys=list(keys) or None, workers=workers, progress=progress)
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        _summary(report)
    if not report.ok:
        sys.exit(1)


class _progress:
    """A rich progress bar on a terminal; nothing elsewhere."""

    def __init__(self, *, enabled: bool):
        self.enabled = enabled

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), transient=True)
        self.bar.start()
        self.tasks: dict[str, int] = {}
        return self.update

    def update(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(stage, total=total)
        self.bar.update(self.tasks[stage], completed=done)

    def __exit__(self, *_):
        if self.enabled:
            self.bar.stop()


def _summary(report) -> None:
    verdict = "INTACT" if report.ok else "NOT INTACT"
    click.echo(f"{verdict}: {report.source}")
    click.echo(f"  log:          {report.origin or '?'}, {report.size} entries")
    if report.since is not None:
        click.echo(f"  since:        size {report.since} (consistency proven, new entries checked)")
    click.echo(f"  entries:      {report.entries_checked} checked (leaf hashes, tree, signatures, keys)")
    click.echo(f"  checkpoints:  {report.checkpoints_checked} verified")
    if report.tables_compared or report.tables_not_available:
        click.echo(f"  projections:  {len(report.tables_compared)} replayed and equal"
                   + (f"; not available: {', '.join(report.tables_not_available)}"
                      if report.tables_not_available else ""))
    click.echo(f"  time:         {report.seconds} s")
    if report.error:
        click.echo(f"  problem:      {report.error}")


@click.command("receipt", cls=Command)
@click.argument("seq", type=click.IntRange(min=0))
@click.option("--out", type=click.File("w", encoding="utf-8"), default="-", help="Where to write it (default: stdout).")
@with_appcontext
def receipt_command(seq: int, out) -> None:
    """Write an inclusion receipt (C2SP tlog-proof) for entry SEQ."""
    from api.storage import get_store
    from ledger.receipt import make_store_receipt

    out.write(make_store_receipt(get_store(), seq))


@click.command("verify-receipt", cls=Command)
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--key", "keys", multiple=True, required=True, metavar="VERIFIER_KEY", help="The log's verifier key.")
def verify_receipt_command(file, keys: tuple[str, ...]) -> None:
    """Check an inclusion receipt offline with the log's key; exit 0 if it holds, 1 if not."""
    from ledger.errors import VerificationError
    from ledger.receipt import open_receipt

    try:
        entry, checkpoint = open_receipt(file.read(), list(keys))
    except VerificationError as error:
        click.echo(f"NOT VALID: {error}", err=True)
        sys.exit(1)
    ops = ", ".join(op.get("op", "?") for op in entry["command"].get("ops", []))
    click.echo(f"VALID: entry {entry['seq']} ({entry['command'].get('actor')}: {ops}, {entry['time']}) "
               f"is in {checkpoint.origin} at tree size {checkpoint.size}")


# -- the demo --------------------------------------------------------------------------------


def _seed_demo(url: str) -> None:
    from api.demo import run_demo
    from api.storage import get_store

    result = run_demo(get_store(), _settings().home)
    if result.appended:
        click.echo(f"demo: appended {result.appended} entries to the ledger in {result.home} "
                   f"(it has {result.size} now)")
    else:
        click.echo(f"demo: the data set is in the ledger in {result.home} already; nothing appended "
                   f"({result.size} entries)")
    click.echo(f"  {len(result.principals)} principals ({', '.join(result.principals)}), "
               f"{len(result.accounts)} enterprises, {len(result.assets)} assets")
    for line in result.compensation_lines():
        click.echo(f"  {line}")
    waiting = result.pending_trade_status == "pending"
    click.echo(f"  cross-province trade {result.pending_trade} "
               + ("waits for sc-exchange's trade.confirm" if waiting else f"is {result.pending_trade_status}"))
    if result.due_to_expire:
        click.echo(f"  past validity: {', '.join(result.due_to_expire)} (`ecoledger expire` expires it)")
    click.echo(f"  private keys: {result.keys_dir}/")
    click.echo(f"  API tokens:   {result.tokens_path} (mode 0600, demo only)")
    click.echo("  try it, with the server running:")
    click.echo(f"    curl -s '{url}/v1/log/entries?start=0&limit=3'")
    if waiting:
        click.echo(f"    TOKEN=$(jq -r '.principals[\"sc-exchange\"].token' {result.tokens_path})")
        click.echo(f"    echo '[{{\"op\": \"trade.confirm\", \"trade\": \"{result.pending_trade}\"}}]' > confirm.json")
        click.echo(f"    ecoledger submit confirm.json --as sc-exchange --url {url} --token \"$TOKEN\"")


@click.command("demo", cls=Command)
@with_appcontext
def demo_command() -> None:
    """Fill the ledger with a two-province demo data set (idempotent)."""
    from api.storage import initialise

    settings = _settings()
    initialise(settings)
    _seed_demo(f"http://{settings.server_bind}")


COMMANDS = (init_command, serve_command, checkpoint_command, log_key_group, principal_group, submit_command,
            scheduler_command, jobs_group, settle_group, export_command, verify_command, receipt_command,
            verify_receipt_command,
            expire_command, demo_command)


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

"""``POST /v1/commands`` and ``POST /v1/commands/batch``.

Every command is appended with its effects or refused with nothing appended. A refusal is a
problem with the contracts' stable code and the index of the failing op. A command that asks for
a settlement (``settlement.request``) has the statement appended right after it, in the same
transaction.
"""

import logging

from flask import request
from flask_smorest import Blueprint
from marshmallow import ValidationError
from sqlalchemy.exc import OperationalError

from api.auth import current_principal
from api.commands.schemas import BatchSchema, CommandBatch, CommandEnvelope, OutcomeSchema
from api.problems import Problem, problem_body
from api.storage import get_store
from contracts.commands import Outcome, submit
from contracts.errors import Refused
from ledger.store import LogWriter
from settlement.service import settle_requested

blp = Blueprint("commands", __name__, url_prefix="/v1/commands", description="Signed commands")
_log = logging.getLogger("ecoledger.commands")

CONFLICTS = frozenset({
    "DUPLICATE_COMMAND_ID", "ACCOUNT_EXISTS", "ASSET_EXISTS", "PRINCIPAL_EXISTS", "ALREADY_RELEASED",
    "ALREADY_REVERSED", "TRADE_NOT_PENDING", "INSUFFICIENT_BALANCE", "ACCOUNT_FROZEN", "SINK_RECEIVES_ONLY",
    "SERIALS_NOT_HELD", "HOLD_EXPIRED", "NOT_EXPIRED", "ASSET_EXPIRED", "IRREVERSIBLE", "NOTHING_TO_REVERSE",
    "AGREEMENT_EXISTS", "ALREADY_SIGNED", "ALREADY_CORRECTED", "STALE_STATEMENT", "ALREADY_SETTLED",
    "ALREADY_CLEARED", "ALREADY_CONFIRMED",
})
"""Refusals because of the ledger's state, not the request's shape: the same command may have been
fine a moment earlier (HTTP 409 Conflict)."""
FORBIDDEN = frozenset({"FORBIDDEN_ROLE", "FORBIDDEN_PROVINCE", "FORBIDDEN_INSTRUMENT", "ACTOR_MISMATCH"})


def refusal_status(code: str) -> int:
    if code == "BAD_SIGNATURE":
        return 401
    if code in FORBIDDEN:
        return 403
    if code in CONFLICTS:
        return 409
    return 422


def refusal_problem(refusal: Refused) -> Problem:
    extra = {"op": refusal.op} if refusal.op is not None else {}
    if refusal.errors:
        extra["errors"] = refusal.errors
    return Problem(refusal_status(refusal.code), refusal.code, refusal.detail, **extra)


def _json_body() -> object:
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        body = None
    if body is None:
        raise Problem(400, "INVALID_JSON", "the body must be a JSON document sent as application/json")
    return body


def _load(schema, body: object) -> dict:
    try:
        return schema().load(body)
    except ValidationError as error:
        field, messages = next(iter(error.normalized_messages().items()))
        raise Problem(422, "INVALID_BODY", f"{field}: {messages[0] if isinstance(messages, list) else messages}",
                      errors=error.normalized_messages()) from None


def _submit_one(writer: LogWriter, envelope: object, actor: str) -> Outcome:
    """Check that the caller signs for itself, then submit."""
    body = _load(CommandEnvelope, envelope)
    command = body["command"]
    if command.get("actor") != actor:
        raise Refused("ACTOR_MISMATCH", f"the token is {actor}'s; it cannot submit commands of {command.get('actor')!r}")
    with writer.savepoint():
        outcome = submit(writer, command=command, signature=body["signature"])
        settle_requested(writer, outcome)
    return outcome


def _command_keys(envelopes: list, actor: str) -> list[tuple[str, str]]:
    """The (actor, id) of each of the caller's commands in a batch, as far as they are well formed."""
    commands = (e.get("command") for e in envelopes if isinstance(e, dict))
    return [(actor, c["id"]) for c in commands
            if isinstance(c, dict) and c.get("actor") == actor and isinstance(c.get("id"), str)]


def _writer_errors(error: OperationalError) -> Problem:
    _log.warning("database busy", extra={"error_type": type(error.orig).__name__})
    return Problem(503, "UNAVAILABLE", "the ledger is busy; retry the same command, it is idempotent")


@blp.route("", methods=["POST"])
@blp.doc(requestBody={"content": {"application/json": {"schema": CommandEnvelope}}})
@blp.response(201, OutcomeSchema)
@blp.alt_response(200, schema=OutcomeSchema, description="the same command was appended before: its original answer")
def post_command():
    """Append one signed command."""
    principal = current_principal()
    envelope = _json_body()
    try:
        with get_store().writer() as writer:
            outcome = _submit_one(writer, envelope, principal.name)
    except Refused as refusal:
        raise refusal_problem(refusal) from None
    except OperationalError as error:
        raise _writer_errors(error) from None
    _log.info("command appended", extra={"actor": principal.name, "seq": outcome.seq, "replayed": outcome.replayed})
    return outcome.as_dict(), 200 if outcome.replayed else 201


@blp.route("/batch", methods=["POST"])
@blp.doc(requestBody={"content": {"application/json": {"schema": CommandBatch}}})
@blp.response(200, BatchSchema)
def post_batch():
    """Append signed commands in one transaction; each succeeds or fails on its own."""
    principal = current_principal()
    batch = _load(CommandBatch, _json_body())
    results = []
    try:
        with get_store().writer() as writer:
            writer.prefetch(_command_keys(batch["commands"], principal.name))
            for envelope in batch["commands"]:
                try:
                    outcome = _submit_one(writer, envelope, principal.name)
                    results.append({"status": 200 if outcome.replayed else 201, "body": outcome.as_dict()})
                except Refused as refusal:
                    problem = refusal_problem(refusal)
                    results.append({"status": problem.status, "body": problem_body(problem)})
                except Problem as problem:
                    results.append({"status": problem.status, "body": problem_body(problem)})
    except OperationalError as error:
        raise _writer_errors(error) from None
    _log.info("batch appended", extra={"actor": principal.name, "commands": len(results)})
    return {"results": results}

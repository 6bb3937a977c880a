"""Commands: check, sign-verify and apply them; the one way state changes.

:func:`submit` takes a command as its actor signed it and either appends it with its effects or
refuses it with nothing appended. :func:`apply_entry` is the deterministic part, shared with the
auditor's replay: given an entry, it applies every op to the projections or refuses.
"""

import json
import re
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError

from contracts import accounts, agreements, carbon, cash, clearing, principals, reverse, rights, trades  # noqa: F401  (they register their ops)
from contracts.agreement_document import validation_message
from contracts.context import Context
from contracts.errors import Refused
from contracts.principals import current_key
from contracts.registry import OPERATIONS
from ledger.encoding import b64decode, b64encode, canonical
from ledger.entry import LEDGER_ACTOR, Entry, SignedCommand
from ledger.errors import VerificationError
from ledger.keys import VerifierKey
from ledger.logkeys import LOG_OPS
from ledger.projections import CommandResult, Principal, PrincipalKey
from ledger.store import LogWriter
from sqlalchemy import select
from sqlmodel import Session

COMMAND_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")
MAX_OPS = 100


@dataclass(frozen=True, slots=True)
class Outcome:
    """An appended command: what ``POST /v1/commands`` answers."""

    seq: int
    leaf_hash: bytes
    entry: dict[str, Any]
    results: list[dict[str, Any]]
    replayed: bool = False
    """True when the same command was appended before and this is the original answer."""

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "leaf_hash": b64encode(self.leaf_hash), "entry": self.entry,
                "results": self.results}


def check_shape(command: object) -> None:
    if not isinstance(command, dict):
        raise Refused("INVALID_COMMAND", "the command must be a JSON object")
    if extra := set(command) - {"id", "actor", "ops"}:
        raise Refused("INVALID_COMMAND", f"unknown command fields: {', '.join(sorted(extra))}")
    for field in ("id", "actor"):
        if not isinstance(command.get(field), str):
            raise Refused("INVALID_COMMAND", f"the command's {field} must be a string")
    if not COMMAND_ID.fullmatch(command["id"]):
        raise Refused("INVALID_COMMAND", "the command id is 1–128 letters, digits or ._:@/+=- "
                                         "starting with a letter or digit")
    ops = command.get("ops")
    if not isinstance(ops, list) or not 1 <= len(ops) <= MAX_OPS:
        raise Refused("INVALID_COMMAND", f"ops must be a list of 1 to {MAX_OPS} operations")
    for index, op in enumerate(ops):
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            raise Refused("INVALID_COMMAND", "every op is an object with an \"op\" name", op=index)
    if _has_float(command):
        raise Refused("INVALID_COMMAND", "numbers in commands are integers; decimal quantities are strings")
    try:
        canonical(command)
    except ValueError as error:
        raise Refused("INVALID_COMMAND", f"the command cannot be canonicalised (RFC 8785): {error}") from None


def _has_float(value: object) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


def apply_entry(session: Session, entry: Entry) -> list[dict[str, Any]]:
    """Apply every op of an entry to the projections, or raise :class:`Refused`.

    The log's own ops (genesis, log keys) are applied by the log itself and answer ``{}``.
    """
    principal = None if entry.actor == LEDGER_ACTOR else session.get(Principal, entry.actor)
    ctx = Context(session=session, seq=entry.seq, time=entry.time, actor=entry.actor, principal=principal)
    results = []
    for index, op in enumerate(entry.command["ops"]):
        ctx.op_index = index
        try:
            results.append({} if op["op"] in LOG_OPS and principal is None else _apply_op(ctx, op))
            ctx.check_balances()
        except Refused as refusal:
            raise refusal.at(index) from None
    session.add(CommandResult(seq=entry.seq, results=json.dumps(results, ensure_ascii=False)))
    return results


def _apply_op(ctx: Context, op: dict) -> dict:
    operation = OPERATIONS.get(op["op"])
    if operation is None:
        raise Refused("UNKNOWN_OP", f"there is no operation {op['op']!r}")
    if ctx.role not in operation.roles:
        raise Refused("FORBIDDEN_ROLE", f"a {ctx.role} may not use {operation.name}")
    try:
        data = operation.loader.load(op)
    except ValidationError as error:
        raise Refused("INVALID_OP", f"{operation.name}: {validation_message(error)}",
                      errors=error.normalized_messages()) from None
    return operation.handler(ctx, data)


def submit(writer: LogWriter, *, command: object, signature: object) -> Outcome:
    """Append a principal's signed command with its effects, or refuse it appending nothing.

    The same (actor, id) with the same command answers the original outcome; with another
    command it is refused as ``DUPLICATE_COMMAND_ID``.
    """
    check_shape(command)
    principal = writer.session.get(Principal, command["actor"])
    if principal is None:
        raise Refused("UNKNOWN_ACTOR", f"there is no principal {command['actor']!r}")
    key = current_key(writer.session, principal.name).verifier
    earlier = writer.find(command["actor"], command["id"])
    if earlier is not None:
        original = _entry_dict(earlier)
        _verify_signature([original["key"], key], command, signature)
        return _replayed(writer.session, earlier, command)
    try:
        _verify_signature([key], command, signature)
    except Refused:
        raise _explain_bad_signature(writer.session, command, signature) from None
    signed = SignedCommand(command=command, signature=signature, key=key)
    with writer.savepoint():
        entry = writer.append(signed)
        results = apply_entry(writer.session, entry)
    return _fresh(entry, results)


def submit_ledger(writer: LogWriter, command_id: str, ops: list[dict]) -> Outcome:
    """Append a command of the ledger itself (expiry, principals added from the console…)."""
    earlier = writer.find(LEDGER_ACTOR, command_id)
    if earlier is not None:
        return _replayed(writer.session, earlier, {"id": command_id, "actor": LEDGER_ACTOR, "ops": ops})
    with writer.savepoint():
        entry = writer.append_ledger(command_id, ops)
        results = apply_entry(writer.session, entry)
    return _fresh(entry, results)


def _fresh(entry: Entry, results: list[dict]) -> Outcome:
    return Outcome(seq=entry.seq, leaf_hash=entry.leaf_hash, entry=_entry_dict(entry), results=results)


def _entry_dict(entry) -> dict[str, Any]:
    """The entry as its leaf encodes it, so every answer about it is the same JSON."""
    return json.loads(entry.leaf)


def _verify_signature(verifiers: list[str], command: dict, signature: object) -> None:
    """The signature must verify with one of ``verifiers``: the actor's current key, or for a
    repeated command the key its original entry names."""
    try:
        raw = b64decode(signature) if isinstance(signature, str) else b""
    except ValueError:
        raw = b""
    message = canonical(command)
    for verifier in verifiers:
        try:
            VerifierKey.parse(verifier).verify(raw, message)
            return
        except VerificationError:
            continue
    raise Refused("BAD_SIGNATURE", f"the signature does not verify with {command['actor']}'s key")


def _explain_bad_signature(session: Session, command: dict, signature: object) -> Refused:
    """A signature by a key the actor held before a rotation is an expired key, said so."""
    for key in session.exec(select(PrincipalKey).where(PrincipalKey.principal == command["actor"],
                                                       PrincipalKey.until_seq.is_not(None))).scalars():
        try:
            _verify_signature([key.verifier], command, signature)
        except Refused:
            continue
        return Refused("BAD_SIGNATURE", f"signed with {command['actor']}'s key that expired at seq {key.until_seq}; "
                                        "sign with its current key")
    return Refused("BAD_SIGNATURE", f"the signature does not verify with {command['actor']}'s key")


def _replayed(session: Session, earlier, command: dict) -> Outcome:
    entry = _entry_dict(earlier)
    if canonical(entry["command"]) != canonical(command):
        raise Refused("DUPLICATE_COMMAND_ID",
                      f"command {command['id']!r} of {command['actor']} was appended at seq {entry['seq']} "
                      "with other content")
    stored = session.get(CommandResult, entry["seq"])
    return Outcome(seq=entry["seq"], leaf_hash=earlier.leaf_hash, entry=entry,
                   results=json.loads(stored.results) if stored else [], replayed=True)

"""Checkpoint, keys, entries and proofs: everything an auditor fetches to check the log."""

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from api.log.schemas import (CheckpointPageQuery, CheckpointPageSchema, ConsistencyProofSchema, ConsistencyQuery, EntryPageQuery, EntryPageSchema,
                             InclusionProofSchema, InclusionQuery, LogEntrySchema, LogKeysSchema)
from api.problems import Problem
from api.storage import get_store
from ledger.checkpoint import parse_body
from ledger.encoding import b64encode
from ledger.export import key_registry
from ledger.note import split_note
from ledger.receipt import make_store_receipt
from ledger.store import LogError, StoredEntry

blp = Blueprint("log", __name__, url_prefix="/v1/log", description="The signed, append-only log")


def _entry_body(stored: StoredEntry) -> dict:
    return {"seq": stored.seq, "leaf_hash": b64encode(stored.leaf_hash), "entry": stored.entry}


def _checkpoint_size() -> int:
    text, _ = split_note(get_store().checkpoint())
    return parse_body(text).size


def _out_of_range(error: LogError) -> Problem:
    return Problem(400, "OUT_OF_RANGE", str(error))


@blp.route("/checkpoint")
@blp.doc(responses={200: {"description": "the latest checkpoint as a C2SP signed note",
                          "content": {"text/plain": {"schema": {"type": "string"}}}}})
def checkpoint():
    """The latest signed checkpoint, exactly the note bytes."""
    return Response(get_store().checkpoint(), mimetype="text/plain", content_type="text/plain; charset=utf-8")


@blp.route("/keys")
@blp.response(200, LogKeysSchema)
def keys():
    """The log's verifier keys, newest first, and every principal's keys with their validity."""
    with get_store().reader() as session:
        return key_registry(session)


@blp.route("/entries/<seq>")
@blp.response(200, LogEntrySchema)
def entry(seq: str):
    """One entry with its leaf hash."""
    if not seq.isdigit():
        raise Problem(400, "INVALID_PARAMETER", f"seq must be a non-negative integer, not {seq!r}")
    try:
        return _entry_body(get_store().entry(int(seq)))
    except LogError as error:
        raise _out_of_range(error) from None


@blp.route("/entries")
class Entries(MethodView):
    @blp.arguments(EntryPageQuery, location="query", error_status_code=400)
    @blp.response(200, EntryPageSchema)
    def get(self, query: dict):
        """Entries in order from ``start``, at most ``limit`` (capped) per page."""
        store = get_store()
        size = store.size()
        start = query["start"]
        if start > size:
            raise Problem(400, "OUT_OF_RANGE", f"start {start} is beyond the log's size {size}")
        limit = min(query["limit"], current_app.config["ECOLEDGER"].entries_page_limit)
        page = store.entries(start, limit)
        following = start + len(page)
        return {"entries": [_entry_body(e) for e in page],
                "next": following if following < size else None}


@blp.route("/checkpoints")
class Checkpoints(MethodView):
    @blp.arguments(CheckpointPageQuery, location="query", error_status_code=400)
    @blp.response(200, CheckpointPageSchema)
    def get(self, query: dict):
        """Every checkpoint the log has served, smallest tree first, from tree size ``start``."""
        limit = min(query["limit"], current_app.config["ECOLEDGER"].entries_page_limit)
        stored = get_store().checkpoints(query["start"], limit + 1)
        page = [{"size": c.size, "note": c.note} for c in stored[:limit]]
        return {"checkpoints": page, "next": stored[limit].size if len(stored) > limit else None}


@blp.route("/receipts/<seq>")
@blp.doc(responses={200: {"description": "a C2SP tlog-proof of the entry in the latest checkpoint, "
                                         "carrying the entry as its extra data",
                          "content": {"text/plain": {"schema": {"type": "string"}}}}})
def receipt(seq: str):
    """An inclusion receipt for entry ``seq``, checkable offline with the log's key."""
    if not seq.isdigit():
        raise Problem(400, "INVALID_PARAMETER", f"seq must be a non-negative integer, not {seq!r}")
    try:
        text = make_store_receipt(get_store(), int(seq))
    except LogError as error:
        raise _out_of_range(error) from None
    return Response(text, mimetype="text/plain", content_type="text/plain; charset=utf-8")


@blp.route("/proofs/inclusion")
class Inclusion(MethodView):
    @blp.arguments(InclusionQuery, location="query", error_status_code=400)
    @blp.response(200, InclusionProofSchema)
    def get(self, query: dict):
        """The RFC 9162 inclusion proof of entry ``seq`` in the tree of ``size``."""
        size = query.get("size") or _checkpoint_size()
        try:
            hashes = get_store().inclusion_proof(query["seq"], size)
        except LogError as error:
            raise _out_of_range(error) from None
        return {"seq": query["seq"], "tree_size": size, "hashes": [b64encode(h) for h in hashes]}


@blp.route("/proofs/consistency")
class Consistency(MethodView):
    @blp.arguments(ConsistencyQuery, location="query", error_status_code=400)
    @blp.response(200, ConsistencyProofSchema)
    def get(self, query: dict):
        """The RFC 9162 consistency proof from tree size ``first`` to ``second``."""
        second = query.get("second") or _checkpoint_size()
        try:
            hashes = get_store().consistency_proof(query["first"], second)
        except LogError as error:
            raise _out_of_range(error) from None
        return {"first": query["first"], "second": second, "hashes": [b64encode(h) for h in hashes]}

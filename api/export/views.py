"""``GET /v1/export/projections/<table>``: a projection's rows, one JSON object per line in
primary-key order, streamed — what ``ecoledger verify URL`` compares with its replay.
Auditors and admins only."""

import json

from flask import Response, stream_with_context
from flask_smorest import Blueprint

from api.auth import require_roles
from api.problems import Problem
from api.storage import get_store
from ledger.export import rows
from settlement.audit import AUDITED_TABLES

blp = Blueprint("export", __name__, url_prefix="/v1/export", description="Projections for auditors")
TABLES = {table.__tablename__: table for table in AUDITED_TABLES}


@blp.route("/projections")
@blp.doc(responses={200: {"description": "the names of the exported tables"}})
def tables():
    """The tables an auditor can compare with a replay of the log."""
    require_roles("auditor", "admin")
    return {"tables": sorted(TABLES)}


@blp.route("/projections/<table>")
@blp.doc(responses={200: {"description": "rows as JSON lines",
                          "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}})
def projection(table: str):
    """One projection table, streamed as JSON lines in primary-key order."""
    require_roles("auditor", "admin")
    if table not in TABLES:
        raise Problem(404, "NOT_FOUND", f"there is no projection {table!r}; see /v1/export/projections")

    def lines():
        with get_store().reader() as session:
            for row in rows(session, TABLES[table]):
                yield json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n"

    return Response(stream_with_context(lines()), mimetype="application/x-ndjson")

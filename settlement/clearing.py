"""Appending clearing runs: every open obligation of a pool up to a cut-off, netted per pair.

Idempotent by construction: the command id names the pool and cut-off, cleared obligations are
never open again, and runs are appended by the log's single writer — so a second run of the same
cut-off, an overlapping cut-off or a second scheduler clears nothing twice.
"""

from contracts.clearing import open_obligations
from contracts.commands import Outcome, submit_ledger
from ledger.store import LogWriter
from settlement.netting import net


def clear(writer: LogWriter, pool: str, cutoff: str) -> Outcome | None:
    """Append the clearing run of ``pool`` up to ``cutoff`` (RFC 3339 UTC), if anything is open."""
    obligations = open_obligations(writer.session, pool, cutoff)
    if not obligations:
        return None
    netting = net((o.debtor, o.creditor, o.amount) for o in obligations)
    op = {"op": "clearing.run", "pool": pool, "cutoff": cutoff,
          "obligations": [o.id for o in obligations],
          "gross": [{"from": a, "to": b, "amount": amount} for (a, b), amount in netting.gross.items()],
          "payments": [{"from": a, "to": b, "amount": amount} for a, b, amount in netting.payments]}
    return submit_ledger(writer, f"clearing:{pool}:{cutoff}", [op])

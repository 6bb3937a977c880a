"""Bilateral netting: for each pair of parties, both directions summed and netted into one
payment from the net payer to the net receiver. Amounts are integers (fen)."""

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Netting:
    gross: dict[tuple[str, str], int]
    """Sum owed by the first party of each ordered pair to the second."""
    payments: list[tuple[str, str, int]]
    """At most one per unordered pair: (payer, payee, amount > 0), sorted by pair."""


def net(obligations: Iterable[tuple[str, str, int]]) -> Netting:
    gross: dict[tuple[str, str], int] = {}
    for debtor, creditor, amount in obligations:
        if debtor == creditor or amount <= 0:
            raise ValueError(f"an obligation needs two parties and a positive amount: {debtor} → {creditor} {amount}")
        gross[(debtor, creditor)] = gross.get((debtor, creditor), 0) + amount
    payments = []
    for a, b in sorted({tuple(sorted(pair)) for pair in gross}):
        balance = gross.get((a, b), 0) - gross.get((b, a), 0)
        if balance > 0:
            payments.append((a, b, balance))
        elif balance < 0:
            payments.append((b, a, -balance))
    return Netting(gross=dict(sorted(gross.items())), payments=payments)

"""Reads of watershed compensation and clearing over HTTP (specs/agreements.md,
specs/ledger-api.md §5), scoped to the caller's role and province."""

from api.compensation.views import blp

__all__ = ["blp"]

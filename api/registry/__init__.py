"""Reads of the registry over HTTP (specs/ledger-api.md §5), scoped to the caller's province."""

from api.registry.views import blp

__all__ = ["blp"]

"""Signed commands over HTTP (specs/ledger-api.md §4)."""

from api.commands.views import blp

__all__ = ["blp"]

"""The verifiable log over HTTP (specs/log.md §4)."""

from api.log.views import blp

__all__ = ["blp"]

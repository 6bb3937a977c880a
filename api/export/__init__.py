"""The projections, streamed for auditors (the HTTP side of `ecoledger export`)."""

from api.export.views import blp

__all__ = ["blp"]

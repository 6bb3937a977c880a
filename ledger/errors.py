"""The one exception type of the log's verification functions."""


class VerificationError(Exception):
    """Something an auditor checks did not hold: the message says exactly what."""


class LogError(ValueError):
    """A request the log cannot answer (a seq or size outside the tree, a duplicate command…)."""

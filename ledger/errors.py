"""The one exception type of the log's verification functions."""


class VerificationError(Exception):
    """Something an auditor checks did not hold: the message says exactly what, and ``seq``
    which entry, when it is about one."""

    def __init__(self, message: str, seq: int | None = None):
        super().__init__(message)
        self.seq = seq


class LogError(ValueError):
    """A request the log cannot answer (a seq or size outside the tree, a duplicate command…)."""

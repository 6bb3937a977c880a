"""The one exception type of the log's verification functions."""


class VerificationError(Exception):
    """Something an auditor checks did not hold: the message says exactly what."""

"""Refusals: a command that breaks a rule is refused with a stable code and appends nothing."""


class Refused(Exception):
    """A rule said no. ``code`` is stable (``INSUFFICIENT_BALANCE``); ``op`` is the index of
    the failing operation in its command, when one failed."""

    def __init__(self, code: str, detail: str, *, op: int | None = None,
                 errors: dict | None = None):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.op = op
        self.errors = errors

    def at(self, op: int) -> "Refused":
        if self.op is None:
            self.op = op
        return self

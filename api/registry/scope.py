"""What the calling principal may read (OWASP API1 and API5), decided in one place.

``admin`` and ``auditor`` read everything. Every other role (``operator``, ``issuer``,
``finance``, ``monitor``) is provincial: it reads the accounts of its own province only, and the
records that touch them. An account's province is the first part of its id (``SC:ENT:…``),
which is how the contracts build and check ids, so a record's parties can be scoped by id alone.
See :mod:`api.registry.views` for the rules per endpoint.
"""

from dataclasses import dataclass

from sqlalchemy import false, or_

from api.auth import current_principal
from ledger.projections import Principal

GLOBAL_ROLES = frozenset({"admin", "auditor"})


def province_of(account_id: str) -> str:
    return account_id.split(":", 1)[0]


@dataclass(frozen=True, slots=True)
class Scope:
    principal: Principal

    @classmethod
    def current(cls) -> "Scope":
        return cls(current_principal())

    @property
    def sees_all(self) -> bool:
        return self.principal.role in GLOBAL_ROLES

    @property
    def province(self) -> str | None:
        """The one province this principal reads, or None when it reads them all."""
        return None if self.sees_all else self.principal.province

    def sees_account(self, account_id: str) -> bool:
        return self.sees_all or (self.principal.province is not None
                                 and province_of(account_id) == self.principal.province)

    def sees_any(self, *account_ids: str | None) -> bool:
        """A record with these parties is visible when at least one of them is."""
        return any(a is not None and self.sees_account(a) for a in account_ids)

    def accounts_clause(self, *columns):
        """A SQL condition: at least one of the account-id ``columns`` is of a visible account.
        None when everything is visible."""
        if self.sees_all:
            return None
        if self.principal.province is None:  # a provincial role always has one; be safe anyway
            return false()
        prefix = f"{self.principal.province}:%"
        return or_(*(column.like(prefix) for column in columns))

    def restrict(self, statement, *columns):
        clause = self.accounts_clause(*columns)
        return statement if clause is None else statement.where(clause)

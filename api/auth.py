"""Who is calling: ``Authorization: Bearer <token>`` → a principal.

Tokens are 256-bit random secrets shown once; only their SHA-256 is stored (``principal_tokens``,
outside the log: credentials are not ledger state). Tokens never appear in logs or errors.
"""

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from flask import g, request
from sqlmodel import Session

from api.problems import Problem
from api.storage import get_store
from ledger.projections import Principal, PrincipalToken

TOKEN_PREFIX = "ecl_"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def mint_token(session: Session, principal: str) -> str:
    """Create a new API token for ``principal``; the caller shows it once and commits."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(PrincipalToken(token_hash=token_hash(token), principal=principal, created_at=datetime.now(UTC)))
    return token


def current_principal() -> Principal:
    """The authenticated principal of this request, or a 401 problem."""
    if "principal" in g:
        return g.principal
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "UNAUTHENTICATED", "send Authorization: Bearer <token>")
    digest = token_hash(token.strip())
    with get_store().reader() as session:
        stored = session.get(PrincipalToken, digest)
        principal = session.get(Principal, stored.principal) if stored else None
        if principal is None or not hmac.compare_digest(stored.token_hash, digest):
            raise Problem(401, "UNAUTHENTICATED", "the token is not valid")
        session.expunge(principal)
    g.principal = principal
    return principal


def require_roles(*roles: str) -> Principal:
    principal = current_principal()
    if principal.role not in roles:
        raise Problem(403, "FORBIDDEN_ROLE", f"a {principal.role} may not read this")
    return principal

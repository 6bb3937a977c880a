"""The projections' tables: state derived from the log, updated in the entry's transaction.

Every row here is a deterministic function of the entries in order; replaying the log from
entry 0 into an empty database must reproduce each table exactly. (``principal_tokens`` is the
one exception: API credentials are not state of the ledger and never enter the log.)
Quantities are integers of the instrument's smallest unit; money is in fen.
"""

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Text
from sqlmodel import Field, SQLModel


def _big(**kwargs) -> Column:
    return Column(BigInteger, nullable=kwargs.pop("nullable", False), **kwargs)


class Principal(SQLModel, table=True):
    __tablename__ = "principals"

    name: str = Field(primary_key=True, max_length=64)
    role: str = Field(max_length=16)
    province: str | None = Field(default=None, max_length=2)
    instruments: str = Field(default="[]", sa_column=Column(Text, nullable=False),
                             description="JSON list of instrument codes an issuer may issue")
    display_name: str = Field(default="", sa_column=Column(Text, nullable=False))
    added_seq: int = Field(sa_column=_big())


class PrincipalKey(SQLModel, table=True):
    """Which verifier key signed for a principal from which seq (``until_seq`` excluded)."""

    __tablename__ = "principal_keys"

    verifier: str = Field(primary_key=True, max_length=200)
    principal: str = Field(index=True, max_length=64)
    from_seq: int = Field(sa_column=_big())
    until_seq: int | None = Field(default=None, sa_column=_big(nullable=True))


class PrincipalToken(SQLModel, table=True):
    """SHA-256 of an API token. Not part of the log: credentials are not ledger state."""

    __tablename__ = "principal_tokens"

    token_hash: str = Field(primary_key=True, max_length=64)
    principal: str = Field(index=True, max_length=64)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class Account(SQLModel, table=True):
    __tablename__ = "accounts"

    id: str = Field(primary_key=True, max_length=80)
    province: str = Field(index=True, max_length=2)
    kind: str = Field(max_length=4)
    name: str = Field(default="", sa_column=Column(Text, nullable=False))
    opened_seq: int = Field(sa_column=_big())
    frozen_by: str | None = Field(default=None, max_length=40,
                                  description="the freeze that blocks the whole account, if any")


class Asset(SQLModel, table=True):
    __tablename__ = "assets"

    id: str = Field(primary_key=True, max_length=120)
    instrument: str = Field(index=True, max_length=8)
    province: str = Field(max_length=2)
    attributes: str = Field(sa_column=Column(Text, nullable=False), description="JSON object")
    decimals: int
    issuer: str = Field(max_length=64)
    defined_seq: int = Field(sa_column=_big())
    expires_on: str | None = Field(default=None, max_length=10,
                                   description="the last day of validity (Asia/Shanghai), if any")
    expired_seq: int | None = Field(default=None, sa_column=_big(nullable=True))
    next_serial: int = Field(default=1, sa_column=_big())


class Balance(SQLModel, table=True):
    """What an account holds of an asset; available = total − frozen − pledged − held."""

    __tablename__ = "balances"

    account: str = Field(primary_key=True, max_length=80)
    asset: str = Field(primary_key=True, max_length=120, index=True)
    total: int = Field(default=0, sa_column=_big())
    frozen: int = Field(default=0, sa_column=_big())
    pledged: int = Field(default=0, sa_column=_big())
    held: int = Field(default=0, sa_column=_big())


class Posting(SQLModel, table=True):
    """One movement of one entry: the entries' postings of an asset always sum to zero."""

    __tablename__ = "postings"
    __table_args__ = (Index("ix_postings_account_seq", "account", "seq"),)

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    n: int = Field(primary_key=True)
    op: int
    account: str = Field(max_length=80)
    asset: str = Field(max_length=120, index=True)
    amount: int = Field(sa_column=_big())


class Hold(SQLModel, table=True):
    """A freeze, a pledge or a pending trade's hold on an account's quantity of an asset."""

    __tablename__ = "holds"
    __table_args__ = (Index("ix_holds_account", "account", "kind"),)

    id: str = Field(primary_key=True, max_length=40)
    kind: str = Field(max_length=8, description="freeze, pledge or trade")
    account: str = Field(max_length=80)
    asset: str | None = Field(default=None, max_length=120, description="null: the whole account")
    quantity: int = Field(default=0, sa_column=_big())
    details: str = Field(default="{}", sa_column=Column(Text, nullable=False), description="JSON object")
    created_seq: int = Field(sa_column=_big())
    released_seq: int | None = Field(default=None, sa_column=_big(nullable=True))


class SerialBlock(SQLModel, table=True):
    """Who holds serials ``start..end`` (inclusive) of a carbon asset."""

    __tablename__ = "serial_blocks"
    __table_args__ = (Index("ix_serial_blocks_account", "account", "asset"),)

    asset: str = Field(primary_key=True, max_length=120)
    start: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    end: int = Field(sa_column=_big())
    account: str = Field(max_length=80)


class SerialMove(SQLModel, table=True):
    """A block of serials moving: the trace of every serial from issuance to its sink."""

    __tablename__ = "serial_moves"
    __table_args__ = (Index("ix_serial_moves_asset", "asset", "start"),)

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    n: int = Field(primary_key=True)
    asset: str = Field(max_length=120)
    start: int = Field(sa_column=_big())
    end: int = Field(sa_column=_big())
    from_account: str = Field(max_length=80)
    to_account: str = Field(max_length=80)
    kind: str = Field(max_length=16, description="the op that moved them")


class Trade(SQLModel, table=True):
    __tablename__ = "trades"

    id: str = Field(primary_key=True, max_length=40)
    seq: int = Field(sa_column=_big())
    asset: str = Field(max_length=120)
    quantity: int = Field(sa_column=_big())
    price: str = Field(max_length=32)
    amount: int = Field(sa_column=_big(), description="fen")
    seller: str = Field(max_length=80)
    buyer: str = Field(max_length=80)
    seller_exchange: str | None = Field(default=None, max_length=80,
                                        description="the seller's exchange; set by its operator")
    buyer_exchange: str | None = Field(default=None, max_length=80,
                                       description="the buyer's exchange; set by its operator")
    status: str = Field(index=True, max_length=10,
                        description="settled, pending, confirmed, cancelled or expired")
    expires_at: str | None = Field(default=None, max_length=32)
    closed_seq: int | None = Field(default=None, sa_column=_big(nullable=True))


class Obligation(SQLModel, table=True):
    """What one account owes another, to be cleared between provinces."""

    __tablename__ = "obligations"
    __table_args__ = (Index("ix_obligations_pool_status", "pool", "status"),)

    id: str = Field(primary_key=True, max_length=40)
    pool: str = Field(max_length=16, description="trade or compensation")
    debtor: str = Field(max_length=80)
    creditor: str = Field(max_length=80)
    amount: int = Field(sa_column=_big(), description="fen")
    source_seq: int = Field(sa_column=_big())
    created_at: str = Field(default="", max_length=32, description="the source entry's time")
    status: str = Field(default="open", max_length=10, description="open, cleared or settled")
    clearing: str | None = Field(default=None, max_length=40)


class CommandResult(SQLModel, table=True):
    """What each op of an entry produced, as answered to its actor (JSON list)."""

    __tablename__ = "command_results"

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    results: str = Field(sa_column=Column(Text, nullable=False))


class Reversal(SQLModel, table=True):
    __tablename__ = "reversals"

    reversed_seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    by_seq: int = Field(sa_column=_big())


PROJECTIONS = (Principal, PrincipalKey, Account, Asset, Balance, Posting, Hold, SerialBlock,
               SerialMove, Trade, Obligation, CommandResult, Reversal)
"""The tables replay must reproduce, in the order an export writes them."""


class Agreement(SQLModel, table=True):
    """A version of a compensation agreement: proposed, then active once every party signed."""

    __tablename__ = "agreements"

    id: str = Field(primary_key=True, max_length=64)
    version: int = Field(primary_key=True)
    document: str = Field(sa_column=Column(Text, nullable=False), description="the document as proposed, JSON")
    digest: str = Field(max_length=44, description="base64 SHA-256 of JCS(document)")
    period: str = Field(max_length=5)
    term_from: str = Field(max_length=10)
    term_to: str = Field(max_length=10)
    proposed_by: str = Field(max_length=64)
    proposed_seq: int = Field(sa_column=_big())
    status: str = Field(default="proposed", max_length=10, description="proposed or active")
    activated_seq: int | None = Field(default=None, sa_column=_big(nullable=True))


class AgreementSignature(SQLModel, table=True):
    __tablename__ = "agreement_signatures"

    agreement: str = Field(primary_key=True, max_length=64)
    version: int = Field(primary_key=True)
    party: str = Field(primary_key=True, max_length=2)
    principal: str = Field(max_length=64)
    seq: int = Field(sa_column=_big())


class MonitoringSubmission(SQLModel, table=True):
    """Samples of one section; a correction is a new submission naming the one it replaces."""

    __tablename__ = "monitoring_submissions"
    __table_args__ = (Index("ix_monitoring_section", "section", "superseded_by"),)

    id: str = Field(primary_key=True, max_length=40)
    section: str = Field(max_length=64)
    submitted_by: str = Field(max_length=64)
    seq: int = Field(sa_column=_big())
    samples: str = Field(sa_column=Column(Text, nullable=False), description="JSON list of samples")
    first_date: str = Field(max_length=10)
    last_date: str = Field(max_length=10)
    corrects: str | None = Field(default=None, max_length=40)
    superseded_by: str | None = Field(default=None, max_length=40)


class Statement(SQLModel, table=True):
    """A settlement statement appended by the ledger; a later one may supersede it."""

    __tablename__ = "statements"
    __table_args__ = (Index("ix_statements_agreement_period", "agreement", "period"),)

    id: str = Field(primary_key=True, max_length=40)
    agreement: str = Field(max_length=64)
    version: int
    period: str = Field(max_length=7)
    seq: int = Field(sa_column=_big())
    body: str = Field(sa_column=Column(Text, nullable=False), description="the statement, JSON")
    supersedes: str | None = Field(default=None, max_length=40)
    superseded_by: str | None = Field(default=None, max_length=40)


PROJECTIONS = PROJECTIONS + (Agreement, AgreementSignature, MonitoringSubmission, Statement)


class ClearingRun(SQLModel, table=True):
    """One clearing of a pool up to a cut-off: the obligations it covers and the net payments."""

    __tablename__ = "clearing_runs"

    id: str = Field(primary_key=True, max_length=40)
    pool: str = Field(max_length=16)
    cutoff: str = Field(max_length=32, description="RFC 3339 UTC: obligations created up to here")
    seq: int = Field(sa_column=_big())
    time: str = Field(max_length=32, description="when the run was appended")
    body: str = Field(sa_column=Column(Text, nullable=False), description="obligations, gross, payments; JSON")
    status: str = Field(default="pending", max_length=10, description="pending or settled")
    settled_seq: int | None = Field(default=None, sa_column=_big(nullable=True))


class ClearingPayment(SQLModel, table=True):
    """A net payment of a clearing run, waiting for both parties' confirmations."""

    __tablename__ = "clearing_payments"
    __table_args__ = (Index("ix_clearing_payments_run", "run"),)

    id: str = Field(primary_key=True, max_length=48)
    run: str = Field(max_length=40)
    payer: str = Field(max_length=80)
    payee: str = Field(max_length=80)
    amount: int = Field(sa_column=_big(), description="fen")
    payer_confirmed_by: str | None = Field(default=None, max_length=64)
    payee_confirmed_by: str | None = Field(default=None, max_length=64)
    settled_seq: int | None = Field(default=None, sa_column=_big(nullable=True))


PROJECTIONS = PROJECTIONS + (ClearingRun, ClearingPayment)

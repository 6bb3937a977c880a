"""Clearing runs and their payments; obligations remember when they arose.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('clearing_payments',
    sa.Column('id', sa.String(length=48), nullable=False),
    sa.Column('run', sa.String(length=40), nullable=False),
    sa.Column('payer', sa.String(length=80), nullable=False),
    sa.Column('payee', sa.String(length=80), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('payer_confirmed_by', sa.String(length=64), nullable=True),
    sa.Column('payee_confirmed_by', sa.String(length=64), nullable=True),
    sa.Column('settled_seq', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_clearing_payments_run', 'clearing_payments', ['run'], unique=False)
    op.create_table('clearing_runs',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('pool', sa.String(length=16), nullable=False),
    sa.Column('cutoff', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('time', sa.String(length=32), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('settled_seq', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.add_column('obligations', sa.Column('created_at', sa.String(length=32), nullable=False, server_default=''))

"""Compensation agreements, their signatures, monitoring submissions, settlement statements.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agreement_signatures',
    sa.Column('agreement', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('party', sa.String(length=2), nullable=False),
    sa.Column('principal', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('agreement', 'version', 'party')
    )
    op.create_table('agreements',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('digest', sa.String(length=44), nullable=False),
    sa.Column('period', sa.String(length=5), nullable=False),
    sa.Column('term_from', sa.String(length=10), nullable=False),
    sa.Column('term_to', sa.String(length=10), nullable=False),
    sa.Column('proposed_by', sa.String(length=64), nullable=False),
    sa.Column('proposed_seq', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('activated_seq', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id', 'version')
    )
    op.create_table('monitoring_submissions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('section', sa.String(length=64), nullable=False),
    sa.Column('submitted_by', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('samples', sa.Text(), nullable=False),
    sa.Column('first_date', sa.String(length=10), nullable=False),
    sa.Column('last_date', sa.String(length=10), nullable=False),
    sa.Column('corrects', sa.String(length=40), nullable=True),
    sa.Column('superseded_by', sa.String(length=40), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_monitoring_section', 'monitoring_submissions', ['section', 'superseded_by'], unique=False)
    op.create_table('statements',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('agreement', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('supersedes', sa.String(length=40), nullable=True),
    sa.Column('superseded_by', sa.String(length=40), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_statements_agreement_period', 'statements', ['agreement', 'period'], unique=False)

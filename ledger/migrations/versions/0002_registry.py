"""The registry's projections: principals, accounts, assets, balances, postings, holds,
serial blocks and their moves, trades, obligations, command results, reversals.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sa.String(length=80), nullable=False),
    sa.Column('province', sa.String(length=2), nullable=False),
    sa.Column('kind', sa.String(length=4), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('opened_seq', sa.BigInteger(), nullable=False),
    sa.Column('frozen_by', sa.String(length=40), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_accounts_province'), 'accounts', ['province'], unique=False)
    op.create_table('assets',
    sa.Column('id', sa.String(length=120), nullable=False),
    sa.Column('instrument', sa.String(length=8), nullable=False),
    sa.Column('province', sa.String(length=2), nullable=False),
    sa.Column('attributes', sa.Text(), nullable=False),
    sa.Column('decimals', sa.Integer(), nullable=False),
    sa.Column('issuer', sa.String(length=64), nullable=False),
    sa.Column('defined_seq', sa.BigInteger(), nullable=False),
    sa.Column('expires_on', sa.String(length=10), nullable=True),
    sa.Column('expired_seq', sa.BigInteger(), nullable=True),
    sa.Column('next_serial', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_assets_instrument'), 'assets', ['instrument'], unique=False)
    op.create_table('balances',
    sa.Column('account', sa.String(length=80), nullable=False),
    sa.Column('asset', sa.String(length=120), nullable=False),
    sa.Column('total', sa.BigInteger(), nullable=False),
    sa.Column('frozen', sa.BigInteger(), nullable=False),
    sa.Column('pledged', sa.BigInteger(), nullable=False),
    sa.Column('held', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('account', 'asset')
    )
    op.create_index(op.f('ix_balances_asset'), 'balances', ['asset'], unique=False)
    op.create_table('command_results',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('results', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    op.create_table('holds',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('account', sa.String(length=80), nullable=False),
    sa.Column('asset', sa.String(length=120), nullable=True),
    sa.Column('quantity', sa.BigInteger(), nullable=False),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('created_seq', sa.BigInteger(), nullable=False),
    sa.Column('released_seq', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_holds_account', 'holds', ['account', 'kind'], unique=False)
    op.create_table('obligations',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('pool', sa.String(length=16), nullable=False),
    sa.Column('debtor', sa.String(length=80), nullable=False),
    sa.Column('creditor', sa.String(length=80), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('source_seq', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('clearing', sa.String(length=40), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_obligations_pool_status', 'obligations', ['pool', 'status'], unique=False)
    op.create_table('postings',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('op', sa.Integer(), nullable=False),
    sa.Column('account', sa.String(length=80), nullable=False),
    sa.Column('asset', sa.String(length=120), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('seq', 'n')
    )
    op.create_index('ix_postings_account_seq', 'postings', ['account', 'seq'], unique=False)
    op.create_index(op.f('ix_postings_asset'), 'postings', ['asset'], unique=False)
    op.create_table('principal_keys',
    sa.Column('verifier', sa.String(length=200), nullable=False),
    sa.Column('principal', sa.String(length=64), nullable=False),
    sa.Column('from_seq', sa.BigInteger(), nullable=False),
    sa.Column('until_seq', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('verifier')
    )
    op.create_index(op.f('ix_principal_keys_principal'), 'principal_keys', ['principal'], unique=False)
    op.create_table('principal_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('principal', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_index(op.f('ix_principal_tokens_principal'), 'principal_tokens', ['principal'], unique=False)
    op.create_table('principals',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('province', sa.String(length=2), nullable=True),
    sa.Column('instruments', sa.Text(), nullable=False),
    sa.Column('display_name', sa.Text(), nullable=False),
    sa.Column('added_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('reversals',
    sa.Column('reversed_seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('by_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('reversed_seq')
    )
    op.create_table('serial_blocks',
    sa.Column('asset', sa.String(length=120), nullable=False),
    sa.Column('start', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('end', sa.BigInteger(), nullable=False),
    sa.Column('account', sa.String(length=80), nullable=False),
    sa.PrimaryKeyConstraint('asset', 'start')
    )
    op.create_index('ix_serial_blocks_account', 'serial_blocks', ['account', 'asset'], unique=False)
    op.create_table('serial_moves',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('asset', sa.String(length=120), nullable=False),
    sa.Column('start', sa.BigInteger(), nullable=False),
    sa.Column('end', sa.BigInteger(), nullable=False),
    sa.Column('from_account', sa.String(length=80), nullable=False),
    sa.Column('to_account', sa.String(length=80), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('seq', 'n')
    )
    op.create_index('ix_serial_moves_asset', 'serial_moves', ['asset', 'start'], unique=False)
    op.create_table('trades',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('asset', sa.String(length=120), nullable=False),
    sa.Column('quantity', sa.BigInteger(), nullable=False),
    sa.Column('price', sa.String(length=32), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('seller', sa.String(length=80), nullable=False),
    sa.Column('buyer', sa.String(length=80), nullable=False),
    sa.Column('seller_exchange', sa.String(length=80), nullable=True),
    sa.Column('buyer_exchange', sa.String(length=80), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('expires_at', sa.String(length=32), nullable=True),
    sa.Column('closed_seq', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_trades_status'), 'trades', ['status'], unique=False)

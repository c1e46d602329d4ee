"""supervision orders for undecided handovers

Revision ID: supervision_0002
Revises: supervision_0001
Create Date: 2026-11-26 06:55:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = 'supervision_0002'
down_revision: Union[str, Sequence[str], None] = 'supervision_0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'handover_orders',
        sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column('lead_id', sa.UUID(as_uuid=False), nullable=False),
        sa.Column('origin_city', sa.String(length=20), nullable=False),
        sa.Column('origin_lead_id', sa.UUID(as_uuid=False), nullable=False),
        sa.Column('category', sa.String(length=50), nullable=False),
        sa.Column('squad', sa.String(length=100), nullable=True),
        sa.Column('title', sa.String(length=100), nullable=False),
        sa.Column('recipient', sa.String(length=100), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('outcome', sa.String(length=20), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                  nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('lead_id'),
        schema='supervision',
    )
    op.create_index('ix_handover_orders_status', 'handover_orders', ['status', 'issued_at'],
                    unique=False, schema='supervision')


def downgrade() -> None:
    op.drop_index('ix_handover_orders_status', table_name='handover_orders',
                  schema='supervision')
    op.drop_table('handover_orders', schema='supervision')

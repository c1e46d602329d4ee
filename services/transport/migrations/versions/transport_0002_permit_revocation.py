"""permit revocation: when and why

Revision ID: transport_0002
Revises: transport_0001
Create Date: 2026-11-26 06:52:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = 'transport_0002'
down_revision: Union[str, Sequence[str], None] = 'transport_0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('permits', sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
                  schema='transport')
    op.add_column('permits', sa.Column('revoke_reason', sa.Text(), nullable=True),
                  schema='transport')


def downgrade() -> None:
    op.drop_column('permits', 'revoke_reason', schema='transport')
    op.drop_column('permits', 'revoked_at', schema='transport')

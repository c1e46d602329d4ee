"""overdue level of handed-over leads waiting for a decision

Revision ID: leads_0003
Revises: leads_0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "leads_0003"
down_revision: str | None = "leads_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("leads", sa.Column("overdue_level", sa.Integer(), server_default="0",
                                     nullable=False), schema="leads")
    op.create_index("ix_leads_handover_waiting", "leads", ["submitted_at"], schema="leads",
                    postgresql_where=sa.text("origin_city IS NOT NULL AND status = 'routed' "
                                             "AND overdue_level < 2"))


def downgrade() -> None:
    op.drop_index("ix_leads_handover_waiting", table_name="leads", schema="leads")
    op.drop_column("leads", "overdue_level", schema="leads")

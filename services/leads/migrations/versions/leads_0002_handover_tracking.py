"""track what the partner city reports back on a handed-over lead

Revision ID: leads_0002
Revises: leads_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "leads_0002"
down_revision: str | None = "leads_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("leads", sa.Column("partner_status", sa.String(20)), schema="leads")
    op.add_column("leads", sa.Column("partner_lead_id", sa.UUID(as_uuid=False)), schema="leads")
    op.add_column("leads", sa.Column("partner_case_no", sa.String(40)), schema="leads")
    op.add_column("leads", sa.Column("partner_updated_at", sa.DateTime(timezone=True)),
                  schema="leads")


def downgrade() -> None:
    for column in ("partner_updated_at", "partner_case_no", "partner_lead_id", "partner_status"):
        op.drop_column("leads", column, schema="leads")

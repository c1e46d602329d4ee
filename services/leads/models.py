"""Tables of the leads service (schema `leads`)."""

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.common.tables import inbox_table, outbox_table

SCHEMA = "leads"
metadata = MetaData(schema=SCHEMA)

# Statuses: routed (awaiting the bureau's decision), merged (into an open duplicate),
# handed_over (to another city), accepted (a case opens), rejected (with a reason).
OPEN_STATUSES = ("routed", "handed_over", "accepted")

leads = Table(
    "leads",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("source_org_id", String(100), nullable=False),
    Column("source_org_name", String(200), nullable=False),
    Column("source_ref", String(200), nullable=False),
    Column("category", String(50), nullable=False),
    Column("description", Text, nullable=False),
    Column("lon", Float, nullable=False),  # WGS84
    Column("lat", Float, nullable=False),
    Column("crs_in", String(10), nullable=False),
    Column("lon_in", Float, nullable=False),  # as submitted
    Column("lat_in", Float, nullable=False),
    Column("address", String(500)),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("submitted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("evidence", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("camera", JSONB),
    Column("status", String(20), nullable=False),
    Column("city", String(20), nullable=False),  # jurisdiction: the city whose boundary holds it
    Column("squad", String(100)),
    Column("to_city", String(20)),
    Column("duplicate_of", UUID(as_uuid=False), ForeignKey(f"{SCHEMA}.leads.id")),
    Column("merged_count", Integer, nullable=False, server_default="0"),
    Column("origin_city", String(20)),
    Column("origin_lead_id", UUID(as_uuid=False)),
    Column("trace_id", String(64), nullable=False),
    Column("decided_at", DateTime(timezone=True)),
    Column("decided_by", String(200)),
    Column("decision_reason", Text),
    # A lead handed over to a partner city: what the partner reported back through the bridge.
    Column("partner_status", String(20)),  # received, accepted, rejected, case_opened, closed
    Column("partner_lead_id", UUID(as_uuid=False)),
    Column("partner_case_no", String(40)),
    Column("partner_updated_at", DateTime(timezone=True)),
    # A received handover waiting for our decision: the overdue level issued (1 reminder,
    # 2 escalation). A lead we handed over: the level the partner reported.
    Column("overdue_level", Integer, nullable=False, server_default="0"),
    UniqueConstraint("source_org_id", "source_ref", name="uq_leads_source_ref"),
    Index("ix_leads_dedup", "category", "occurred_at",
          postgresql_where=text("status IN ('routed', 'handed_over', 'accepted')")),
    Index("ix_leads_submitted", "submitted_at", "id"),
    Index("ix_leads_org_submitted", "source_org_id", "submitted_at", "id"),
    Index("ix_leads_status_submitted", "status", "submitted_at"),
    Index("ix_leads_handover_waiting", "submitted_at",
          postgresql_where=text("origin_city IS NOT NULL AND status = 'routed' "
                                "AND overdue_level < 2")),
)

lead_history = Table(
    "lead_history",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("lead_id", UUID(as_uuid=False), ForeignKey(f"{SCHEMA}.leads.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor", String(200), nullable=False),
    Column("action", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("detail", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Index("ix_lead_history_lead", "lead_id", "id"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

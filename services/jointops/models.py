"""Tables of the joint operations service (schema `jointops`).

The lead city holds the plan it owns (`owner`), every partner's answer and teams, every report
and what became of each violation. A partner holds a copy of the plan (kept up to date by the
lead city's `jointops.operation_published`), its own answer, teams, reports and violations.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
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
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from services.common.tables import inbox_table, outbox_table

SCHEMA = "jointops"
metadata = MetaData(schema=SCHEMA)

operations = Table(
    "operations",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("lead_city", String(20), nullable=False),
    Column("owner", Boolean, nullable=False),  # this city leads it
    Column("name", String(200), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("coordinator", String(200), nullable=False),
    Column("coordinator_org", String(100)),  # the lead city's organisation that plans it
    Column("partners", ARRAY(String(20)), nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("area", JSONB, nullable=False),  # GeoJSON Polygon, WGS84
    Column("area_spec", JSONB, nullable=False),
    Column("categories", ARRAY(String(50)), nullable=False),
    Column("checkpoints", JSONB, nullable=False),
    Column("briefing", Text),
    Column("status", String(20), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("trace_id", String(64), nullable=False),
    Index("ix_operations_window", "status", "starts_at", "ends_at"),
    Index("ix_operations_created", "created_at", "id"),
)

invitations = Table(
    "invitations",
    metadata,
    Column("operation_id", UUID(as_uuid=False), ForeignKey(f"{SCHEMA}.operations.id"),
           primary_key=True),
    Column("city", String(20), primary_key=True),
    Column("status", String(20), nullable=False),  # pending | accepted | declined
    Column("note", Text),
    Column("answered_by", String(200)),
    Column("answered_at", DateTime(timezone=True)),
    Column("revision_seen", Integer),
)

# Teams committed to checkpoints. `team_key` is the normalised name: a team of a city is one team
# whatever the spelling, and may hold only one operation at a time (the overlap rule).
teams = Table(
    "teams",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("operation_id", UUID(as_uuid=False), ForeignKey(f"{SCHEMA}.operations.id"),
           nullable=False),
    Column("city", String(20), nullable=False),
    Column("team_key", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("checkpoint", String(32), nullable=False),
    Column("people", Integer, nullable=False),
    Column("vehicles", Integer, nullable=False),
    Column("leader", String(200)),
    Column("contact", String(100)),
    Column("committed_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("operation_id", "city", "team_key", name="uq_teams_once"),
    Index("ix_teams_city_key", "city", "team_key"),
)

reports = Table(
    "reports",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("operation_id", UUID(as_uuid=False), ForeignKey(f"{SCHEMA}.operations.id"),
           nullable=False),
    Column("city", String(20), nullable=False),
    Column("checkpoint", String(32), nullable=False),
    Column("team", String(200)),
    Column("period_from", DateTime(timezone=True), nullable=False),
    Column("period_to", DateTime(timezone=True), nullable=False),
    Column("vehicles_checked", Integer, nullable=False),
    Column("note", Text),
    Column("filed_by", String(200), nullable=False),
    Column("filed_at", DateTime(timezone=True), nullable=False),
    Index("ix_reports_operation", "operation_id", "filed_at"),
)

violations = Table(
    "violations",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("report_id", UUID(as_uuid=False), ForeignKey(f"{SCHEMA}.reports.id"),
           nullable=False),
    Column("seq", Integer, nullable=False),  # its place in the report
    Column("operation_id", UUID(as_uuid=False), nullable=False),
    Column("reported_by", String(20), nullable=False),
    Column("checkpoint", String(32), nullable=False),
    Column("plate", String(20)),
    Column("category", String(50), nullable=False),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("city", String(20)),  # where it happened
    Column("address", String(500)),
    Column("description", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("evidence", JSONB, nullable=False),
    Column("state", String(20), nullable=False),
    Column("lead_id", UUID(as_uuid=False)),
    Column("handled_by", String(20)),
    Column("case_no", String(30)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_violations_operation", "operation_id"),
    Index("ix_violations_lead", "lead_id"),
)

# Transport alerts inside an active operation's area, on the operation's feed.
feed_alerts = Table(
    "feed_alerts",
    metadata,
    Column("operation_id", UUID(as_uuid=False), ForeignKey(f"{SCHEMA}.operations.id"),
           primary_key=True),
    Column("alert_id", UUID(as_uuid=False), primary_key=True),
    Column("city", String(20), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("plate", String(20), nullable=False),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("permit_id", String(64)),
    Column("attached_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

"""Tables of the transport service (schema `transport`).

`positions` is range-partitioned by day on `ts` (partitions are created on demand by the store and
dropped after `TRANSPORT_RETENTION_DAYS`); its primary key (plate, ts) makes a repeated point a
no-op.
"""

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Float,
    Index,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, REAL, UUID

from services.common.tables import inbox_table, outbox_table

SCHEMA = "transport"
metadata = MetaData(schema=SCHEMA)

companies = Table(
    "companies",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("city", String(20), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

vehicles = Table(
    "vehicles",
    metadata,
    Column("plate", String(16), primary_key=True),  # normalised: 苏E12345
    Column("plate_printed", String(20), nullable=False),
    Column("company_id", String(64)),
    Column("city", String(20), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

sites = Table(
    "sites",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(20), nullable=False),  # construction | disposal
    Column("city", String(20), nullable=False),
    Column("polygon", JSONB, nullable=False),  # GeoJSON Polygon, WGS84
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Permits and e-manifests (核准 + 电子联单). Sites are copied in (with their polygons), so a permit
# replicated from another city is complete on its own.
permits = Table(
    "permits",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("plate", String(16), nullable=False),
    Column("origin", JSONB, nullable=False),  # {id, name, kind, polygon}
    Column("disposal", JSONB, nullable=False),
    Column("corridor", JSONB, nullable=False),  # [[lon, lat], ...] WGS84
    Column("width_m", Float, nullable=False),
    Column("windows", JSONB, nullable=False),  # ["22:00-05:00", ...] local time
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date, nullable=False),
    Column("issuing_city", String(20), nullable=False),
    Column("may_enter", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("status", String(20), nullable=False, server_default="active"),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoke_reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_permits_plate", "plate"),
)

positions = Table(
    "positions",
    metadata,
    Column("plate", String(16), primary_key=True),
    Column("ts", DateTime(timezone=True), primary_key=True),
    Column("lon", Float, nullable=False),  # WGS84
    Column("lat", Float, nullable=False),
    Column("speed_kmh", REAL, nullable=False),
    Column("heading", REAL),
    postgresql_partition_by="RANGE (ts)",
)

vehicle_state = Table(
    "vehicle_state",
    metadata,
    Column("plate", String(16), primary_key=True),
    Column("last_ts", DateTime(timezone=True)),
    Column("state", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),  # deterministic per episode
    Column("kind", String(30), nullable=False),
    Column("plate", String(16), nullable=False),
    Column("permit_id", String(64)),
    Column("permit_city", String(20)),
    Column("city", String(20)),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("detail", JSONB, nullable=False),
    Column("evidence", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_alerts_plate_at", "plate", "at"),
)

trips = Table(
    "trips",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("plate", String(16), nullable=False),
    Column("permit_id", String(64)),
    Column("origin_site", String(64)),
    Column("end_site", String(64)),
    Column("status", String(20), nullable=False),  # travelling | closed | mismatch | abandoned
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("note", Text),
    Index("ix_trips_plate_started", "plate", "started_at"),
    Index("ix_trips_permit_started", "permit_id", "started_at"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

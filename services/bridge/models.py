"""Tables of the bridge (schema `bridge`)."""

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from services.common.tables import inbox_table, outbox_table

SCHEMA = "bridge"
metadata = MetaData(schema=SCHEMA)

partners = Table(
    "partners",
    metadata,
    Column("city", String(20), primary_key=True),
    Column("allowed_types", ARRAY(String(100)), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

partner_keys = Table(
    "partner_keys",
    metadata,
    Column("partner", String(20), primary_key=True),
    Column("kid", String(16), primary_key=True),
    Column("public_key", String(64), nullable=False),  # base64 of the raw 32 bytes
    Column("added_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
)

outbound = Table(
    "outbound",
    metadata,
    Column("event_id", UUID(as_uuid=False), primary_key=True),
    Column("destination", String(20), primary_key=True),
    Column("type", String(100), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("trace_id", String(64), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

inbound_stats = Table(
    "inbound_stats",
    metadata,
    Column("partner", String(20), primary_key=True),
    Column("received", BigInteger, nullable=False, server_default="0"),
    Column("refused", BigInteger, nullable=False, server_default="0"),
    Column("last_received_at", DateTime(timezone=True)),
    Column("last_refused_at", DateTime(timezone=True)),
    Column("last_refused_reason", String(40)),
)

refusals = Table(
    "refusals",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("partner", String(40), nullable=False),  # as claimed by the envelope
    Column("reason", String(40), nullable=False),
    Column("detail", Text, nullable=False),
    Column("event_id", String(64)),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

anchors = Table(
    "anchors",
    metadata,
    Column("partner", String(20), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("head_hash", String(64), nullable=False),
    Column("anchored_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("entries", Integer),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

"""Tables of the gateway (schema `gateway`): organisations, API keys (hashed), idempotency keys."""

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from services.common.tables import inbox_table, outbox_table

SCHEMA = "gateway"
metadata = MetaData(schema=SCHEMA)

organisations = Table(
    "organisations",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("roles", ARRAY(String(20)), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("org_id", UUID(as_uuid=False), ForeignKey(f"{SCHEMA}.organisations.id"),
           nullable=False),
    Column("prefix", String(24), nullable=False),  # shown to operators to tell keys apart
    Column("key_hash", String(64), nullable=False, unique=True),  # HMAC-SHA256(pepper, key)
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("org_id", UUID(as_uuid=False), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

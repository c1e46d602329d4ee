"""Tables every service has in its own schema: the outbox and the inbox."""

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID


def outbox_table(metadata: MetaData) -> Table:
    """Events waiting to be published; written in the same transaction as the state change."""
    return Table(
        "outbox",
        metadata,
        Column("seq", BigInteger, Identity(), primary_key=True),
        Column("event_id", UUID(as_uuid=False), nullable=False, unique=True),
        Column("type", String(100), nullable=False),
        Column("version", Integer, nullable=False),
        Column("exchange", String(100), nullable=False),
        Column("subject", String(200), nullable=False),
        Column("trace_id", String(64), nullable=False),
        Column("body", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("last_error", Text),
        Index("ix_outbox_pending", "seq", postgresql_where=text("published_at IS NULL")),
    )


def inbox_table(metadata: MetaData) -> Table:
    """Events already applied, per handler; the row commits with the handler's effect."""
    return Table(
        "inbox",
        metadata,
        Column("event_id", UUID(as_uuid=False), primary_key=True),
        Column("handler", String(200), primary_key=True),
        Column("type", String(100), nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )

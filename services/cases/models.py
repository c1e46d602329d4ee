"""Tables of the cases service (schema `cases`): squads, cases, their step history, the case-number
counters and the tamper-evident record."""

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
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSON, JSONB, UUID

from services.common.tables import inbox_table, outbox_table

SCHEMA = "cases"
metadata = MetaData(schema=SCHEMA)

# Squads (执法中队) and what they take: seeded from the squad zones and data/squads.json when the
# service starts (missing rows only), then edited as data.
squads = Table(
    "squads",
    metadata,
    Column("code", String(100), primary_key=True),
    Column("name_zh", String(200), nullable=False),
    Column("name_en", String(200), nullable=False),
    Column("town_zh", String(200), nullable=False),
    Column("town_en", String(200), nullable=False),
    Column("categories", ARRAY(String(50)), nullable=False),
    Column("covers", ARRAY(String(100)), nullable=False, server_default="{}"),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("demo", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# One counter per (city, year): case numbers are unique and increase (gaps are possible only if
# a transaction that took a number rolls back).
case_counters = Table(
    "case_counters",
    metadata,
    Column("city", String(20), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("last", BigInteger, nullable=False),
)

# Statuses: unassigned, assigned, in_progress, rectified, closed (see domain.py). Assignments,
# rounds and holds are the case's own lists, as its events carry them.
cases = Table(
    "cases",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("case_no", String(30), nullable=False, unique=True),
    Column("city", String(20), nullable=False),
    Column("lead_id", UUID(as_uuid=False), nullable=False, unique=True),  # one case per lead
    Column("origin_city", String(20)),
    Column("origin_lead_id", UUID(as_uuid=False)),
    Column("category", String(50), nullable=False),
    Column("description", Text, nullable=False),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("zone_squad", String(100)),
    Column("squad", String(100)),
    Column("town", String(200)),
    Column("status", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
    Column("close_mode", String(20)),
    Column("assignments", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("rounds", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("holds", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("feedback", JSONB),
    Column("penalty", JSONB),
    Column("trace_id", String(64), nullable=False),
    Index("ix_cases_opened", "opened_at", "id"),
    Index("ix_cases_squad_status", "squad", "status"),
    Index("ix_cases_status_opened", "status", "opened_at"),
)

case_history = Table(
    "case_history",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("case_id", UUID(as_uuid=False), ForeignKey(f"{SCHEMA}.cases.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("detail", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("record_seq", BigInteger, nullable=False),
    Index("ix_case_history_case", "case_id", "id"),
)

# The tamper-evident record: one hash chain per city (services/cases/chain.py). `payload` is
# JSON, not JSONB: the text is kept exactly as written, so what was hashed is what is read back.
record_entries = Table(
    "record_entries",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("case_id", UUID(as_uuid=False)),
    Column("kind", String(60), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("written_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_record_entries_case", "case_id", "seq"),
)

# The chain head, locked by every append: appends are serialised per city.
record_head = Table(
    "record_head",
    metadata,
    Column("chain", String(20), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Heads published as `evidence.anchored`.
record_anchors = Table(
    "record_anchors",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("event_id", UUID(as_uuid=False), nullable=False),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

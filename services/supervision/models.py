"""Tables of the supervision service (schema `supervision`): the cases it follows, their
deadlines, the notices issued, and the working calendar years loaded by operators."""

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
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.common.tables import inbox_table, outbox_table

SCHEMA = "supervision"
metadata = MetaData(schema=SCHEMA)

# The latest snapshot of each case (from case events; `version` orders them).
supervised_cases = Table(
    "supervised_cases",
    metadata,
    Column("case_id", UUID(as_uuid=False), primary_key=True),
    Column("case_no", String(30), nullable=False),
    Column("category", String(50), nullable=False),
    Column("status", String(20), nullable=False),
    Column("squad", String(100)),
    Column("town", String(200)),
    Column("origin_city", String(20)),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
    Column("version", Integer, nullable=False),
    Column("snapshot", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_supervised_cases_opened", "opened_at"),
    Index("ix_supervised_cases_closed", "closed_at"),
)

# One row per deadline of a case step. The timer finds due ones through `ix_deadlines_due`, a
# partial index on the next step's time of pending deadlines only: a tick costs the same with
# ten thousand or a million open deadlines. `steps` is the schedule of the notices
# (reminder, order, escalations); `steps_done` how many have been issued.
deadlines = Table(
    "deadlines",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("case_id", UUID(as_uuid=False), nullable=False),
    Column("case_no", String(30), nullable=False),
    Column("category", String(50), nullable=False),
    Column("kind", String(20), nullable=False),  # response | disposal
    Column("seq", Integer, nullable=False),
    Column("squad", String(100)),
    Column("town", String(200)),
    Column("origin_city", String(20)),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("limit_text", String(40), nullable=False),
    Column("limit_hours", Float, nullable=False),
    Column("due_at", DateTime(timezone=True)),  # null while paused
    Column("remind_at", DateTime(timezone=True)),
    Column("status", String(20), nullable=False),  # pending | met | cancelled
    Column("ended_at", DateTime(timezone=True)),
    Column("late", Boolean),
    Column("steps", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("steps_done", Integer, nullable=False, server_default="0"),
    Column("next_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("case_id", "kind", "seq", name="uq_deadlines_step"),
    Index("ix_deadlines_due", "next_at",
          postgresql_where=text("status = 'pending' AND next_at IS NOT NULL")),
    Index("ix_deadlines_case", "case_id"),
    Index("ix_deadlines_due_at", "due_at"),
)

# Reminder notices (提示单), supervision orders (督办单) and escalations, each issued once: the
# unique (deadline, kind, level) holds across replicas, restarts and redelivered events.
notices = Table(
    "notices",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("deadline_id", BigInteger, ForeignKey(f"{SCHEMA}.deadlines.id"), nullable=False),
    Column("case_id", UUID(as_uuid=False), nullable=False),
    Column("case_no", String(30), nullable=False),
    Column("deadline_kind", String(20), nullable=False),
    Column("kind", String(20), nullable=False),  # reminder | order | escalation
    Column("level", Integer, nullable=False),
    Column("title", String(100), nullable=False),
    Column("recipient", String(100), nullable=False),
    Column("squad", String(100)),
    Column("town", String(200)),
    Column("origin_city", String(20)),
    Column("scheduled_at", DateTime(timezone=True), nullable=False),  # when the step fell due
    Column("issued_at", DateTime(timezone=True), nullable=False),  # the service clock's now
    Column("due_at", DateTime(timezone=True)),  # the deadline's due time (null: paused)
    Column("status", String(20), nullable=False),  # issued (reminder) | open | answered | closed
    Column("answers", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("evaluations", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("issued_by", String(100), nullable=False),  # host:pid of the replica
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("deadline_id", "kind", "level", name="uq_notices_once"),
    Index("ix_notices_case", "case_id", "id"),
    Index("ix_notices_issued", "issued_at"),
)

# Supervision orders (督办单) for leads handed over to this city and left undecided past the
# escalation limit (the leads service's `lead.handover_overdue`, level 2): the handover goes to
# the supervision ladder before it is a case. Closed by the bureau's decision on the lead.
handover_orders = Table(
    "handover_orders",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("lead_id", UUID(as_uuid=False), nullable=False, unique=True),
    Column("origin_city", String(20), nullable=False),
    Column("origin_lead_id", UUID(as_uuid=False), nullable=False),
    Column("category", String(50), nullable=False),
    Column("squad", String(100)),
    Column("title", String(100), nullable=False),
    Column("recipient", String(100), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("status", String(20), nullable=False),  # open | closed
    Column("closed_at", DateTime(timezone=True)),
    Column("outcome", String(20)),  # accepted | rejected
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_handover_orders_status", "status", "issued_at"),
)

# Official schedules of years loaded by an operator (`liandong calendar load`).
calendar_years = Table(
    "calendar_years",
    metadata,
    Column("year", Integer, primary_key=True),
    Column("schedule", JSONB, nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("loaded_by", String(200), nullable=False),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

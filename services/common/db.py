"""Database unit of work per worker: one SQLAlchemy session, the outbox and the inbox together.

The three share one transaction on purpose: a state change, the events it causes (outbox) and the
record that an incoming event was applied (inbox) commit or roll back as one.

Commit happens *before* the entrypoint replies or acks (see `services.common.entrypoints`): nameko
calls `handle_result` (RPC reply, message ack) before `worker_result`, so a commit there would let
a caller see success, or the broker forget a message, before the effect is durable.
"""

from __future__ import annotations

import os
import sys
import uuid
import weakref
from datetime import UTC, datetime
from typing import Any

from nameko.extensions import DependencyProvider
from sqlalchemy import MetaData, create_engine, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from contracts.envelope import Event
from contracts.registry import load_all
from services.common.config import setting
from services.common.logging import get_logger
from services.common.outbox import OutboxRelay, PendingEvent

log = get_logger(__name__)
_green_patched = False


def make_engine(url: str | None = None, pool_size: int | None = None) -> Engine:
    """An engine for this process; cooperative with eventlet when the process is green."""
    global _green_patched
    if not _green_patched:
        import eventlet.patcher

        if eventlet.patcher.is_monkey_patched("socket"):
            from psycogreen.eventlet import patch_psycopg

            patch_psycopg()
        _green_patched = True
    return create_engine(
        url or setting("DATABASE_URL"),
        pool_size=int(pool_size or setting("DB_POOL_SIZE", 10)),
        max_overflow=int(setting("DB_MAX_OVERFLOW", 10)),
        # No ping per checkout (a round trip per worker): a connection broken by a database
        # restart fails one unit of work, which rolls back, and the pool then reconnects.
        pool_recycle=1800,
        # Multi-row inserts (a batch's inbox claims, outbox rows) in one round trip, not one
        # statement per row.
        executemany_mode="values_plus_batch",
        future=True,
    )


class UnitOfWork:
    """What a worker gets as `self.db`: `session`, `emit(...)` and `first_delivery(...)`."""

    def __init__(self, session: Session, tables, source: str, city: str, context_data: dict):
        self.session = session
        self._outbox, self._inbox = tables
        self.source = source
        self.city = city
        self._context = context_data
        self.emitted: list[str] = []
        self.finished = False
        self.committed = False

    @property
    def trace_id(self) -> str:
        """The worker's trace id (from the request or event), made once if there is none."""
        return self._context.setdefault("trace_id", uuid.uuid4().hex)

    def emit(self, type: str, subject: str, data: dict[str, Any], version: int | None = None,
             trace_id: str | None = None, city: str | None = None) -> Event:
        """Record an event in the outbox; it is published once the transaction commits."""
        registry = load_all()
        contract = registry.contract(type, version) if version else registry.latest(type)
        event = Event(
            type=type,
            version=contract.version,
            source=self.source,
            city=city or self.city,
            subject=str(subject),
            data=data,
            trace_id=trace_id or self.trace_id,
        )
        wire = event.to_wire()  # validates against the contract before anything is stored
        self.session.execute(insert(self._outbox), {
            "event_id": event.id, "type": event.type, "version": event.version,
            "exchange": contract.exchange, "subject": event.subject,
            "trace_id": event.trace_id, "body": wire,
        })
        self.emitted.append(PendingEvent(event.id, contract.exchange, wire))
        return event

    def forward(self, event: Event, exchange: str) -> None:
        """Record an event that happened elsewhere (same id, source and data) for publication on
        `exchange`, e.g. a partner's verified event re-published locally by the bridge."""
        wire = event.to_wire()
        self.session.execute(insert(self._outbox), {
            "event_id": event.id, "type": event.type, "version": event.version,
            "exchange": exchange, "subject": event.subject, "trace_id": event.trace_id,
            "body": wire,
        })
        self.emitted.append(PendingEvent(event.id, exchange, wire))

    def forward_raw(self, bodies: list[dict], exchange: str) -> None:
        """Record already-validated event envelopes, exactly as received, for publication."""
        if not bodies:
            return
        self.session.execute(insert(self._outbox), [{
            "event_id": b["id"], "type": b["type"], "version": b["version"],
            "exchange": exchange, "subject": b["subject"], "trace_id": b["trace_id"], "body": b,
        } for b in bodies])
        self.emitted.extend(PendingEvent(b["id"], exchange, b) for b in bodies)

    def first_deliveries(self, events: list[tuple[str, str]], handler: str) -> set[str]:
        """Batch inbox claim of (event_id, type) pairs: the ids not applied before."""
        if not events:
            return set()
        claim = pg_insert(self._inbox).on_conflict_do_nothing().returning(self._inbox.c.event_id)
        rows = self.session.execute(claim, [
            {"event_id": eid, "handler": handler, "type": etype} for eid, etype in events])
        return {str(r.event_id) for r in rows}

    def first_delivery(self, event: Event, handler: str) -> bool:
        """Claim `event` for `handler`: False when it was already applied (a redelivery)."""
        claim = pg_insert(self._inbox).on_conflict_do_nothing().returning(self._inbox.c.event_id)
        row = self.session.execute(
            claim, {"event_id": event.id, "handler": handler, "type": event.type}
        ).first()
        return row is not None


class Database(DependencyProvider):
    """Session-per-worker provider for one service schema, with the outbox relay running beside.

    Declare on a service as `db = Database(models.metadata)`; the metadata must hold the service's
    `outbox` and `inbox` tables (`services.common.tables`).
    """

    def __init__(self, metadata: MetaData):
        self.metadata = metadata

    def setup(self):
        schema = self.metadata.schema
        self.outbox = self.metadata.tables[f"{schema}.outbox"]
        self.inbox = self.metadata.tables[f"{schema}.inbox"]
        self.engine = make_engine()
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        self.city = setting("CITY")
        self.source = f"{self.city}/{self.container.service_name}"
        self.units: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.relay = OutboxRelay(self.engine, self.outbox, setting("AMQP_URI"))

    def start(self):
        self.relay.start(self.container.spawn_managed_thread)

    def stop(self):
        self.relay.stop()
        self.engine.dispose()

    def kill(self):
        self.relay.stop()

    def get_dependency(self, worker_ctx):
        unit = UnitOfWork(self.Session(), (self.outbox, self.inbox), self.source, self.city,
                          worker_ctx.context_data)
        self.units[worker_ctx] = unit
        return unit

    def finish(self, worker_ctx, exc_info):
        """Commit (or roll back on error) before the reply or ack; returns the final exc_info."""
        unit = self.units.get(worker_ctx)
        if unit is None or unit.finished:
            return exc_info
        unit.finished = True
        if exc_info is not None:
            unit.session.rollback()
            return exc_info
        try:
            unit.session.commit()
            unit.committed = True
        except Exception:
            unit.session.rollback()
            log.exception("commit failed")
            return sys.exc_info()
        if unit.emitted and setting("FAULT") == "crash_after_commit":
            log.error("fault injection: exiting between commit and publish")
            os._exit(17)
        return None

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        self.finish(worker_ctx, exc_info)

    def worker_teardown(self, worker_ctx):
        unit = self.units.pop(worker_ctx, None)
        if unit is None:
            return
        unit.session.close()
        if unit.committed and unit.emitted:
            # Fast path, after the reply: publish what this worker committed. Anything missed
            # here (crash, broker down) is published by the relay's sweep.
            self.relay.publish_committed(unit.emitted)


def finish_units_of_work(worker_ctx, exc_info):
    """Commit every Database unit of work of a worker; entrypoints call this before replying."""
    for provider in worker_ctx.container.dependencies:
        if isinstance(provider, Database):
            exc_info = provider.finish(worker_ctx, exc_info)
    return exc_info


def utcnow() -> datetime:
    return datetime.now(UTC)

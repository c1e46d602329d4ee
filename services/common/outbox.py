"""Outbox relay: publishes committed outbox rows with publisher confirms, then marks them sent.

Two paths:
- fast path: right after a worker commits, the events it wrote (still in memory) are published
  with confirms; their rows are marked sent in batches by a marker green thread (one UPDATE for
  many events);
- sweep: a loop claims rows still unmarked after a grace period (a crash between commit and
  publish, a broker outage) with `FOR UPDATE SKIP LOCKED`, so several replicas sweep without
  publishing a row twice between them.
Delivery is at-least-once: a crash after the broker confirmed but before the row was marked
republishes that event, and consumers' inbox drops the duplicate. Events of one worker keep their
order; the sweep publishes in commit (sequence) order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import eventlet
from eventlet.queue import LightQueue
from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.engine import Engine

from services.common.config import setting
from services.common.confirms import BatchPublisher, OutgoingMessage
from services.common.logging import get_logger
from services.common.metrics import EVENTS_PUBLISHED, OUTBOX_LAG, OUTBOX_PENDING

log = get_logger(__name__)

@dataclass(frozen=True)
class PendingEvent:
    event_id: str
    exchange: str
    body: dict


def outgoing(exchange: str, body: dict) -> OutgoingMessage:
    """An event envelope for `exchange`, routed by its type, with its trace id in the headers
    nameko turns into context data."""
    return OutgoingMessage(exchange, body["type"], body, headers={
        "nameko.trace_id": body["trace_id"], "liandong.event_id": body["id"]},
        message_id=body["id"])


class OutboxRelay:
    def __init__(self, engine: Engine, outbox, amqp_uri: str):
        self.engine = engine
        self.outbox = outbox
        self.batch_publisher = BatchPublisher(amqp_uri)
        self.interval = float(setting("OUTBOX_SWEEP_SECONDS", 1.0))
        self.grace = float(setting("OUTBOX_GRACE_SECONDS", 5.0))
        self.batch = int(setting("OUTBOX_BATCH", 500))
        self._marks: LightQueue = LightQueue()
        self._running = False
        ob = outbox
        self._mark = (update(ob).where(ob.c.event_id.in_(bindparam("ids", expanding=True)))
                      .where(ob.c.published_at.is_(None)).values(published_at=func.now()))

    # lifecycle -----------------------------------------------------------
    def start(self, spawn) -> None:
        self._running = True
        spawn(self._sweep_forever, identifier="outbox-sweep")
        spawn(self._mark_forever, identifier="outbox-mark")

    def stop(self) -> None:
        self._running = False
        self._flush_marks()

    def _sweep_forever(self) -> None:
        while self._running:
            try:
                published = self.sweep()
                if published:
                    log.info("outbox sweep published", count=published)
            except Exception:
                log.exception("outbox sweep failed; retrying")
            eventlet.sleep(self.interval)

    def _mark_forever(self) -> None:
        while self._running:
            eventlet.sleep(0.05)
            try:
                self._flush_marks()
            except Exception:
                log.exception("outbox marking failed; the sweep will republish those rows")

    def _flush_marks(self) -> None:
        ids = []
        while not self._marks.empty():
            ids.append(self._marks.get_nowait())
        if ids:
            with self.engine.begin() as conn:
                conn.execute(self._mark, {"ids": ids})

    # publishing ----------------------------------------------------------
    def publish_committed(self, events: list[PendingEvent]) -> int:
        """Fast path: publish events a worker just committed (one wait for all their confirms);
        mark them sent in the background. On failure the sweep publishes them, in order."""
        try:
            self.batch_publisher.publish_many([outgoing(e.exchange, e.body) for e in events])
        except Exception:
            log.exception("outbox fast path failed; the sweep will publish",
                          events=len(events))
            return 0
        now = datetime.now(UTC)
        for event in events:
            EVENTS_PUBLISHED.labels(event.body["type"]).inc()
            OUTBOX_LAG.observe((now - datetime.fromisoformat(
                event.body["time"].replace("Z", "+00:00"))).total_seconds())
            self._marks.put(event.event_id)
        return len(events)

    def sweep(self) -> int:
        """Publish every row left unmarked for longer than the grace period."""
        total = 0
        while True:
            count = self._claim_and_publish()
            total += count
            if count < self.batch:
                break
        with self.engine.connect() as conn:
            pending = conn.execute(
                select(func.count()).select_from(self.outbox).where(
                    self.outbox.c.published_at.is_(None)
                )
            ).scalar_one()
        OUTBOX_PENDING.set(pending)
        return total

    def _claim_and_publish(self) -> int:
        ob = self.outbox
        query = (
            select(ob.c.seq, ob.c.exchange, ob.c.body, ob.c.created_at, ob.c.type)
            .where(ob.c.published_at.is_(None))
            .where(ob.c.created_at < func.now() - text(f"interval '{self.grace} seconds'"))
            .order_by(ob.c.seq)
            .limit(self.batch)
            .with_for_update(skip_locked=True)
        )
        with self.engine.begin() as conn:
            rows = conn.execute(query).all()
            if not rows:
                return 0
            sent, error = [], None
            try:
                self.batch_publisher.publish_many([outgoing(r.exchange, r.body) for r in rows])
                sent = [r.seq for r in rows]
            except Exception as exc:  # broker down: nothing marked, the next sweep retries
                error = exc
            for row in rows[: len(sent)]:
                EVENTS_PUBLISHED.labels(row.type).inc()
            if sent:
                now = conn.execute(select(func.now())).scalar_one()
                conn.execute(update(ob).where(ob.c.seq.in_(sent)).values(published_at=now))
                for row in rows[: len(sent)]:
                    OUTBOX_LAG.observe((now - row.created_at).total_seconds())
            if error is not None:
                conn.execute(
                    update(ob)
                    .where(ob.c.seq.in_([r.seq for r in rows]))
                    .values(attempts=ob.c.attempts + 1, last_error=str(error)[:1000])
                )
        if error is not None:
            raise error
        return len(sent)

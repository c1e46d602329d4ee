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
from kombu import Exchange
from nameko.amqp.publish import Publisher
from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.engine import Engine

from services.common.config import setting
from services.common.logging import get_logger
from services.common.metrics import EVENTS_PUBLISHED, OUTBOX_LAG, OUTBOX_PENDING

log = get_logger(__name__)

PERSISTENT = 2


@dataclass(frozen=True)
class PendingEvent:
    event_id: str
    exchange: str
    body: dict


def event_publisher(amqp_uri: str) -> Publisher:
    return Publisher(amqp_uri, use_confirms=True, serializer="json", delivery_mode=PERSISTENT)


_exchanges: dict[str, Exchange] = {}


def publish_envelope(publisher: Publisher, exchange: str, body: dict) -> None:
    """Publish one event envelope to `exchange` with its type as routing key (confirmed)."""
    ex = _exchanges.get(exchange)
    if ex is None:
        ex = _exchanges[exchange] = Exchange(exchange, type="topic", durable=True)
    publisher.publish(
        body,
        exchange=ex,
        routing_key=body["type"],
        headers={"nameko.trace_id": body["trace_id"], "liandong.event_id": body["id"]},
        message_id=body["id"],
    )


class OutboxRelay:
    def __init__(self, engine: Engine, outbox, amqp_uri: str):
        self.engine = engine
        self.outbox = outbox
        self.publisher = event_publisher(amqp_uri)
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
        """Fast path: publish events a worker just committed; mark them sent in the background."""
        sent = 0
        for event in events:
            try:
                publish_envelope(self.publisher, event.exchange, event.body)
            except Exception:
                log.exception("outbox fast path failed; the sweep will publish",
                              event_id=event.event_id)
                break  # keep order: the sweep publishes this one and the rest
            EVENTS_PUBLISHED.labels(event.body["type"]).inc()
            OUTBOX_LAG.observe((datetime.now(UTC) - datetime.fromisoformat(
                event.body["time"].replace("Z", "+00:00"))).total_seconds())
            self._marks.put(event.event_id)
            sent += 1
        return sent

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
            for row in rows:
                try:
                    publish_envelope(self.publisher, row.exchange, row.body)
                except Exception as exc:  # broker down: keep what was confirmed, retry the rest
                    error = exc
                    break
                sent.append(row.seq)
                EVENTS_PUBLISHED.labels(row.type).inc()
            if sent:
                now = conn.execute(select(func.now())).scalar_one()
                conn.execute(update(ob).where(ob.c.seq.in_(sent)).values(published_at=now))
                for row in rows[: len(sent)]:
                    OUTBOX_LAG.observe((now - row.created_at).total_seconds())
            if error is not None:
                conn.execute(
                    update(ob)
                    .where(ob.c.seq == rows[len(sent)].seq)
                    .values(attempts=ob.c.attempts + 1, last_error=str(error)[:1000])
                )
        if error is not None:
            raise error
        return len(sent)

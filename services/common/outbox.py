"""Outbox relay: publishes committed outbox rows with publisher confirms, then marks them sent.

Two paths, one mechanism:
- fast path: right after a worker commits, the rows it wrote are claimed and published;
- sweep: a loop claims whatever is left (a crash between commit and publish, a broker outage) with
  `FOR UPDATE SKIP LOCKED`, so several replicas sweep without publishing a row twice.
A row is marked sent only after the broker confirmed it; a crash in between republishes it, and the
consumers' inbox drops the duplicate (at-least-once delivery, applied once).
"""

from __future__ import annotations

import eventlet
from kombu import Exchange
from nameko.amqp.publish import Publisher
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from services.common.config import setting
from services.common.logging import get_logger
from services.common.metrics import EVENTS_PUBLISHED, OUTBOX_LAG, OUTBOX_PENDING

log = get_logger(__name__)

PERSISTENT = 2


def event_publisher(amqp_uri: str) -> Publisher:
    return Publisher(amqp_uri, use_confirms=True, serializer="json", delivery_mode=PERSISTENT)


def publish_envelope(publisher: Publisher, exchange: str, body: dict) -> None:
    """Publish one event envelope to `exchange` with its type as routing key (confirmed)."""
    publisher.publish(
        body,
        exchange=Exchange(exchange, type="topic", durable=True),
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
        self.batch = int(setting("OUTBOX_BATCH", 500))
        self._running = False

    # lifecycle -----------------------------------------------------------
    def start(self, spawn) -> None:
        self._running = True
        spawn(self._sweep_forever, identifier="outbox-sweep")

    def stop(self) -> None:
        self._running = False

    def _sweep_forever(self) -> None:
        while self._running:
            try:
                published = self.sweep()
                if published:
                    log.info("outbox sweep published", count=published)
            except Exception:
                log.exception("outbox sweep failed; retrying")
            eventlet.sleep(self.interval)

    # publishing ----------------------------------------------------------
    def publish_now(self, event_ids: list[str]) -> int:
        """Publish the given rows if still pending (fast path after a worker's commit)."""
        try:
            return self._claim_and_publish(self.outbox.c.event_id.in_(event_ids))
        except Exception:
            log.exception("outbox fast path failed; the sweep will publish", events=event_ids)
            return 0

    def sweep(self) -> int:
        total = 0
        while True:
            count = self._claim_and_publish(None)
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

    def _claim_and_publish(self, where) -> int:
        ob = self.outbox
        query = (
            select(ob.c.seq, ob.c.exchange, ob.c.body, ob.c.created_at, ob.c.type)
            .where(ob.c.published_at.is_(None))
            .order_by(ob.c.seq)
            .limit(self.batch)
            .with_for_update(skip_locked=True)
        )
        if where is not None:
            query = query.where(where)
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

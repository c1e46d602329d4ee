"""Accepting envelopes refused as `stale` after a long link outage (`liandong bridge
accept-stale`): an operator's deliberate decision, never the service's.

Each envelope parked with reason `stale` is checked again exactly as the bridge does — sender,
key, signature, destination, contract, impersonation, partner policy, not seen before — with
only the time window lifted. Accepted ones are recorded in the bridge's inbox and outbox in one
transaction per envelope (the running bridge's relay publishes them on `bridge.events`); any
other outcome puts the envelope back in the parking queue.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from kombu import Connection
from sqlalchemy import create_engine, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.bridge import domain
from services.bridge.models import inbox, outbox
from services.bridge.store import load_partners, record_received, record_refused
from services.common.topology import BRIDGE_INBOUND

NO_WINDOW = timedelta(days=36500)


def accept_stale(amqp_uri: str, database_url: str, city: str, limit: int = 100_000) -> dict:
    engine = create_engine(database_url)
    counts = {"accepted": 0, "kept": 0}
    kept = []
    with engine.connect() as conn:
        partners = load_partners(conn)
    with Connection(amqp_uri) as broker:
        channel = broker.channel()
        for _ in range(limit):
            message = channel.basic_get(f"{BRIDGE_INBOUND}.parked", no_ack=False)
            if message is None:
                break
            headers = message.properties.get("application_headers") or {}
            if headers.get("x-liandong-reason") != "stale":
                kept.append(message)
                continue
            if _apply(engine, message.body, city, partners):
                channel.basic_ack(message.delivery_tag)
                counts["accepted"] += 1
            else:
                kept.append(message)
        for message in kept:  # back where they were, for the operator to see
            channel.basic_reject(message.delivery_tag, requeue=True)
        counts["kept"] = len(kept)
    engine.dispose()
    return counts


def _apply(engine, body: bytes, city: str, partners) -> bool:
    """Apply a stale message (a bundle, or a single envelope) if it passes every other check;
    its events already received are skipped, those refused on their own are recorded."""
    try:
        envelope = json.loads(body)
    except ValueError:
        return False
    if not isinstance(envelope, dict):
        return False
    whole, verdicts = domain.verify_message(envelope, city, partners, datetime.now(UTC),
                                            NO_WINDOW)
    if whole is not None:
        return False
    with engine.begin() as conn:
        applied = 0
        for verdict in verdicts:
            if not verdict.accepted:
                record_refused(conn, verdict.sender, verdict.reason, verdict.detail, None)
                continue
            event = verdict.body  # exactly as received, as the running bridge forwards it
            claimed = conn.execute(pg_insert(inbox).values(
                event_id=event["id"], handler="receive", type=event["type"])
                .on_conflict_do_nothing().returning(inbox.c.event_id)).first()
            if claimed is None:
                continue  # received meanwhile: a replay now
            conn.execute(insert(outbox).values(
                event_id=event["id"], type=event["type"], version=event["version"],
                exchange="bridge.events", subject=event["subject"], trace_id=event["trace_id"],
                body=event))
            applied += 1
        if applied:
            record_received(conn, verdicts[0].sender, applied)
    return applied > 0

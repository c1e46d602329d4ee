"""The bridge's partner directory, signing key and bookkeeping in its schema."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from nameko.extensions import DependencyProvider
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.bridge import signing
from services.bridge.domain import Partner
from services.bridge.models import (
    anchors,
    inbound_stats,
    outbound,
    partner_keys,
    partners,
    refusals,
)
from services.common.config import setting
from services.common.db import make_engine
from services.common.inputs import iso_utc


def load_partners(conn) -> dict[str, Partner]:
    directory = {r.city: Partner(r.city, {}, frozenset(r.allowed_types))
                 for r in conn.execute(select(partners))}
    for k in conn.execute(select(partner_keys).where(partner_keys.c.revoked_at.is_(None))):
        if k.partner in directory:
            directory[k.partner].keys[k.kid] = signing.load_public(k.public_key)
    return directory


class PartnerDirectory(DependencyProvider):
    """Partners, their valid keys and allowed types, read from the database and cached for
    `BRIDGE_DIRECTORY_SECONDS` (an imported or revoked key takes effect within that)."""

    def setup(self):
        self.engine = make_engine(pool_size=1)
        self.ttl = float(setting("BRIDGE_DIRECTORY_SECONDS", 5))
        self._cached: tuple[float, dict[str, Partner]] | None = None

    def stop(self):
        self.engine.dispose()

    def get_dependency(self, worker_ctx):
        return self

    def partners(self) -> dict[str, Partner]:
        if self._cached is None or time.monotonic() - self._cached[0] > self.ttl:
            with self.engine.connect() as conn:
                self._cached = (time.monotonic(), load_partners(conn))
        return self._cached[1]


class Signer(DependencyProvider):
    """This city's newest Ed25519 key (`BRIDGE_KEY_DIR/<city>.<kid>.pem`)."""

    def setup(self):
        self.city = setting("CITY")
        directory = Path(setting("BRIDGE_KEY_DIR"))
        keys = signing.load_keys(directory, self.city)
        if not keys:
            raise RuntimeError(f"no bridge key for {self.city} in {directory}: run "
                               f"`liandong bridge keygen --city {self.city}`")
        self.key = keys[0]

    def get_dependency(self, worker_ctx):
        return self

    def sign_bundle(self, destination: str, event_wires: list[dict]) -> dict:
        return signing.sign_bundle(self.key, self.city, destination, event_wires)


def record_sent(session, sent: list) -> None:
    """(event, destination) pairs just handed to the broker."""
    if sent:
        session.execute(pg_insert(outbound).on_conflict_do_nothing(), [
            {"event_id": e.id, "destination": d, "type": e.type, "subject": e.subject,
             "trace_id": e.trace_id} for e, d in sent])


def record_received(session, partner: str, count: int = 1) -> None:
    session.execute(pg_insert(inbound_stats).values(
        partner=partner, received=count, last_received_at=func.now()).on_conflict_do_update(
        index_elements=["partner"], set_={"received": inbound_stats.c.received + count,
                                          "last_received_at": func.now()}))


def record_refused(session, partner: str, reason: str, detail: str, event_id) -> None:
    session.execute(pg_insert(refusals), {"partner": partner[:40], "reason": reason,
                                          "detail": detail[:4000],
                                          "event_id": str(event_id)[:64] if event_id else None})
    session.execute(pg_insert(inbound_stats).values(
        partner=partner[:20], refused=1, last_refused_at=func.now(),
        last_refused_reason=reason).on_conflict_do_update(
        index_elements=["partner"], set_={"refused": inbound_stats.c.refused + 1,
                                          "last_refused_at": func.now(),
                                          "last_refused_reason": reason}))


def record_anchors(session, events: list[dict]) -> None:
    """Keep partners' record heads (cross-notarisation): each city holds its partners' anchors,
    so rewriting history in one city is caught against the others'."""
    if events:
        session.execute(pg_insert(anchors).on_conflict_do_nothing(), [
            {"partner": e["data"]["city"], "seq": e["data"]["seq"],
             "head_hash": e["data"]["hash"],
             "anchored_at": datetime.fromisoformat(e["data"]["at"].replace("Z", "+00:00"))}
            for e in events])


def partner_rows(session) -> list[dict]:
    """Per partner: its keys and types, what we sent it and what we received or refused."""
    sent = dict(session.execute(select(outbound.c.destination, func.max(outbound.c.sent_at))
                                .group_by(outbound.c.destination)).all())
    stats = {r.partner: r for r in session.execute(select(inbound_stats))}
    keys: dict[str, list[str]] = {}
    for k in session.execute(select(partner_keys).where(partner_keys.c.revoked_at.is_(None))):
        keys.setdefault(k.partner, []).append(k.kid)
    rows = []
    for p in session.execute(select(partners).order_by(partners.c.city)):
        st = stats.get(p.city)
        rows.append({
            "city": p.city, "allowed_types": sorted(p.allowed_types),
            "keys": sorted(keys.get(p.city, [])), "last_sent_at": iso_utc(sent.get(p.city)),
            "last_received_at": iso_utc(st.last_received_at) if st else None,
            "received": st.received if st else 0, "refused": st.refused if st else 0,
            "last_refused_reason": st.last_refused_reason if st else None,
        })
    return rows



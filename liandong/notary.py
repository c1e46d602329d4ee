"""Cross-notarisation: check a city's record against the anchors its partners hold.

Every city's `evidence.anchored` events reach its partners through the bridge, which keep them
(`bridge.anchors`). A city that rewrote its history — even recomputing every hash after the
change so that its own chain verifies — no longer matches the heads its partners recorded.
Locally the partners' databases are on the same server; between real deployments each partner's
operator runs the same query on their side (`anchors_held_for`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import create_engine, select, text

from contracts.reference import CITY_CODES
from liandong.settings import Site


@dataclass(frozen=True)
class AnchorCheck:
    partner: str
    seq: int
    anchored_hash: str
    local_hash: str | None

    @property
    def ok(self) -> bool:
        return self.local_hash == self.anchored_hash


def anchors_held_for(site: Site, city: str, partners=CITY_CODES) -> list[tuple[str, int, str]]:
    """(partner, seq, hash) of every anchor of `city` that its partners keep."""
    from services.bridge.models import anchors

    held = []
    for partner in partners:
        if partner == city:
            continue
        engine = create_engine(site.database_url(partner))
        try:
            with engine.connect() as conn:
                rows = conn.execute(select(anchors.c.seq, anchors.c.head_hash)
                                    .where(anchors.c.partner == city)).all()
        except Exception:  # a partner database that is not there (not provisioned)
            rows = []
        finally:
            engine.dispose()
        held += [(partner, r.seq, r.head_hash) for r in rows]
    return held


def check_against_partners(site: Site, city: str) -> list[AnchorCheck]:
    held = anchors_held_for(site, city)
    if not held:
        return []
    engine = create_engine(site.database_url(city))
    with engine.connect() as conn:
        local = dict(conn.execute(
            text("SELECT seq, hash FROM cases.record_entries WHERE seq = ANY(:seqs)"),
            {"seqs": sorted({seq for _, seq, _ in held})}).all())
    engine.dispose()
    return [AnchorCheck(p, seq, h, local.get(seq)) for p, seq, h in sorted(held)]

"""The tamper-evident record in PostgreSQL: appends (in the step's own transaction), proofs,
anchors, and verification of a whole city's chain (`liandong record verify --city X`).

Appends lock the chain-head row (`record_head`, one per city): they are serialised, so sequence
numbers have no gaps and each entry links to the one committed before it. The head lock is the
last lock a transaction takes (after the case row, squads and counters), so appends cannot
deadlock with case steps.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from services.cases import chain
from services.cases.models import record_anchors, record_entries, record_head


class RecordBook:
    def __init__(self, session: Session, city: str):
        self.s = session
        self.city = city

    def append(self, case_id: str | None, kind: str, payload: dict, at: datetime) -> int:
        head = self._lock_head()
        seq = head.seq + 1
        body = chain.normalise(payload)
        digest = chain.entry_hash(seq, head.hash, case_id, kind, body, at)
        self.s.execute(insert(record_entries).values(
            seq=seq, case_id=case_id, kind=kind, payload=body, at=at, prev_hash=head.hash,
            hash=digest))
        self.s.execute(update(record_head).where(record_head.c.chain == self.city)
                       .values(seq=seq, hash=digest, updated_at=at))
        return seq

    def _lock_head(self):
        query = select(record_head).where(record_head.c.chain == self.city).with_for_update()
        head = self.s.execute(query).first()
        if head is None:
            self.s.execute(pg_insert(record_head).values(
                chain=self.city, seq=0, hash=chain.GENESIS).on_conflict_do_nothing())
            head = self.s.execute(query).first()
        return head

    def head(self) -> dict:
        row = self.s.execute(select(record_head).where(record_head.c.chain == self.city)).first()
        if row is None:
            return {"seq": 0, "hash": chain.GENESIS, "at": None}
        return {"seq": row.seq, "hash": row.hash, "at": _iso(row.updated_at)}

    def latest_anchor(self) -> dict | None:
        row = self.s.execute(select(record_anchors).order_by(record_anchors.c.seq.desc())
                             .limit(1)).first()
        return None if row is None else {"seq": row.seq, "hash": row.hash, "at": _iso(row.at)}

    def entries_of(self, case_id: str) -> list[dict]:
        """A case's entries, each with its proof: the canonical bytes, the recomputed hash, and
        whether `prev_hash` is the stored hash of the entry before it."""
        rows = self.s.execute(select(record_entries).where(record_entries.c.case_id == case_id)
                              .order_by(record_entries.c.seq)).all()
        previous = dict(self.s.execute(
            select(record_entries.c.seq, record_entries.c.hash)
            .where(record_entries.c.seq.in_([r.seq - 1 for r in rows]))).all())
        out = []
        for r in rows:
            canonical = chain.canonical(r.seq, r.prev_hash, r.case_id, r.kind, r.payload, r.at)
            recomputed = chain.entry_hash(r.seq, r.prev_hash, r.case_id, r.kind, r.payload, r.at)
            expected_prev = chain.GENESIS if r.seq == 1 else previous.get(r.seq - 1)
            out.append({
                "seq": r.seq, "case_id": r.case_id, "kind": r.kind, "at": chain.format_at(r.at),
                "payload": r.payload, "prev_hash": r.prev_hash, "hash": r.hash,
                "proof": {"canonical": canonical.decode("utf-8"), "recomputed": recomputed,
                          "valid": recomputed == r.hash, "prev_link": expected_prev == r.prev_hash},
            })
        return out

    def record_anchor(self, at: datetime, event_id: str) -> dict | None:
        """Claim the current head as the next anchor; None when nothing moved since the last one
        (or another replica anchored it first)."""
        head = self.head()
        last = self.latest_anchor()
        if head["seq"] == 0 or (last and last["seq"] >= head["seq"]):
            return None
        claimed = self.s.execute(pg_insert(record_anchors).values(
            seq=head["seq"], hash=head["hash"], at=at, event_id=event_id)
            .on_conflict_do_nothing().returning(record_anchors.c.seq)).first()
        if claimed is None:
            return None
        return {"seq": head["seq"], "hash": head["hash"],
                "previous_seq": last["seq"] if last else 0}


def verify_chain(conn: Connection, city: str, batch: int = 5000) -> chain.Verification:
    """Recompute a city's whole chain from the database, streaming in seq order."""
    head = conn.execute(select(record_head.c.seq, record_head.c.hash)
                        .where(record_head.c.chain == city)).first()
    rows = conn.execution_options(stream_results=True, yield_per=batch).execute(
        select(record_entries.c.seq, record_entries.c.prev_hash, record_entries.c.case_id,
               record_entries.c.kind, record_entries.c.payload, record_entries.c.at,
               record_entries.c.hash).order_by(record_entries.c.seq))
    entries = (chain.Entry(r.seq, r.prev_hash, r.case_id, r.kind, r.payload, r.at, r.hash)
               for r in rows)
    return chain.verify(entries, (head.seq, head.hash) if head else (0, chain.GENESIS))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else chain.format_at(value)

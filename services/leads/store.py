"""Reading and writing leads in the service's schema, applying the rules of `domain.py`."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from nameko.extensions import DependencyProvider
from sqlalchemy import insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from contracts.envelope import Event
from contracts.errors import Conflict, NotFound
from services.common.config import setting
from services.common.db import UnitOfWork
from services.common.geo import SquadZones, default_city_locator, to_wgs84
from services.common.inputs import iso_utc
from services.common.logging import get_logger
from services.common.metrics import LEADS
from services.common.pagination import page
from services.leads import domain
from services.leads.models import OPEN_STATUSES, lead_history, leads

log = get_logger(__name__)


# Statements built once: only their parameters change per call (no per-call compilation).
INSERT_LEAD = (pg_insert(leads).on_conflict_do_nothing(constraint="uq_leads_source_ref")
               .returning(leads.c.id))
# One round trip for every cell lock, taken in key order (no deadlock between two leads).
LOCK_CELLS = text("SELECT pg_advisory_xact_lock(k) FROM "
                  "(SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY 1) AS cells")


class RouterProvider(DependencyProvider):
    """Loads the city boundaries and this city's squad zones once per service container."""

    def setup(self):
        path = setting("SQUAD_ZONES_FILE", "")
        city = setting("CITY")
        zones = SquadZones.from_file(path) if path else SquadZones.demo(city)
        policies = domain.dedup_policies(
            setting("DEDUP_RADIUS_M", 50), setting("DEDUP_WINDOW_MIN", 30),
            setting("DEDUP_OVERRIDES", ""),
        )
        self.router = domain.Router(city, default_city_locator(), zones, policies)

    def get_dependency(self, worker_ctx):
        return self.router


def _now() -> datetime:
    return datetime.now(UTC)


def _actor(caller: dict) -> str:
    return f"{caller['org_name']} ({caller['org_id']})"


class LeadStore:
    def __init__(self, db: UnitOfWork, router: domain.Router, city: str):
        self.db = db
        self.s = db.session
        self.router = router
        self.city = city

    # submit -----------------------------------------------------------------------------
    def submit(self, caller: dict, lead: dict, deduplicate: bool = True) -> dict:
        loc = lead["location"]
        lon, lat = to_wgs84(loc["lon"], loc["lat"], loc["crs"])
        routing = self.router.route(lon, lat)
        policy = self.router.policies[lead["category"]]
        now = _now()
        lead_id = str(uuid.uuid4())

        # Serialise with any concurrent lead near this point, then look for an open duplicate
        # (a lead that is never merged takes no locks).
        dup = None
        if deduplicate:
            self.s.execute(LOCK_CELLS, {"keys": domain.dedup_lock_keys(
                lead["category"], lon, lat, policy.radius_m)})
            dup = self._find_duplicate(lead["category"], lon, lat, lead["occurred_at"], policy)

        status = "merged" if dup else routing.status
        row = {
            "id": lead_id,
            "source_org_id": caller["org_id"],
            "source_org_name": caller["org_name"],
            "source_ref": lead["source_ref"],
            "category": lead["category"],
            "description": lead["description"],
            "lon": lon, "lat": lat,
            "crs_in": loc["crs"], "lon_in": loc["lon"], "lat_in": loc["lat"],
            "address": lead["address"],
            "occurred_at": lead["occurred_at"],
            "submitted_at": now, "updated_at": now,
            "evidence": lead["evidence"],
            "camera": lead["camera"],
            "status": status,
            "city": routing.city,
            "squad": routing.squad,
            "to_city": routing.to_city,
            "duplicate_of": dup[0].id if dup else None,
            "merged_count": 0, "origin_city": None, "origin_lead_id": None,
            "trace_id": self.db.trace_id,
        }
        if self.s.execute(INSERT_LEAD, row).first() is None:
            # The same source_ref is already stored (a repeat, or a race we lost): answer it.
            self.s.rollback()
            existing = self._by_source_ref(caller["org_id"], lead["source_ref"])
            return {"created": False, "lead": self._summary(existing)}

        actor = _actor(caller)
        self._history(lead_id, actor, "submitted", status, {
            "city": routing.city, "squad": routing.squad, "crs_in": loc["crs"],
        }, now)
        body = self._event_body(row)
        if dup:
            target, distance = dup
            self.s.execute(update(leads).where(leads.c.id == target.id).values(
                merged_count=leads.c.merged_count + 1, updated_at=now))
            self._history(target.id, actor, "duplicate_merged", "unchanged",
                          {"lead_id": lead_id, "distance_m": round(distance, 1)}, now)
            self.db.emit("lead.merged", lead_id, {
                "lead_id": lead_id, "duplicate_of": target.id, "category": lead["category"],
                "distance_m": round(distance, 1), "source_org": caller["org_name"],
            })
        elif routing.status == "handed_over":
            self.db.emit("lead.handed_over", lead_id, {
                **body, "lead_id": lead_id, "from_city": self.city, "to_city": routing.city,
                "submitted_at": now,
            })
        else:
            self.db.emit("lead.submitted", lead_id, {
                **body, "lead_id": lead_id, "city": routing.city, "squad": routing.squad,
                "status": status,
            })
        LEADS.labels(status, lead["category"]).inc()
        log.info("lead stored", lead_id=lead_id, status=status, city=routing.city,
                 squad=routing.squad, duplicate_of=row["duplicate_of"])
        return {"created": True, "lead": self._summary(row)}

    def _find_duplicate(self, category, lon, lat, occurred_at, policy):
        min_lon, max_lon, min_lat, max_lat = domain.search_box(lon, lat, policy.radius_m)
        rows = self.s.execute(
            select(leads.c.id, leads.c.lon, leads.c.lat, leads.c.occurred_at).where(
                leads.c.category == category,
                leads.c.status.in_(OPEN_STATUSES),
                leads.c.occurred_at.between(occurred_at - policy.window,
                                            occurred_at + policy.window),
                leads.c.lon.between(min_lon, max_lon),
                leads.c.lat.between(min_lat, max_lat),
            )
        ).all()
        candidates = [domain.Candidate(str(r.id), r.lon, r.lat, r.occurred_at) for r in rows]
        return domain.pick_duplicate(candidates, lon, lat, occurred_at, policy)

    # handover received from a partner city ---------------------------------------------------
    def receive_handover(self, event: Event) -> None:
        data = event.data
        if data["to_city"] != self.city:
            log.warning("handover addressed to another city ignored", to_city=data["to_city"])
            return
        origin = {"org_id": f"city:{data['from_city']}",
                  "org_name": f"{data['from_city']} bureau via bridge"}
        loc = data["location"]
        zone = self.router.zones.zone_at(loc["lon"], loc["lat"])
        now = _now()
        lead_id = str(uuid.uuid4())
        row = {
            "id": lead_id, "source_org_id": origin["org_id"], "source_org_name": origin["org_name"],
            "source_ref": str(data["lead_id"]), "category": data["category"],
            "description": data["description"], "lon": loc["lon"], "lat": loc["lat"],
            "crs_in": "WGS84", "lon_in": loc["lon"], "lat_in": loc["lat"],
            "address": data["address"], "occurred_at": data["occurred_at"],
            "submitted_at": now, "updated_at": now,
            "evidence": json.loads(json.dumps(data["evidence"], default=str)),
            "camera": data["camera"], "status": "routed", "city": self.city,
            "squad": zone.squad if zone else None, "to_city": None,
            "origin_city": data["from_city"], "origin_lead_id": str(data["lead_id"]),
            "trace_id": event.trace_id,
        }
        row.update(duplicate_of=None, merged_count=0)
        inserted = self.s.execute(INSERT_LEAD, row).first()
        if inserted is None:
            log.info("handover already received", origin_lead_id=str(data["lead_id"]))
            return
        self._history(lead_id, _actor(origin), "received", "routed",
                      {"from_city": data["from_city"], "origin_lead_id": str(data["lead_id"]),
                       "squad": row["squad"]}, now)
        self.db.emit("lead.submitted", lead_id, {
            **self._event_body(row), "lead_id": lead_id, "city": self.city,
            "squad": row["squad"], "status": "routed", "origin_city": data["from_city"],
            "origin_lead_id": data["lead_id"],
        }, trace_id=event.trace_id)

    # what the partner reports back on a lead we handed over -----------------------------------
    def partner_report(self, event: Event, status: str, partner_lead_id: str | None = None,
                       case_no: str | None = None) -> None:
        data = event.data
        if data.get("origin_city") != self.city or not data.get("origin_lead_id"):
            return
        row = self._get_row(str(data["origin_lead_id"]), for_update=True)
        if row is None or row.to_city != event.city:
            log.warning("partner report about a lead we did not hand to it",
                        partner=event.city, origin_lead_id=str(data["origin_lead_id"]))
            return
        now = _now()
        detail = {"partner": event.city, "partner_lead_id": partner_lead_id,
                  "case_no": case_no, "reason": data.get("reason")}
        if domain.partner_status_advances(row.partner_status, status):
            self.s.execute(update(leads).where(leads.c.id == row.id).values(
                partner_status=status, partner_updated_at=now, updated_at=now,
                partner_lead_id=partner_lead_id or row.partner_lead_id,
                partner_case_no=case_no or row.partner_case_no))
        self._history(str(row.id), f"{event.city} bureau via bridge", f"partner_{status}",
                      row.status, {k: v for k, v in detail.items() if v}, now)

    # received handovers that wait too long for our decision -----------------------------------
    def scan_overdue_handovers(self, now: datetime, remind_after: float, escalate_after: float,
                               batch: int = 100) -> int:
        """Issue each overdue level once (row lock + level check in one transaction; replicas
        skip each other's rows)."""
        rows = self.s.execute(
            select(leads).where(leads.c.origin_city.isnot(None), leads.c.status == "routed",
                                leads.c.overdue_level < 2,
                                leads.c.submitted_at <= now - timedelta(minutes=remind_after))
            .order_by(leads.c.submitted_at).limit(batch).with_for_update(skip_locked=True)).all()
        issued = 0
        for row in rows:
            waited = (now - row.submitted_at).total_seconds() / 60
            level = domain.handover_overdue_level(waited, remind_after, escalate_after)
            if level <= row.overdue_level:
                continue
            kind = "reminder" if level == 1 else "escalation"
            limit = remind_after if level == 1 else escalate_after
            self.s.execute(update(leads).where(leads.c.id == row.id).values(
                overdue_level=level, updated_at=now))
            self._history(str(row.id), "supervision 督办 (platform)", f"handover_{kind}",
                          row.status, {"level": level, "limit_minutes": int(limit)}, now)
            self.db.emit("lead.handover_overdue", str(row.id), {
                "lead_id": str(row.id), "city": self.city, "origin_city": row.origin_city,
                "origin_lead_id": str(row.origin_lead_id), "category": row.category,
                "squad": row.squad, "level": level, "kind": kind,
                "received_at": row.submitted_at, "limit_minutes": int(limit)},
                trace_id=row.trace_id)
            issued += 1
        return issued

    def partner_overdue(self, event: Event) -> None:
        """The partner reports our handed-over lead overdue there: record it, keep the level."""
        data = event.data
        if data.get("origin_city") != self.city:
            return
        row = self._get_row(str(data["origin_lead_id"]), for_update=True)
        if row is None or row.to_city != event.city:
            return
        now = _now()
        if data["level"] > row.overdue_level:
            self.s.execute(update(leads).where(leads.c.id == row.id).values(
                overdue_level=data["level"], partner_updated_at=now, updated_at=now))
        self._history(str(row.id), f"{event.city} bureau via bridge",
                      f"partner_{data['kind']}", row.status,
                      {"partner": event.city, "level": data["level"],
                       "limit_minutes": data["limit_minutes"]}, now)

    # decide -------------------------------------------------------------------------------
    def decide(self, caller: dict, lead_id: str, decision: str, reason: str | None) -> dict:
        row = self._get_row(lead_id, for_update=True)
        if row is None:
            raise NotFound(f"lead {lead_id} not found")
        if row.status != "routed" or row.city != self.city:
            raise Conflict(
                f"lead {lead_id} is {row.status}; only a routed lead of {self.city} can be decided",
                {"status": [row.status]},
            )
        now = _now()
        status = "accepted" if decision == "accept" else "rejected"
        actor = _actor(caller)
        self.s.execute(update(leads).where(leads.c.id == lead_id).values(
            status=status, decided_at=now, decided_by=actor, decision_reason=reason,
            updated_at=now))
        self._history(lead_id, actor, decision, status, {"reason": reason} if reason else {}, now)
        common = {"lead_id": lead_id, "city": self.city, "category": row.category,
                  "decided_by": actor, "origin_city": row.origin_city,
                  "origin_lead_id": row.origin_lead_id}
        if status == "accepted":
            self.db.emit("lead.accepted", lead_id, {
                **common, "squad": row.squad, "location": {"lon": row.lon, "lat": row.lat},
                "description": row.description, "occurred_at": row.occurred_at, "reason": reason,
            })
        else:
            self.db.emit("lead.rejected", lead_id, {**common, "reason": reason})
        return self.view(caller, lead_id)

    # read ----------------------------------------------------------------------------------
    def view(self, caller: dict, lead_id: str) -> dict:
        row = self._get_row(lead_id)
        if row is None or not domain.can_see(caller, row.source_org_id):
            raise NotFound(f"lead {lead_id} not found")
        history = self.s.execute(
            select(lead_history).where(lead_history.c.lead_id == lead_id)
            .order_by(lead_history.c.id)
        ).mappings().all()
        return {**self._full(row), "history": [
            {"at": iso_utc(h["at"]), "actor": h["actor"], "action": h["action"],
             "status": h["status"], "detail": h["detail"]} for h in history
        ]}

    def list(self, caller: dict, query: dict) -> dict:
        conditions = []
        if not set(caller["roles"]) & domain.CITY_WIDE_ROLES:
            conditions.append(leads.c.source_org_id == caller["org_id"])
        if "status" in query:
            conditions.append(leads.c.status == query["status"])
        if "category" in query:
            conditions.append(leads.c.category == query["category"])
        if "submitted_from" in query:
            conditions.append(leads.c.submitted_at >= query["submitted_from"])
        if "submitted_to" in query:
            conditions.append(leads.c.submitted_at < query["submitted_to"])
        rows, cursor = page(self.s, leads, query, conditions, at=leads.c.submitted_at)
        return {"items": [self._full(r) for r in rows], "next_cursor": cursor}

    # helpers -------------------------------------------------------------------------------
    def _by_source_ref(self, org_id: str, source_ref: str):
        return self.s.execute(select(leads).where(
            leads.c.source_org_id == org_id, leads.c.source_ref == source_ref)).first()

    def _get_row(self, lead_id: str, for_update: bool = False):
        try:
            uuid.UUID(str(lead_id))
        except ValueError:
            raise NotFound(f"lead {lead_id} not found") from None
        query = select(leads).where(leads.c.id == str(lead_id))
        if for_update:
            query = query.with_for_update()
        return self.s.execute(query).first()

    def _history(self, lead_id, actor, action, status, detail, at) -> None:
        self.s.execute(insert(lead_history), {
            "lead_id": lead_id, "actor": actor, "action": action, "status": status,
            "detail": json.loads(json.dumps(detail, default=str)), "at": at})

    @staticmethod
    def _event_body(row) -> dict:
        return {
            "category": row["category"], "description": row["description"],
            "location": {"lon": row["lon"], "lat": row["lat"]}, "address": row["address"],
            "occurred_at": row["occurred_at"], "evidence": row["evidence"],
            "camera": row["camera"], "source_org": row["source_org_name"],
            "source_ref": row["source_ref"],
        }

    @staticmethod
    def _summary(row) -> dict:
        m = row if isinstance(row, dict) else row._mapping
        return {"id": str(m["id"]), "status": m["status"], "city": m["city"],
                "squad": m["squad"], "duplicate_of": _str(m["duplicate_of"]),
                "to_city": m["to_city"]}

    def _full(self, row) -> dict:
        m = row._mapping
        return {
            **self._summary(row),
            "source_ref": m["source_ref"], "source_org": m["source_org_name"],
            "category": m["category"], "description": m["description"],
            "location": {"lon": m["lon"], "lat": m["lat"]}, "address": m["address"],
            "occurred_at": iso_utc(m["occurred_at"]), "submitted_at": iso_utc(m["submitted_at"]),
            "updated_at": iso_utc(m["updated_at"]), "evidence": m["evidence"],
            "camera": m["camera"], "merged_count": m["merged_count"],
            "origin_city": m["origin_city"], "origin_lead_id": _str(m["origin_lead_id"]),
            "decision_reason": m["decision_reason"], "trace_id": m["trace_id"],
            "handover": None if m["to_city"] is None else {
                "to_city": m["to_city"], "status": m["partner_status"] or "sent",
                "partner_lead_id": _str(m["partner_lead_id"]), "case_no": m["partner_case_no"],
                "overdue_level": m["overdue_level"],
                "updated_at": iso_utc(m["partner_updated_at"]),
            },
        }


def _str(value):
    return None if value is None else str(value)




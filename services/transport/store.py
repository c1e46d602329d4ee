"""Reading and writing the transport schema, applying the rules of `domain.py`.

Ingest (HTTP through the gateway, or the `transport.positions` queue) is one function: parse the
batch (bad points refused one by one), store the good points in one multi-row insert (a repeat of
(plate, ts) changes nothing), lock the vehicles' evaluation states in plate order, evaluate each
vehicle's new points, write states, alerts (deterministic ids: a replay is a no-op) and trips, and
record one `transport.alert_raised` per new alert in the outbox. One transaction per batch.
"""

from __future__ import annotations

import threading
import time as _time
from datetime import UTC, date, datetime, timedelta

from nameko.extensions import DependencyProvider
from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from contracts.envelope import Event
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.common.config import setting
from services.common.db import UnitOfWork
from services.common.geo import default_city_locator, parse_polygon
from services.common.inputs import iso_utc, jsonable
from services.common.logging import get_logger
from services.transport import domain
from services.transport.models import (
    SCHEMA,
    alerts,
    companies,
    permits,
    sites,
    trips,
    vehicle_state,
    vehicles,
)

log = get_logger(__name__)

INSERT_POSITIONS = text(
    f"INSERT INTO {SCHEMA}.positions (plate, ts, lon, lat, speed_kmh, heading) "
    "SELECT * FROM unnest(CAST(:plate AS varchar[]), CAST(:ts AS timestamptz[]), "
    "CAST(:lon AS float8[]), CAST(:lat AS float8[]), CAST(:speed AS real[]), "
    "CAST(:heading AS real[])) ON CONFLICT DO NOTHING")
INSERT_STATES = text(
    f"INSERT INTO {SCHEMA}.vehicle_state (plate) SELECT unnest(CAST(:plates AS varchar[])) "
    "ON CONFLICT DO NOTHING")
LOCK_STATES = text(
    f"SELECT plate, state FROM {SCHEMA}.vehicle_state WHERE plate = ANY(CAST(:plates AS "
    "varchar[])) ORDER BY plate FOR UPDATE")
UPDATE_STATE = (update(vehicle_state).where(vehicle_state.c.plate == bindparam("p"))
                .values(last_ts=bindparam("last_ts"), state=bindparam("state"),
                        updated_at=bindparam("now")))
INSERT_ALERT = pg_insert(alerts).on_conflict_do_nothing().returning(alerts.c.id)
UPSERT_TRIP = pg_insert(trips)
UPSERT_TRIP = UPSERT_TRIP.on_conflict_do_update(
    index_elements=[trips.c.id],
    set_={"status": UPSERT_TRIP.excluded.status, "ended_at": UPSERT_TRIP.excluded.ended_at,
          "end_site": UPSERT_TRIP.excluded.end_site})


def partition_name(day: date) -> str:
    return f"positions_p{day:%Y%m%d}"


class TransportRuntime(DependencyProvider):
    """Per process: thresholds, the city index, prepared permits and sites, known partitions."""

    def setup(self):
        self.city = setting("CITY")
        self.thresholds = domain.Thresholds.from_settings(setting)
        self.cities = domain.CityIndex(default_city_locator())
        self.permit_cache: dict[tuple, domain.Permit] = {}
        self.site_cache: dict[tuple, domain.Site] = {}
        self.sites_loaded_at = 0.0
        self.sites = domain.SiteIndex()
        self.partitions: set[date] = set()
        self.lock = threading.Lock()

    def get_dependency(self, worker_ctx):
        return self


def _polygon(geojson: dict):
    try:
        return parse_polygon(geojson)
    except ValueError as exc:
        raise InvalidInput("a site is a valid GeoJSON Polygon", {"polygon": [str(exc)]}) from None


def _site_body(row) -> dict:
    return {"id": row.id, "name": row.name, "kind": row.kind, "polygon": row.polygon}


class TransportStore:
    def __init__(self, db: UnitOfWork, rt: TransportRuntime):
        self.db = db
        self.s = db.session
        self.rt = rt
        self.city = rt.city

    # registry -------------------------------------------------------------------------------
    def add_company(self, body: dict) -> dict:
        self.s.execute(pg_insert(companies).values(id=body["id"], name=body["name"],
                                                   city=self.city).on_conflict_do_nothing())
        return {"id": body["id"], "name": body["name"], "city": self.city}

    def register_vehicle(self, body: dict) -> dict:
        try:
            plate = domain.normalise_plate(body["plate"])
        except ValueError as exc:
            raise InvalidInput(str(exc), {"plate": [str(exc)]}) from None
        row = {"plate": plate, "plate_printed": body["plate"], "company_id": body["company_id"],
               "city": self.city}
        self.s.execute(pg_insert(vehicles).values(**row).on_conflict_do_nothing())
        return row

    def register_site(self, body: dict) -> dict:
        _polygon(body["polygon"])
        row = {"id": body["id"], "name": body["name"], "kind": body["kind"],
               "city": body.get("city") or self.city, "polygon": body["polygon"]}
        stmt = pg_insert(sites).values(**row)
        self.s.execute(stmt.on_conflict_do_update(index_elements=[sites.c.id], set_={
            "name": stmt.excluded.name, "kind": stmt.excluded.kind,
            "polygon": stmt.excluded.polygon}))
        self.rt.sites_loaded_at = 0.0
        return row

    def issue_permit(self, body: dict) -> dict:
        try:
            plate = domain.normalise_plate(body["plate"])
            windows = [str(domain.HourWindow.parse(w)) for w in body["windows"]]
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        if body["valid_to"] < body["valid_from"]:
            raise InvalidInput("valid_to is before valid_from", {"valid_to": ["before start"]})
        found = {r.id: r for r in self.s.execute(select(sites).where(
            sites.c.id.in_([body["origin_site"], body["disposal_site"]])))}
        for key in ("origin_site", "disposal_site"):
            if body[key] not in found:
                raise InvalidInput(f"unknown site {body[key]}", {key: ["unknown site"]})
        if self.s.execute(select(permits.c.id).where(permits.c.id == body["id"])).first():
            raise Conflict(f"permit {body['id']} already exists")
        data = {
            "permit_id": body["id"], "plate": plate,
            "origin": _site_body(found[body["origin_site"]]),
            "disposal": _site_body(found[body["disposal_site"]]),
            "corridor": [list(map(float, c)) for c in body["corridor"]],
            "width_m": float(body["width_m"]), "windows": windows,
            "valid_from": body["valid_from"], "valid_to": body["valid_to"],
            "issuing_city": self.city,
            "may_enter": sorted(set(body["may_enter"]) - {self.city}), "status": "active",
        }
        self._store_permit(data)
        self.s.execute(pg_insert(vehicles).values(plate=plate, plate_printed=body["plate"],
                                                  city=self.city).on_conflict_do_nothing())
        self.db.emit("transport.permit_issued", body["id"], data)
        return self.permit_view(body["id"])

    def revoke_permit(self, permit_id: str, reason: str) -> dict:
        """The issuing city withdraws a permit: from now on the truck drives without one
        (`no_permit`), here and in every city the permit was sent to."""
        row = self.s.execute(select(permits).where(permits.c.id == permit_id)
                             .with_for_update()).first()
        if row is None:
            raise NotFound(f"no permit {permit_id}")
        if row.issuing_city != self.city:
            raise Forbidden(f"permit {permit_id} was issued by {row.issuing_city}; only it "
                            "revokes it", {"permit": [f"issued by {row.issuing_city}"]})
        if row.status == "revoked":
            raise Conflict(f"permit {permit_id} is already revoked",
                           {"status": ["revoked"]})
        now = datetime.now(UTC)
        self.s.execute(update(permits).where(permits.c.id == permit_id).values(
            status="revoked", revoked_at=now, revoke_reason=reason, created_at=now))
        # The permit's state, sent again: its partners' copies follow it.
        self.db.emit("transport.permit_issued", permit_id, {
            "permit_id": row.id, "plate": row.plate, "origin": row.origin,
            "disposal": row.disposal, "corridor": row.corridor, "width_m": row.width_m,
            "windows": row.windows, "valid_from": row.valid_from, "valid_to": row.valid_to,
            "issuing_city": row.issuing_city, "may_enter": row.may_enter, "status": "revoked"})
        log.info("permit revoked", permit_id=permit_id, reason=reason)
        return self.permit_view(permit_id)

    def list_companies(self) -> dict:
        counts = dict(self.s.execute(select(vehicles.c.company_id, func.count()).where(
            vehicles.c.company_id.is_not(None)).group_by(vehicles.c.company_id)).all())
        return {"items": [{"id": r.id, "name": r.name, "city": r.city,
                           "vehicles": counts.get(r.id, 0)}
                          for r in self.s.execute(select(companies).order_by(companies.c.id))]}

    def _store_permit(self, data: dict) -> None:
        row = {"id": data["permit_id"], "plate": data["plate"], "origin": data["origin"],
               "disposal": data["disposal"], "corridor": data["corridor"],
               "width_m": data["width_m"], "windows": data["windows"],
               "valid_from": data["valid_from"], "valid_to": data["valid_to"],
               "issuing_city": data["issuing_city"], "may_enter": data["may_enter"],
               "status": data.get("status", "active"), "created_at": datetime.now(UTC)}
        stmt = pg_insert(permits).values(**row)
        self.s.execute(stmt.on_conflict_do_update(index_elements=[permits.c.id], set_={
            k: stmt.excluded[k] for k in row if k != "id"}))

    def receive_permit(self, event: Event) -> None:
        """A partner's permit allowing its truck into this city (through the bridge)."""
        data = event.data
        if data["issuing_city"] == self.city or self.city not in data["may_enter"]:
            return
        self._store_permit(jsonable(data))

    def receive_alert(self, event: Event) -> None:
        """A partner saw one of our permitted trucks breach its permit, or a truck breach its
        permit here (e.g. entering our city), and the bridge told us."""
        data = event.data
        if self.city not in (data.get("permit_city"), data.get("city")) or data.get(
                "raised_by") == self.city:
            return
        self.s.execute(pg_insert(alerts).values(
            id=str(data["alert_id"]), kind=data["kind"], plate=data["plate"],
            permit_id=data["permit_id"], permit_city=data["permit_city"], city=data["city"],
            at=data["at"], started_at=data["started_at"], lon=data["location"]["lon"],
            lat=data["location"]["lat"],
            detail={**jsonable(data["detail"]), "reported_by": data["raised_by"]},
            evidence=jsonable(data["evidence"])).on_conflict_do_nothing())
        log.info("partner transport alert", kind=data["kind"], plate=data["plate"],
                 raised_by=data["raised_by"])

    def permit_view(self, permit_id: str) -> dict:
        row = self.s.execute(select(permits).where(permits.c.id == permit_id)).first()
        if row is None:
            raise NotFound(f"no permit {permit_id}")
        return {"id": row.id, "plate": row.plate, "origin": row.origin,
                "disposal": row.disposal, "corridor": row.corridor, "width_m": row.width_m,
                "windows": row.windows, "valid_from": row.valid_from.isoformat(),
                "valid_to": row.valid_to.isoformat(), "issuing_city": row.issuing_city,
                "may_enter": row.may_enter, "status": row.status,
                "revoked_at": iso_utc(row.revoked_at), "revoke_reason": row.revoke_reason}

    # prepared geometry -------------------------------------------------------------------------
    def _site(self, body: dict) -> domain.Site:
        key = (body["id"], repr(body["polygon"]))
        site = self.rt.site_cache.get(key)
        if site is None:
            site = domain.Site.from_wgs84(body["id"], body["kind"], _polygon(body["polygon"]),
                                          self.rt.thresholds.site_tolerance_m)
            self.rt.site_cache[key] = site
        return site

    def _permit(self, row) -> domain.Permit:
        key = (row.id, row.created_at)
        permit = self.rt.permit_cache.get(key)
        if permit is None:
            permit = domain.Permit.from_wgs84(
                id=row.id, plate=row.plate, origin=self._site(row.origin),
                disposal=self._site(row.disposal), corridor=row.corridor, width_m=row.width_m,
                windows=row.windows, valid_from=row.valid_from, valid_to=row.valid_to,
                issuing_city=row.issuing_city, may_enter=row.may_enter, status=row.status)
            self.rt.permit_cache[key] = permit
        return permit

    def _other_sites(self) -> domain.SiteIndex:
        if _time.monotonic() - self.rt.sites_loaded_at > 30.0:
            rows = self.s.execute(select(sites)).all()
            self.rt.sites = domain.SiteIndex([self._site(_site_body(r)) for r in rows])
            self.rt.sites_loaded_at = _time.monotonic()
        return self.rt.sites

    # positions ----------------------------------------------------------------------------------
    def _ensure_partitions(self, days: set[date]) -> None:
        missing = days - self.rt.partitions
        if not missing:
            return
        engine = self.s.get_bind()
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            for day in sorted(missing):
                nxt = day + timedelta(days=1)
                conn.execute(text("SELECT pg_advisory_lock(hashtext('transport.partitions'))"))
                try:
                    conn.execute(text(
                        f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{partition_name(day)} PARTITION OF "
                        f"{SCHEMA}.positions FOR VALUES FROM ('{day.isoformat()} 00:00+00') "
                        f"TO ('{nxt.isoformat()} 00:00+00')"))
                finally:
                    conn.execute(text(
                        "SELECT pg_advisory_unlock(hashtext('transport.partitions'))"))
                self.rt.partitions.add(day)

    def drop_old_partitions(self, now: datetime, keep_days: int) -> list[str]:
        cutoff = (now.astimezone(UTC) - timedelta(days=keep_days)).date()
        rows = self.s.execute(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace "
            "WHERE n.nspname = :schema AND p.relname = 'positions'"), {"schema": SCHEMA}).all()
        dropped = []
        for (name,) in rows:
            try:
                day = datetime.strptime(name.removeprefix("positions_p"), "%Y%m%d").date()
            except ValueError:
                continue
            if day < cutoff:
                self.s.execute(text(f"DROP TABLE IF EXISTS {SCHEMA}.{name}"))
                self.rt.partitions.discard(day)
                dropped.append(name)
        return dropped

    def ingest(self, raws: list) -> dict:
        """Store and evaluate one batch; returns counts and the refused points with reasons."""
        by_plate, refused = domain.parse_batch(raws)
        stored = 0
        new_alerts = 0
        accepted = sum(len(v) for v in by_plate.values())
        if by_plate:
            points = [(plate, p) for plate, pts in by_plate.items() for p in pts]
            self._ensure_partitions({p.ts.date() for _, p in points})
            stored = self.s.execute(INSERT_POSITIONS, {
                "plate": [pl for pl, _ in points], "ts": [p.ts for _, p in points],
                "lon": [p.lon for _, p in points], "lat": [p.lat for _, p in points],
                "speed": [p.speed_kmh for _, p in points],
                "heading": [p.heading for _, p in points],
            }).rowcount
            new_alerts = self._evaluate(by_plate)
        return {"accepted": accepted, "stored": stored, "alerts": new_alerts,
                "refused": [{"index": r.index, "reason": r.reason} for r in refused]}

    def _evaluate(self, by_plate: dict[str, list[domain.Point]]) -> int:
        plates = sorted(by_plate)
        self.s.execute(INSERT_STATES, {"plates": plates})
        states = {r.plate: domain.VehicleState.from_dict(r.state)
                  for r in self.s.execute(LOCK_STATES, {"plates": plates})}
        registered = {r.plate for r in self.s.execute(
            select(vehicles.c.plate).where(vehicles.c.plate.in_(plates)))}
        permits_of: dict[str, list[domain.Permit]] = {}
        for row in self.s.execute(select(permits).where(permits.c.plate.in_(plates))):
            permits_of.setdefault(row.plate, []).append(self._permit(row))
        other_sites = self._other_sites()
        now = datetime.now(UTC)
        updates, alert_rows, trip_rows = [], [], []
        for plate in plates:
            state = states.get(plate, domain.VehicleState())
            out = domain.evaluate(plate, plate in registered or plate in permits_of,
                                  permits_of.get(plate, []), state, by_plate[plate],
                                  self.rt.thresholds, self.rt.cities, other_sites)
            if out.state.last_ts != state.last_ts:
                updates.append({"p": plate, "last_ts": out.state.last_ts,
                                "state": out.state.to_dict(), "now": now})
            alert_rows += out.alerts
            trip_rows += [{"id": t.trip.id, "plate": plate, "permit_id": t.trip.permit_id,
                           "origin_site": t.trip.origin_site, "end_site": t.trip.end_site,
                           "status": t.trip.status, "started_at": t.trip.started_at,
                           "ended_at": t.trip.ended_at} for t in out.trips]
        if updates:
            self.s.execute(UPDATE_STATE, updates)
        if trip_rows:
            latest = {}
            for row in trip_rows:  # a trip started and closed in one batch: its final row
                latest[row["id"]] = row
            self.s.execute(UPSERT_TRIP, list(latest.values()))
        raised = 0
        for a in alert_rows:
            if self._record_alert(a):
                raised += 1
        return raised

    def _record_alert(self, a: domain.Alert) -> bool:
        row = {"id": a.id, "kind": a.kind, "plate": a.plate, "permit_id": a.permit_id,
               "permit_city": a.permit_city, "city": a.city, "at": a.at,
               "started_at": a.started_at, "lon": a.lon, "lat": a.lat, "detail": a.detail,
               "evidence": a.evidence}
        if self.s.execute(INSERT_ALERT, row).first() is None:
            return False  # the same episode, already alerted
        self.db.emit("transport.alert_raised", a.id, {
            "alert_id": a.id, "kind": a.kind, "plate": a.plate, "permit_id": a.permit_id,
            "permit_city": a.permit_city, "city": a.city, "raised_by": self.city,
            "at": a.at, "started_at": a.started_at, "location": {"lon": a.lon, "lat": a.lat},
            "detail": a.detail,
            "evidence": [{**e, "ts": datetime.fromisoformat(e["ts"])} for e in a.evidence],
        })
        log.info("transport alert", kind=a.kind, plate=a.plate, city=a.city, alert_id=a.id)
        return True

    # queries ------------------------------------------------------------------------------------
    def track(self, plate: str, start: datetime, end: datetime) -> dict:
        try:
            plate = domain.normalise_plate(plate)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        rows = self.s.execute(text(
            f"SELECT ts, lon, lat, speed_kmh FROM {SCHEMA}.positions WHERE plate = :plate "
            "AND ts >= :start AND ts < :end ORDER BY ts LIMIT 20000"),
            {"plate": plate, "start": start, "end": end}).all()
        return {"plate": plate, "points": [
            {"ts": iso_utc(r.ts), "lon": r.lon, "lat": r.lat, "speed_kmh": float(r.speed_kmh)}
            for r in rows]}

    def latest_positions(self, bbox: list[float], since: datetime, until: datetime,
                         limit: int = 2000) -> list[dict]:
        """Each truck's latest position inside a lon/lat box between two instants (joint
        operations list the trucks heading for their checkpoints)."""
        rows = self.s.execute(text(
            f"SELECT DISTINCT ON (plate) plate, ts, lon, lat, speed_kmh, heading "
            f"FROM {SCHEMA}.positions WHERE ts >= :since AND ts <= :until "
            "AND lon BETWEEN :x0 AND :x1 AND lat BETWEEN :y0 AND :y1 "
            "ORDER BY plate, ts DESC LIMIT :limit"),
            {"since": since, "until": until, "x0": bbox[0], "y0": bbox[1], "x1": bbox[2],
             "y1": bbox[3], "limit": limit}).all()
        return [{"plate": r.plate, "ts": iso_utc(r.ts), "lon": r.lon, "lat": r.lat,
                 "speed_kmh": float(r.speed_kmh),
                 "heading": None if r.heading is None else float(r.heading)} for r in rows]

    def list_alerts(self, query: dict) -> dict:
        q = select(alerts).order_by(alerts.c.at.desc()).limit(query["limit"])
        if query.get("plate"):
            q = q.where(alerts.c.plate == domain.normalise_plate(query["plate"]))
        if query.get("kind"):
            q = q.where(alerts.c.kind == query["kind"])
        return {"items": [{
            "id": str(r.id), "kind": r.kind, "plate": r.plate, "permit_id": r.permit_id,
            "permit_city": r.permit_city, "city": r.city, "at": iso_utc(r.at),
            "started_at": iso_utc(r.started_at), "lon": r.lon, "lat": r.lat,
            "detail": r.detail, "evidence": r.evidence} for r in self.s.execute(q)]}

    def list_trips(self, query: dict) -> dict:
        q = select(trips).order_by(trips.c.started_at.desc()).limit(query["limit"])
        if query.get("plate"):
            q = q.where(trips.c.plate == domain.normalise_plate(query["plate"]))
        if query.get("permit_id"):
            q = q.where(trips.c.permit_id == query["permit_id"])
        return {"items": [{
            "id": str(r.id), "plate": r.plate, "permit_id": r.permit_id,
            "origin_site": r.origin_site, "end_site": r.end_site, "status": r.status,
            "started_at": iso_utc(r.started_at), "ended_at": iso_utc(r.ended_at)}
            for r in self.s.execute(q)]}

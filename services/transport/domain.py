"""Rules of construction-waste transport tracking (渣土运输): pure, no broker, no database.

A truck's permit (核准 + 电子联单) names an origin site, a disposal site, a corridor (a line with a
width in metres), allowed hours in local time (Asia/Shanghai; windows may cross midnight), validity
dates, the issuing city and the other cities it may enter. `evaluate` walks a batch of one
vehicle's positions (sorted, newer than the vehicle's last evaluated instant) against the permit and
the vehicle's evaluation state, and returns the new state and the alerts raised, each once per
episode, with the evidence track segment.

Geometry is in UTM 51N metres (`services.common.geo.to_utm`); the batch's points are tested with
shapely 2's vectorised functions (`contains_xy`, `distance`), so the cost per point is small.

Late and repeated points: `split_new` keeps only points strictly newer than the state's last
evaluated instant (and one point per instant); the rest are stored but never evaluated, so a late
point cannot raise a false alert and the same batch sent twice changes nothing.
"""

from __future__ import annotations

import functools
import math
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry

from services.common.geo import _utm_transformer, project_geometry, to_utm, to_wgs84
from services.common.plates import normalise_plate  # noqa: F401  (re-exported)

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
ALERT_KINDS = ("no_permit", "unknown_vehicle", "out_of_hours", "route_deviation",
               "unapproved_stop", "manifest_mismatch", "city_crossing")
# The lead category an alert becomes in the city where it happened.
LEAD_CATEGORY = {"unapproved_stop": "illegal_dumping", "manifest_mismatch": "illegal_dumping"}
EVIDENCE_MAX = 200  # points kept in an alert's evidence segment (the latest ones)


def lead_category(kind: str) -> str:
    return LEAD_CATEGORY.get(kind, "construction_waste")


# --------------------------------------------------------------------------------------------
# Thresholds
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """Configurable thresholds; defaults are those documented in docs/architecture.md (5g)."""

    deviation_m: float = 50.0  # beyond the corridor's half width
    deviation_seconds: float = 60.0  # continuously off the corridor
    stop_minutes: float = 5.0  # stopped away from any approved site
    stop_speed_kmh: float = 3.0  # below this a truck is stopped
    stop_radius_m: float = 30.0  # drift allowed around a stop
    moving_speed_kmh: float = 5.0  # at or above this a truck is moving
    site_tolerance_m: float = 30.0  # a site polygon grown by this much counts as "at the site"
    unload_minutes: float = 3.0  # a dwell inside a site this long is a load or unload
    episode_gap_minutes: float = 30.0  # a time-based episode ends after this long without a breach
    alert_unknown_vehicles: bool = False  # policy: alert on moving unregistered vehicles

    @classmethod
    def from_settings(cls, get: Callable[[str, Any], Any]) -> Thresholds:
        def num(name: str, default: float) -> float:
            return float(get(name, default))

        flag = str(get("TRANSPORT_ALERT_UNKNOWN", "false")).strip().lower() in ("1", "true", "yes")
        return cls(
            deviation_m=num("TRANSPORT_DEVIATION_M", 50.0),
            deviation_seconds=num("TRANSPORT_DEVIATION_SECONDS", 60.0),
            stop_minutes=num("TRANSPORT_STOP_MINUTES", 5.0),
            stop_speed_kmh=num("TRANSPORT_STOP_SPEED_KMH", 3.0),
            stop_radius_m=num("TRANSPORT_STOP_RADIUS_M", 30.0),
            moving_speed_kmh=num("TRANSPORT_MOVING_SPEED_KMH", 5.0),
            site_tolerance_m=num("TRANSPORT_SITE_TOLERANCE_M", 30.0),
            unload_minutes=num("TRANSPORT_UNLOAD_MINUTES", 3.0),
            episode_gap_minutes=num("TRANSPORT_EPISODE_GAP_MINUTES", 30.0),
            alert_unknown_vehicles=flag,
        )


# --------------------------------------------------------------------------------------------
# Plates, positions
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Point:
    """One position, WGS84 and UTM 51N metres."""

    ts: datetime
    lon: float
    lat: float
    x: float
    y: float
    speed_kmh: float
    heading: float | None = None

    def evidence(self) -> dict:
        return {"ts": self.ts.isoformat(), "lon": round(self.lon, 7), "lat": round(self.lat, 7),
                "speed_kmh": self.speed_kmh}


@dataclass(frozen=True)
class Refused:
    index: int
    reason: str


def _parse_raw(raw: Any) -> tuple[str, datetime, float, float, float, float | None]:
    if not isinstance(raw, dict):
        raise ValueError("a position must be an object")
    plate = _plate_cached(raw.get("plate"))
    ts = raw.get("ts")
    if isinstance(ts, str):
        try:
            ts = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"ts is not an ISO 8601 instant: {raw.get('ts')!r}") from None
    if not isinstance(ts, datetime) or ts.tzinfo is None:
        raise ValueError("ts must be an ISO 8601 instant with its offset")
    try:
        lon, lat = float(raw["lon"]), float(raw["lat"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("lon and lat must be numbers") from None
    if not (math.isfinite(lon) and math.isfinite(lat)) or not (
            73.0 <= lon <= 136.0 and 3.0 <= lat <= 54.0):
        raise ValueError(f"position outside China: lon={lon}, lat={lat}")
    crs = raw.get("crs") or "WGS84"
    if crs != "WGS84":
        lon, lat = to_wgs84(lon, lat, crs)
    speed = raw.get("speed_kmh", 0.0)
    try:
        speed = float(0.0 if speed is None else speed)
    except (TypeError, ValueError):
        raise ValueError("speed_kmh must be a number") from None
    if not math.isfinite(speed) or not 0.0 <= speed <= 200.0:
        raise ValueError(f"speed_kmh out of range: {speed}")
    heading = raw.get("heading")
    if heading is not None:
        try:
            heading = float(heading)
        except (TypeError, ValueError):
            raise ValueError("heading must be a number") from None
        if not 0.0 <= heading <= 360.0:
            raise ValueError(f"heading out of range: {heading}")
    return plate, ts.astimezone(UTC), lon, lat, speed, heading


@functools.lru_cache(maxsize=65536)
def _plate_cached(plate: str) -> str:
    return normalise_plate(plate)


def parse_position(raw: Any) -> tuple[str, Point]:
    """Validate one raw position `{plate, ts, lon, lat, crs, speed_kmh, heading}`.

    Returns `(normalised plate, Point)`; raises ValueError with the reason for a bad point.
    """
    plate, ts, lon, lat, speed, heading = _parse_raw(raw)
    x, y = to_utm(lon, lat)
    return plate, Point(ts, lon, lat, x, y, speed, heading)


def parse_batch(raws: Sequence[Any]) -> tuple[dict[str, list[Point]], list[Refused]]:
    """Good points grouped by plate (sorted by ts, one per instant); bad ones refused one by one.
    The projection to UTM is done once for the whole batch (vectorised)."""
    parsed = []
    refused: list[Refused] = []
    for i, raw in enumerate(raws):
        try:
            parsed.append(_parse_raw(raw))
        except (ValueError, TypeError) as exc:
            refused.append(Refused(i, str(exc)))
    by_plate: dict[str, dict[datetime, Point]] = {}
    if parsed:
        xs, ys = _utm_transformer().transform(np.fromiter((p[2] for p in parsed), float),
                                              np.fromiter((p[3] for p in parsed), float))
        for (plate, ts, lon, lat, speed, heading), x, y in zip(parsed, xs.tolist(),
                                                               ys.tolist(), strict=True):
            by_plate.setdefault(plate, {}).setdefault(
                ts, Point(ts, lon, lat, x, y, speed, heading))
    return ({plate: [pts[t] for t in sorted(pts)] for plate, pts in by_plate.items()}, refused)


# --------------------------------------------------------------------------------------------
# Allowed hours (local time, windows may cross midnight)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HourWindow:
    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> HourWindow:
        """`22:00-05:00` (or with an en dash): ValueError if malformed or empty."""
        parts = re.split(r"\s*[-–~]\s*", text.strip())
        if len(parts) != 2:
            raise ValueError(f"an hour window is 'HH:MM-HH:MM', not {text!r}")
        start, end = (time.fromisoformat(p) for p in parts)
        if start == end:
            raise ValueError(f"an hour window cannot be empty: {text!r}")
        return cls(start, end)

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # crosses midnight

    def __str__(self) -> str:
        return f"{self.start.strftime('%H:%M')}-{self.end.strftime('%H:%M')}"


def within_hours(windows: Iterable[HourWindow], at: datetime) -> bool:
    local = at.astimezone(LOCAL_TZ).time()
    return any(w.contains(local) for w in windows)


# --------------------------------------------------------------------------------------------
# Sites and permits (geometry prepared once per permit)
# --------------------------------------------------------------------------------------------


class Site:
    id: str
    kind: str  # construction | disposal
    """A construction or disposal site; `zone_utm` is the polygon grown by the tolerance."""

    @classmethod
    def from_wgs84(cls, id: str, kind: str, polygon: BaseGeometry,
                   tolerance_m: float = 30.0) -> Site:
        return cls(str(id), kind, project_geometry(polygon), tolerance_m)

    def __init__(self, id: str, kind: str, polygon_utm: BaseGeometry, tolerance_m: float = 30.0):
        self.id, self.kind, self.polygon_utm = id, kind, polygon_utm
        self.zone_utm = polygon_utm.buffer(tolerance_m)
        shapely.prepare(self.zone_utm)

    def holds(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return shapely.contains_xy(self.zone_utm, x, y)


class SiteIndex:
    """Registered sites in an STRtree: which sites hold each point, in O(log sites) per point
    instead of testing every site (a city registers hundreds of sites)."""

    def __init__(self, sites: Sequence[Site] = ()):
        self.sites = list(sites)
        self.tree = shapely.STRtree([s.zone_utm for s in self.sites]) if self.sites else None

    def holding(self, xs: np.ndarray, ys: np.ndarray) -> list[list[Site]]:
        """Per point, the sites whose zone holds it, in registration order."""
        out: list[list[Site]] = [[] for _ in range(len(xs))]
        if self.tree is None or not len(xs):
            return out
        point_i, site_i = self.tree.query(shapely.points(xs, ys), predicate="within")
        for k in np.lexsort((site_i, point_i)):
            out[point_i[k]].append(self.sites[site_i[k]])
        return out


@dataclass
class Permit:
    id: str
    plate: str
    origin: Site
    disposal: Site
    corridor_utm: LineString
    width_m: float
    windows: tuple[HourWindow, ...]
    valid_from: date
    valid_to: date
    issuing_city: str
    may_enter: tuple[str, ...] = ()
    status: str = "active"

    def __post_init__(self):
        shapely.prepare(self.corridor_utm)

    @classmethod
    def from_wgs84(cls, *, id: str, plate: str, origin: Site, disposal: Site,
                   corridor: Sequence[Sequence[float]], width_m: float,
                   windows: Iterable[str | HourWindow], valid_from: date, valid_to: date,
                   issuing_city: str, may_enter: Iterable[str] = (),
                   status: str = "active") -> Permit:
        line = project_geometry(LineString([(float(a), float(b)) for a, b in corridor]))
        return cls(str(id), normalise_plate(plate), origin, disposal, line, float(width_m),
                   tuple(w if isinstance(w, HourWindow) else HourWindow.parse(w)
                         for w in windows),
                   valid_from, valid_to, issuing_city, tuple(may_enter), status)

    def valid_on(self, at: datetime) -> bool:
        day = at.astimezone(LOCAL_TZ).date()
        return self.status == "active" and self.valid_from <= day <= self.valid_to

    def allows_city(self, city: str) -> bool:
        return city == self.issuing_city or city in self.may_enter


def pick_permit(permits: Iterable[Permit], at: datetime) -> Permit | None:
    """The vehicle's permit valid at `at` (the latest-starting if several overlap)."""
    valid = [p for p in permits if p.valid_on(at)]
    return max(valid, key=lambda p: (p.valid_from, p.id)) if valid else None


# --------------------------------------------------------------------------------------------
# Cities: which city each point of a batch lies in, cheaply
# --------------------------------------------------------------------------------------------


class CityIndex:
    """City of each point of a batch: a vectorised test against the previous city's boundary
    first, then the locator only for the points that left it."""

    def __init__(self, locator):
        self.locator = locator
        self._prepared: dict[str, BaseGeometry] = {}

    def _boundary(self, city: str) -> BaseGeometry:
        geom = self._prepared.get(city)
        if geom is None:
            geom = self.locator.boundary(city)
            shapely.prepare(geom)
            self._prepared[city] = geom
        return geom

    def cities_at(self, lon: np.ndarray, lat: np.ndarray, hint: str | None) -> list[str | None]:
        out: list[str | None] = [None] * len(lon)
        inside = (shapely.intersects_xy(self._boundary(hint), lon, lat) if hint
                  else np.zeros(len(lon), dtype=bool))
        current = hint
        for i in range(len(lon)):
            if inside[i]:
                out[i] = hint
                continue
            if current and current != hint and shapely.intersects_xy(
                    self._boundary(current), lon[i], lat[i]):
                out[i] = current
                continue
            current = self.locator.city_at(float(lon[i]), float(lat[i]))
            out[i] = current
        return out


# --------------------------------------------------------------------------------------------
# Evaluation state and alerts
# --------------------------------------------------------------------------------------------


@dataclass
class Episode:
    """A breach in progress: since when, the last breaching point, and whether it was alerted."""

    since: datetime
    last: datetime
    alerted: bool = False
    alert_id: str | None = None
    anchor: tuple[float, float] | None = None  # a stop's position (UTM)
    site: str | None = None  # a dwell's site
    evidence: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"since": self.since.isoformat(), "last": self.last.isoformat(),
                "alerted": self.alerted, "alert_id": self.alert_id,
                "anchor": list(self.anchor) if self.anchor else None, "site": self.site,
                "evidence": self.evidence}

    @classmethod
    def from_dict(cls, d: dict) -> Episode:
        return cls(datetime.fromisoformat(d["since"]), datetime.fromisoformat(d["last"]),
                   d.get("alerted", False), d.get("alert_id"),
                   tuple(d["anchor"]) if d.get("anchor") else None, d.get("site"),
                   list(d.get("evidence") or []))


@dataclass
class Trip:
    """The trip in progress: loaded at the origin site, travelling, unloaded at some site."""

    permit_id: str | None
    origin_site: str | None
    started_at: datetime
    status: str = "travelling"  # travelling | closed | mismatch | abandoned
    ended_at: datetime | None = None
    end_site: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def to_dict(self) -> dict:
        return {"id": self.id, "permit_id": self.permit_id, "origin_site": self.origin_site,
                "started_at": self.started_at.isoformat(), "status": self.status,
                "ended_at": self.ended_at.isoformat() if self.ended_at else None,
                "end_site": self.end_site}

    @classmethod
    def from_dict(cls, d: dict) -> Trip:
        return cls(d.get("permit_id"), d.get("origin_site"),
                   datetime.fromisoformat(d["started_at"]), d.get("status", "travelling"),
                   datetime.fromisoformat(d["ended_at"]) if d.get("ended_at") else None,
                   d.get("end_site"), d["id"])


@dataclass
class VehicleState:
    last_ts: datetime | None = None
    city: str | None = None
    at_site: str | None = None  # the site holding the last point, if any
    episodes: dict[str, Episode] = field(default_factory=dict)
    trip: Trip | None = None

    def to_dict(self) -> dict:
        return {"last_ts": self.last_ts.isoformat() if self.last_ts else None,
                "city": self.city, "at_site": self.at_site,
                "episodes": {k: e.to_dict() for k, e in self.episodes.items()},
                "trip": self.trip.to_dict() if self.trip else None}

    @classmethod
    def from_dict(cls, d: dict | None) -> VehicleState:
        if not d:
            return cls()
        return cls(datetime.fromisoformat(d["last_ts"]) if d.get("last_ts") else None,
                   d.get("city"), d.get("at_site"),
                   {k: Episode.from_dict(e) for k, e in (d.get("episodes") or {}).items()},
                   Trip.from_dict(d["trip"]) if d.get("trip") else None)


@dataclass(frozen=True)
class Alert:
    id: str
    kind: str
    plate: str
    permit_id: str | None
    permit_city: str | None
    city: str | None  # where it happened
    at: datetime  # the point that completed the breach
    started_at: datetime  # the episode's start
    lon: float
    lat: float
    detail: dict
    evidence: list[dict]

    @property
    def category(self) -> str:
        return lead_category(self.kind)


@dataclass(frozen=True)
class TripEvent:
    kind: str  # started | closed | mismatch
    trip: Trip


@dataclass
class Outcome:
    state: VehicleState
    alerts: list[Alert] = field(default_factory=list)
    trips: list[TripEvent] = field(default_factory=list)


def split_new(points: Sequence[Point], last_ts: datetime | None) -> list[Point]:
    """The points to evaluate: strictly newer than `last_ts`, sorted, one per instant."""
    seen: dict[datetime, Point] = {}
    for p in points:
        if last_ts is None or p.ts > last_ts:
            seen.setdefault(p.ts, p)
    return [seen[t] for t in sorted(seen)]


def _alert_id(plate: str, kind: str, since: datetime) -> str:
    """Deterministic: the same episode always yields the same alert id (a replay is a repeat)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"liandong:transport:{plate}:{kind}:"
                          f"{since.astimezone(UTC).isoformat()}"))


def _add_evidence(ep: Episode, p: Point) -> None:
    ep.evidence.append(p.evidence())
    if len(ep.evidence) > EVIDENCE_MAX:
        del ep.evidence[: len(ep.evidence) - EVIDENCE_MAX]


def evaluate(plate: str, registered: bool, permits: Sequence[Permit], state: VehicleState,
             points: Sequence[Point], th: Thresholds, cities: CityIndex | None = None,
             other_sites: SiteIndex | Sequence[Site] = ()) -> Outcome:
    """Evaluate one vehicle's new points (see `split_new`) in order; returns the new state,
    the alerts (each once per episode) and the trip events."""
    state = replace(state, episodes=dict(state.episodes))
    out = Outcome(state)
    pts = split_new(points, state.last_ts)
    if not pts:
        return out
    n = len(pts)
    xs = np.fromiter((p.x for p in pts), float, n)
    ys = np.fromiter((p.y for p in pts), float, n)
    lons = np.fromiter((p.lon for p in pts), float, n)
    lats = np.fromiter((p.lat for p in pts), float, n)
    city_of = (cities.cities_at(lons, lats, state.city) if cities is not None else [None] * n)

    # The permit valid at each point (looked up once per local day), and vectorised geometry
    # per permit in play (usually one).
    by_day: dict[date, Permit | None] = {}
    permit_at: list[Permit | None] = []
    for pt in pts:
        day = pt.ts.astimezone(LOCAL_TZ).date()
        if day not in by_day:
            by_day[day] = pick_permit(permits, pt.ts)
        permit_at.append(by_day[day])
    in_play = {p.id: p for p in permit_at if p is not None}
    geo: dict[str, dict[str, np.ndarray]] = {}
    for pid, permit in in_play.items():
        pts_xy = shapely.points(xs, ys)
        geo[pid] = {
            "off": shapely.distance(permit.corridor_utm, pts_xy) - permit.width_m / 2.0,
            "origin": permit.origin.holds(xs, ys),
            "disposal": permit.disposal.holds(xs, ys),
        }
    index = other_sites if isinstance(other_sites, SiteIndex) else SiteIndex(other_sites)
    holding = index.holding(xs, ys)
    gap = timedelta(minutes=th.episode_gap_minutes)

    def raise_alert(kind: str, ep: Episode, p: Point, city: str | None, permit: Permit | None,
                    detail: dict) -> None:
        ep.alerted = True
        ep.alert_id = _alert_id(plate, kind, ep.since)
        out.alerts.append(Alert(ep.alert_id, kind, plate, permit.id if permit else None,
                                permit.issuing_city if permit else None, city, p.ts, ep.since,
                                p.lon, p.lat, detail, list(ep.evidence)))

    def timed_breach(kind: str, breach: bool, p: Point, city, permit, detail) -> None:
        """no_permit / unknown_vehicle / out_of_hours: alert at the first breaching point; the
        episode ends after `episode_gap_minutes` without a breach."""
        ep = state.episodes.get(kind)
        if ep is not None and p.ts - ep.last >= gap:
            del state.episodes[kind]
            ep = None
        if not breach:
            return
        if ep is None:
            ep = state.episodes[kind] = Episode(p.ts, p.ts)
        ep.last = p.ts
        if not ep.alerted:
            _add_evidence(ep, p)
            raise_alert(kind, ep, p, city, permit, detail() if callable(detail) else detail)

    for i, p in enumerate(pts):
        city = city_of[i]
        permit = permit_at[i]
        moving = p.speed_kmh >= th.moving_speed_kmh
        stopped = p.speed_kmh < th.stop_speed_kmh
        g = geo.get(permit.id) if permit else None
        at_site = None
        if g is not None:
            at_site = (permit.origin.id if g["origin"][i]
                       else permit.disposal.id if g["disposal"][i] else None)
        other_site = next((s for s in holding[i]
                           if permit is None or s.id not in (permit.origin.id,
                                                             permit.disposal.id)), None)

        # permits and hours --------------------------------------------------------------
        if not registered:
            if th.alert_unknown_vehicles:
                timed_breach("unknown_vehicle", moving, p, city, None, {})
        else:
            timed_breach("no_permit", moving and permit is None, p, city, None, {})
        if permit is not None:
            timed_breach("out_of_hours", moving and not within_hours(permit.windows, p.ts),
                         p, city, permit, lambda permit=permit, p=p: {
                             "windows": [str(w) for w in permit.windows],
                             "local_time": p.ts.astimezone(LOCAL_TZ).strftime("%H:%M")})

        # corridor --------------------------------------------------------------------------
        if g is not None:
            off = float(g["off"][i])
            breach = off > th.deviation_m and at_site is None
            ep = state.episodes.get("route_deviation")
            if breach:
                if ep is None:
                    ep = state.episodes["route_deviation"] = Episode(p.ts, p.ts)
                ep.last = p.ts
                if not ep.alerted:
                    _add_evidence(ep, p)
                    if (p.ts - ep.since).total_seconds() >= th.deviation_seconds:
                        raise_alert("route_deviation", ep, p, city, permit,
                                    {"off_corridor_m": round(off, 1),
                                     "threshold_m": th.deviation_m,
                                     "seconds": (p.ts - ep.since).total_seconds()})
            elif ep is not None:
                del state.episodes["route_deviation"]

        # stops away from approved sites; dwells in other sites (unloading elsewhere) ------------
        ep = state.episodes.get("stop")
        if stopped:
            anchored = ep is not None and ep.anchor is not None and math.hypot(
                p.x - ep.anchor[0], p.y - ep.anchor[1]) <= th.stop_radius_m
            if not anchored:
                ep = state.episodes["stop"] = Episode(p.ts, p.ts, anchor=(p.x, p.y),
                                                      site=at_site or (other_site.id if
                                                                       other_site else None))
            ep.last = p.ts
            _add_evidence(ep, p)
            minutes = (p.ts - ep.since).total_seconds() / 60.0
            approved = at_site is not None
            if not ep.alerted and registered and not approved:
                if other_site is not None and minutes >= th.unload_minutes and (
                        state.trip is not None and state.trip.status == "travelling"):
                    raise_alert("manifest_mismatch", ep, p, city, permit,
                                {"site": other_site.id,
                                 "expected_site": permit.disposal.id if permit else None,
                                 "minutes": round(minutes, 1)})
                    state.trip.status, state.trip.ended_at = "mismatch", p.ts
                    state.trip.end_site = other_site.id
                    out.trips.append(TripEvent("mismatch", state.trip))
                    state.trip = None
                elif other_site is None and minutes >= th.stop_minutes:
                    raise_alert("unapproved_stop", ep, p, city, permit,
                                {"minutes": round(minutes, 1),
                                 "threshold_minutes": th.stop_minutes})
            # trips: a dwell in the origin loads, a dwell in the disposal site unloads
            if approved and minutes >= th.unload_minutes and permit is not None:
                if at_site == permit.disposal.id and state.trip is not None \
                        and state.trip.status == "travelling":
                    state.trip.status, state.trip.ended_at = "closed", p.ts
                    state.trip.end_site = at_site
                    out.trips.append(TripEvent("closed", state.trip))
                    state.trip = None
        elif ep is not None:
            del state.episodes["stop"]

        # a trip starts when a truck leaves its origin site
        if permit is not None and state.at_site == permit.origin.id and at_site is None and moving:
            if state.trip is not None and state.trip.status == "travelling":
                state.trip.status, state.trip.ended_at = "abandoned", p.ts
                out.trips.append(TripEvent("abandoned", state.trip))
            state.trip = Trip(permit.id, permit.origin.id, p.ts)
            out.trips.append(TripEvent("started", state.trip))
        if at_site is not None or moving:
            state.at_site = at_site

        # cities ----------------------------------------------------------------------------
        if city is not None and city != state.city:
            if state.city is not None:
                ep = Episode(p.ts, p.ts)
                _add_evidence(ep, p)
                allowed = permit.allows_city(city) if permit else False
                raise_alert("city_crossing", ep, p, city, permit,
                            {"from_city": state.city, "to_city": city, "allowed": allowed})
            state.city = city
        state.last_ts = p.ts
    return out

"""Lead rules without I/O: deduplication, routing and visibility."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from contracts.errors import InvalidInput, OutsideJurisdiction
from contracts.events.jointops import SOURCE_ORG as JOINTOPS_SOURCE_ORG
from contracts.http.leads import CITY_WIDE_ROLES, DECIDE_ROLES, SUBMIT_ROLES  # noqa: F401
from contracts.reference import CATEGORY_CODES
from services.common.geo import CityLocator, SquadZones, metres_between

# Lower bounds of a degree's length on the WGS84 ellipsoid (a degree of latitude is shortest at
# the equator, 110,574 m), plus 1 % margin: the box may hold extra candidates, never miss one;
# the exact geodesic distance decides.
MIN_METRES_PER_DEGREE_LAT = 110_574.0
METRES_PER_DEGREE_LON_AT_EQUATOR = 111_320.0
BOX_MARGIN = 1.01


@dataclass(frozen=True)
class DedupPolicy:
    """Same category within `radius_m` metres and `window` of an open lead: one lead."""

    radius_m: float
    window: timedelta


def dedup_policies(default_radius_m: float, default_window_min: float,
                   overrides: str | None) -> dict[str, DedupPolicy]:
    """Per-category policies; `overrides` is `category=metres:minutes,...`."""
    default = DedupPolicy(float(default_radius_m), timedelta(minutes=float(default_window_min)))
    policies = dict.fromkeys(CATEGORY_CODES, default)
    for item in filter(None, (x.strip() for x in (overrides or "").split(","))):
        try:
            category, values = item.split("=")
            metres, minutes = values.split(":")
            if category not in policies:
                raise ValueError(f"unknown category {category!r}")
            policies[category] = DedupPolicy(float(metres), timedelta(minutes=float(minutes)))
        except ValueError as exc:
            raise ValueError(f"bad DEDUP_OVERRIDES item {item!r}: {exc}") from exc
    return policies


def search_box(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    """A lon/lat box that contains the circle of `radius_m` around the point."""
    dlat = BOX_MARGIN * radius_m / MIN_METRES_PER_DEGREE_LAT
    dlon = BOX_MARGIN * radius_m / (METRES_PER_DEGREE_LON_AT_EQUATOR
                                    * max(math.cos(math.radians(lat)), 0.01))
    return lon - dlon, lon + dlon, lat - dlat, lat + dlat


LOCK_CELL_DEG = 0.01  # about 1 km


def dedup_lock_keys(category: str, lon: float, lat: float, radius_m: float) -> list[int]:
    """Advisory-lock keys for the grid cells the dedup circle touches.

    Two leads within the radius of each other each lock the cell that holds the other, so they
    are serialised and the second sees the first; leads far apart never wait on each other.
    Sorted, so two transactions always take their locks in the same order (no deadlock).
    """
    min_lon, max_lon, min_lat, max_lat = search_box(lon, lat, radius_m)
    keys = set()
    for cx in range(math.floor(min_lon / LOCK_CELL_DEG), math.floor(max_lon / LOCK_CELL_DEG) + 1):
        for cy in range(math.floor(min_lat / LOCK_CELL_DEG),
                        math.floor(max_lat / LOCK_CELL_DEG) + 1):
            digest = hashlib.blake2b(f"{category}:{cx}:{cy}".encode(), digest_size=8).digest()
            keys.add(int.from_bytes(digest, "big", signed=True))
    return sorted(keys)


@dataclass(frozen=True)
class Candidate:
    id: str
    lon: float
    lat: float
    occurred_at: datetime


def pick_duplicate(candidates: list[Candidate], lon: float, lat: float, occurred_at: datetime,
                   policy: DedupPolicy) -> tuple[Candidate, float] | None:
    """The nearest open lead within the policy's radius and time window, with its distance."""
    best = None
    for c in candidates:
        if abs(c.occurred_at - occurred_at) > policy.window:
            continue
        d = metres_between(lon, lat, c.lon, c.lat)
        if d <= policy.radius_m and (best is None or d < best[1]):
            best = (c, d)
    return best


@dataclass(frozen=True)
class Routing:
    city: str  # the city whose boundary holds the point
    squad: str | None  # the squad zone, when the city is ours
    status: str  # routed | handed_over

    @property
    def to_city(self) -> str | None:
        return self.city if self.status == "handed_over" else None


class Router:
    """City by boundary, then the squad zone inside our own city."""

    def __init__(self, own_city: str, locator: CityLocator, zones: SquadZones,
                 policies: dict[str, DedupPolicy]):
        self.own_city = own_city
        self.locator = locator
        self.zones = zones
        self.policies = policies  # dedup policy per category

    def route(self, lon: float, lat: float) -> Routing:
        city = self.locator.city_at(lon, lat)
        if city is None:
            raise OutsideJurisdiction(
                "the location lies outside the five cities (宝嘉常昆太)",
                {"location": ["outside Taicang, Kunshan, Changshu, Jiading and Baoshan"]},
            )
        if city != self.own_city:
            return Routing(city=city, squad=None, status="handed_over")
        zone = self.zones.zone_at(lon, lat)
        return Routing(city=city, squad=zone.squad if zone else None, status="routed")


def can_see(caller: dict, lead_source_org: str) -> bool:
    return lead_source_org == caller["org_id"] or bool(CITY_WIDE_ROLES & set(caller["roles"]))




def check_decision(decision: str, reason: str | None) -> None:
    if decision == "reject" and not (reason or "").strip():
        raise InvalidInput("a rejection needs a reason", {"reason": ["required to reject"]})


# What a partner reports back on a lead we handed over, in the order it can happen; a report
# that arrives after a later one (the bridge does not order across event types) is recorded in
# the history but does not move the status back.
PARTNER_PROGRESS = {"received": 1, "accepted": 2, "rejected": 2, "case_opened": 3, "closed": 4}


def partner_status_advances(current: str | None, reported: str) -> bool:
    return PARTNER_PROGRESS[reported] > PARTNER_PROGRESS.get(current, 0)


def handover_overdue_level(waited_minutes: float, remind_after: float,
                           escalate_after: float) -> int:
    """0 in time; 1 past the response limit (提示单); 2 past the escalation limit (督办)."""
    if waited_minutes >= escalate_after:
        return 2
    return 1 if waited_minutes >= remind_after else 0


# Muck-truck alerts of this city's transport service (渣土运输) become leads.
TRANSPORT_CALLER = {"org_id": "system:transport", "org_name": "渣土监管 Transport monitoring",
                    "roles": ["source"]}
TRANSPORT_ILLEGAL_DUMPING = {"unapproved_stop", "manifest_mismatch"}
TRANSPORT_LABELS = {
    "no_permit": "无有效核准 no valid permit", "unknown_vehicle": "未登记车辆 unknown vehicle",
    "out_of_hours": "超时段运输 outside permitted hours",
    "route_deviation": "偏离路线 route deviation",
    "unapproved_stop": "异常停留(疑似偷倒) suspected dumping stop",
    "manifest_mismatch": "未按联单消纳 unloaded at the wrong site",
    "city_crossing": "跨区域驶入 entered another city without permission",
}


def lead_from_transport_alert(data: dict, own_city: str) -> dict | None:
    """The lead submission for a transport alert raised in this city, or None (an allowed city
    crossing is not a violation; an alert outside the five cities has no jurisdiction)."""
    if data.get("raised_by") != own_city or not data.get("city"):
        return None
    kind = data["kind"]
    if kind == "city_crossing" and data.get("detail", {}).get("allowed"):
        return None
    evidence_json = json.dumps(data.get("evidence") or [], sort_keys=True, default=str)
    occurred = min(data["at"], datetime.now(UTC))
    return {
        "source_ref": str(data["alert_id"]),
        "category": "illegal_dumping" if kind in TRANSPORT_ILLEGAL_DUMPING
        else "construction_waste",
        "description": (f"{TRANSPORT_LABELS.get(kind, kind)}: {data['plate']}, permit "
                        f"{data.get('permit_id') or '-'} ({data.get('permit_city') or '-'})"),
        "location": {"lon": data["location"]["lon"], "lat": data["location"]["lat"],
                     "crs": "WGS84"},
        "occurred_at": occurred.isoformat(),
        "evidence": [{"uri": f"liandong:transport/alerts/{data['alert_id']}",
                      "sha256": hashlib.sha256(evidence_json.encode()).hexdigest()}],
    }


JOINTOPS_CALLER = {"org_id": "system:jointops", "org_name": JOINTOPS_SOURCE_ORG,
                   "roles": ["source"]}


def leads_from_report(report: dict) -> list[dict]:
    """The lead submissions for the violations of a checkpoint report filed in this city."""
    leads = []
    for v in report["violations"]:
        plate = f"{v['plate']}: " if v.get("plate") else ""
        leads.append({
            "source_ref": str(v["violation_id"]),
            "category": v["category"],
            "description": (f"联合整治 joint operation, checkpoint {report['checkpoint']}: "
                            f"{plate}{v['description']}")[:4000],
            "location": {"lon": v["location"]["lon"], "lat": v["location"]["lat"],
                         "crs": "WGS84"},
            "address": v.get("address"),
            "occurred_at": v["occurred_at"].isoformat(),
            "evidence": v.get("evidence") or [],
        })
    return leads

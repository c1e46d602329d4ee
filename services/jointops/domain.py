"""Joint operation rules without I/O: the area (a polygon, or a stretch of shared border with a
buffer), the plan's checks, the life cycle, staffing, trucks heading for a checkpoint, and the
after-action figures."""

from __future__ import annotations

import csv
import io
import math
from collections import Counter, defaultdict
from datetime import datetime, timedelta

import shapely
from shapely.geometry import LineString, MultiLineString, Point, mapping
from shapely.geometry.base import BaseGeometry

from contracts.errors import Conflict, InvalidInput
from contracts.reference import CATEGORIES, CITIES, OPERATION_KINDS
from services.common.geo import (
    CityLocator,
    parse_polygon,
    project_geometry,
    to_utm,
    to_wgs84,
    unproject_geometry,
)

MAX_WINDOW = timedelta(days=31)
MAX_AREA_KM2 = 3000.0
BORDER_SNAP_M = 50.0  # boundary parts this close to the neighbour count as the shared border
STRETCH_SLACK_M = 500.0
AREA_SIMPLIFY_M = 20.0
CHECKPOINT_TOLERANCE_M = 1.0

# action → the statuses it may start from, and the status it leads to
TRANSITIONS = {
    "invite": ({"draft"}, "invited"),
    "confirm": ({"invited"}, "confirmed"),
    "start": ({"confirmed"}, "active"),
    "complete": ({"active"}, "completed"),
    "report": ({"completed", "reported"}, "reported"),
    "cancel": ({"draft", "invited", "confirmed", "active"}, "cancelled"),
}
CHANGE_OF = {"invite": "invited", "confirm": "confirmed", "start": "activated",
             "complete": "completed", "report": "reported", "cancel": "cancelled"}
REVISABLE = {"draft", "invited", "confirmed"}
LIVE = {"active"}
# An operation still holds its teams (for the overlap rule) unless it was cancelled.
HOLDS_TEAMS = {"draft", "invited", "confirmed", "active", "completed", "reported"}


def next_status(action: str, status: str) -> str:
    allowed, target = TRANSITIONS[action]
    if status not in allowed:
        raise Conflict(f"{action}: not possible for an operation that is {status}",
                       {"status": [f"{action} needs one of: {', '.join(sorted(allowed))}"]})
    return target


# area ----------------------------------------------------------------------------------------
def shared_border(locator: CityLocator, a: str, b: str) -> BaseGeometry:
    """The border of `a` and `b` as lines in UTM metres (empty when they do not touch)."""
    pa, pb = project_geometry(locator.boundary(a)), project_geometry(locator.boundary(b))
    line = pa.boundary.intersection(pb.buffer(BORDER_SNAP_M))
    lines = [g for g in getattr(line, "geoms", [line]) if g.geom_type in ("LineString",
                                                                           "MultiLineString")]
    if not lines:
        return MultiLineString()
    return shapely.line_merge(shapely.union_all(lines))


def point_near_border(locator: CityLocator, a: str, b: str, fraction: float, side: str,
                      metres: float) -> tuple[float, float]:
    """A WGS84 point in `side` about `metres` from the border of `a` and `b`, at `fraction` of
    its longest stretch (for demo plans and tests)."""
    line = shared_border(locator, a, b)
    line = max(getattr(line, "geoms", [line]), key=lambda g: g.length)
    on = line.interpolate(fraction, normalized=True)
    for angle in range(0, 360, 15):
        p = Point(on.x + metres * math.sin(math.radians(angle)),
                  on.y + metres * math.cos(math.radians(angle)))
        lon, lat = unproject_geometry(p).coords[0]
        if locator.city_at(lon, lat) == side:
            return round(lon, 6), round(lat, 6)
    raise ValueError(f"no point of {side} {metres} m from the {a}–{b} border at {fraction}")


def resolve_area(spec: dict, locator: CityLocator) -> tuple[dict, BaseGeometry]:
    """The operation's area as a WGS84 GeoJSON polygon and as a UTM geometry (for checks), from
    the coordinator's `{"polygon": ...}` or `{"border": {cities, buffer_m, from?, to?}}`."""
    if spec.get("polygon") is not None:
        try:
            wgs = parse_polygon(spec["polygon"])
        except ValueError as exc:
            raise InvalidInput("the area is not a usable polygon",
                               {"area": {"polygon": [str(exc)]}}) from None
        utm = project_geometry(wgs)
    else:
        border = spec["border"]
        a, b = border["cities"]
        line = shared_border(locator, a, b)
        if line.is_empty:
            raise InvalidInput(f"{a} and {b} share no border",
                               {"area": {"border": {"cities": ["these cities do not touch"]}}})
        if border.get("from_point"):
            p, q = (Point(*to_utm(pt["lon"], pt["lat"])) for pt in
                    (border["from_point"], border["to_point"]))
            mid = LineString([p, q]).interpolate(0.5, normalized=True)
            line = line.intersection(mid.buffer(p.distance(q) / 2 + STRETCH_SLACK_M))
            if line.is_empty:
                raise InvalidInput("no shared border lies between `from` and `to`",
                                   {"area": {"border": {"to": ["not along the border"]}}})
        utm = line.buffer(border["buffer_m"]).simplify(AREA_SIMPLIFY_M)
        wgs = unproject_geometry(utm)
    if utm.area / 1e6 > MAX_AREA_KM2:
        raise InvalidInput(f"the area is {utm.area / 1e6:.0f} km², more than {MAX_AREA_KM2:.0f}",
                           {"area": ["too large for one operation"]})
    if not any(utm.intersects(project_geometry(locator.boundary(c))) for c in locator.cities()):
        raise InvalidInput("the area lies outside the five cities",
                           {"area": ["outside the five cities"]})
    return mapping(wgs), utm


def area_geometry(area: dict) -> BaseGeometry:
    """A stored (already checked) area, in UTM metres."""
    return project_geometry(parse_polygon(area))


# the plan --------------------------------------------------------------------------------------
def check_plan(plan: dict, lead_city: str, locator: CityLocator) -> dict:
    """The whole plan checked and normalised (checkpoints in WGS84 with their windows), or one
    `InvalidInput` listing every field in error."""
    errors: dict = {}
    starts, ends = plan["starts_at"], plan["ends_at"]
    if ends <= starts:
        errors["ends_at"] = ["the window ends before it starts"]
    elif ends - starts > MAX_WINDOW:
        errors["ends_at"] = [f"an operation lasts at most {MAX_WINDOW.days} days"]
    partners = list(dict.fromkeys(plan["partners"]))
    if lead_city in partners:
        errors["partners"] = [f"{lead_city} leads the operation; partners are other cities"]
    if errors:
        raise InvalidInput("the plan is not valid", errors)
    area, utm = resolve_area(plan["area"], locator)
    checkpoints, cp_errors, codes = [], {}, set()
    for i, cp in enumerate(plan["checkpoints"]):
        problems = []
        if cp["code"] in codes:
            problems.append(f"checkpoint code {cp['code']} is used twice")
        codes.add(cp["code"])
        loc = cp["location"]
        lon, lat = to_wgs84(loc["lon"], loc["lat"], loc.get("crs", "WGS84"))
        if utm.distance(Point(*to_utm(lon, lat))) > CHECKPOINT_TOLERANCE_M:
            problems.append("the checkpoint lies outside the operation's area")
        follows = cp.get("starts_at") is None and cp.get("ends_at") is None
        cp_starts = cp.get("starts_at") or starts
        cp_ends = cp.get("ends_at") or ends
        if cp_ends <= cp_starts:
            problems.append("the checkpoint's window ends before it starts")
        elif cp_starts < starts or cp_ends > ends:
            problems.append("the checkpoint's window lies outside the operation's window")
        if problems:
            cp_errors[str(i)] = problems
            continue
        checkpoints.append({"code": cp["code"], "name": cp["name"],
                            "location": {"lon": round(lon, 7), "lat": round(lat, 7)},
                            "starts_at": cp_starts, "ends_at": cp_ends,
                            "teams_needed": cp.get("teams_needed", 1),
                            # the operation's own window: moves with it on a revision
                            "follows_window": follows})
    if cp_errors:
        raise InvalidInput("some checkpoints are not valid", {"checkpoints": cp_errors})
    return {"name": plan["name"], "kind": plan["kind"], "partners": partners,
            "starts_at": starts, "ends_at": ends, "area": area, "area_spec": _jsonable_spec(
                plan["area"]), "categories": list(dict.fromkeys(plan["categories"])),
            "checkpoints": checkpoints, "briefing": plan.get("briefing")}


def _jsonable_spec(spec: dict) -> dict:
    if spec.get("polygon") is not None:
        return {"polygon": spec["polygon"]}
    border = spec["border"]
    out = {"cities": border["cities"], "buffer_m": border["buffer_m"]}
    if border.get("from_point"):
        out["from"], out["to"] = border["from_point"], border["to_point"]
    return {"border": out}


def check_teams(teams: list[dict], checkpoints: list[dict]) -> None:
    codes = {cp["code"] for cp in checkpoints}
    errors, seen = {}, set()
    for i, team in enumerate(teams):
        problems = []
        if team["checkpoint"] not in codes:
            problems.append(f"no checkpoint {team['checkpoint']} in this operation")
        key = team_key(team["name"])
        if key in seen:
            problems.append(f"team {team['name']} is listed twice")
        seen.add(key)
        if problems:
            errors[str(i)] = problems
    if errors:
        raise InvalidInput("some teams are not valid", {"teams": errors})


def team_key(name: str) -> str:
    """Teams are known by name within their city: case and spacing do not make another team."""
    return " ".join(name.split()).casefold()


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    return a_start < b_end and b_start < a_end


# staffing ---------------------------------------------------------------------------------------
def staffing(checkpoints: list[dict], teams: list[dict]) -> dict[str, list[dict]]:
    by_cp: dict[str, list[dict]] = {cp["code"]: [] for cp in checkpoints}
    for team in teams:
        by_cp.setdefault(team["checkpoint"], []).append(team)
    return by_cp


def short_checkpoints(checkpoints: list[dict], teams: list[dict]) -> list[str]:
    """Checkpoints with fewer teams committed than they need."""
    by_cp = staffing(checkpoints, teams)
    return [cp["code"] for cp in checkpoints if len(by_cp[cp["code"]]) < cp["teams_needed"]]


# trucks heading for a checkpoint ----------------------------------------------------------------
APPROACH_RADIUS_M = 8000.0
APPROACH_MAX_ANGLE = 45.0
MIN_MOVING_KMH = 5.0


def bearing(x1: float, y1: float, x2: float, y2: float) -> float:
    """Compass bearing in degrees (0 = north, 90 = east) from one UTM point to another."""
    return math.degrees(math.atan2(x2 - x1, y2 - y1)) % 360.0


def approaching(trucks: list[dict], checkpoints: list[dict]) -> list[dict]:
    """Trucks (latest position with heading and speed) moving towards a checkpoint within
    `APPROACH_RADIUS_M`, the nearest such checkpoint each, nearest first."""
    cps = [(cp["code"], *to_utm(cp["location"]["lon"], cp["location"]["lat"]))
           for cp in checkpoints]
    out = []
    for truck in trucks:
        if truck.get("heading") is None or truck["speed_kmh"] < MIN_MOVING_KMH:
            continue
        x, y = to_utm(truck["lon"], truck["lat"])
        best = None
        for code, cx, cy in cps:
            distance = math.hypot(cx - x, cy - y)
            off = abs((bearing(x, y, cx, cy) - truck["heading"] + 180.0) % 360.0 - 180.0)
            if distance <= APPROACH_RADIUS_M and off <= APPROACH_MAX_ANGLE and (
                    best is None or distance < best[1]):
                best = (code, distance)
        if best:
            out.append({"plate": truck["plate"], "checkpoint": best[0],
                        "distance_m": round(best[1], 0),
                        "eta_minutes": round(best[1] / (truck["speed_kmh"] / 3.6) / 60, 1),
                        "speed_kmh": truck["speed_kmh"], "heading": truck["heading"],
                        "seen_at": truck["ts"],
                        "location": {"lon": truck["lon"], "lat": truck["lat"]}})
    return sorted(out, key=lambda t: t["distance_m"])


# after action ---------------------------------------------------------------------------------
LEAD_STATES = {"routed", "handed_over", "received", "merged", "accepted", "rejected",
               "case_opened", "case_closed"}
CASE_STATES = {"case_opened", "case_closed"}


def after_action(op: dict, reports: list[dict], violations: list[dict]) -> dict:
    """Figures per city, per checkpoint and per category, with totals; every figure is a count
    over the same reports and violations, so they reconcile with each other and with cases."""
    def figures(rs: list[dict], vs: list[dict]) -> dict:
        states = Counter(v["state"] for v in vs)
        return {"reports": len(rs), "vehicles_checked": sum(r["vehicles_checked"] for r in rs),
                "violations": len(vs),
                "leads": sum(n for s, n in states.items() if s in LEAD_STATES),
                "pending": states["pending"],
                "handed_over": sum(1 for v in vs if v["handled_by"] and
                                   v["handled_by"] != v["reported_by"]),
                "rejected": states["rejected"], "merged": states["merged"],
                "cases_opened": sum(n for s, n in states.items() if s in CASE_STATES),
                "cases_closed": states["case_closed"]}

    reports_by_city, viol_by_city = defaultdict(list), defaultdict(list)
    reports_by_cp, viol_by_cp = defaultdict(list), defaultdict(list)
    for r in reports:
        reports_by_city[r["city"]].append(r)
        reports_by_cp[r["checkpoint"]].append(r)
    for v in violations:
        viol_by_city[v["reported_by"]].append(v)
        viol_by_cp[v["checkpoint"]].append(v)
    # the participants, and any other city where a violation's lead and case are
    cities = list(dict.fromkeys([op["lead_city"], *op["partners"],
                                 *sorted({v["handled_by"] for v in violations
                                          if v["handled_by"]})]))
    by_city = [{"city": c, "name": f"{CITIES[c].name_zh} {CITIES[c].name_en}",
                **figures(reports_by_city[c], viol_by_city[c]),
                "cases_here": sum(1 for v in violations if v["handled_by"] == c
                                  and v["state"] in CASE_STATES)} for c in cities]
    by_checkpoint = [{"checkpoint": cp["code"], "name": cp["name"],
                      **figures(reports_by_cp[cp["code"]], viol_by_cp[cp["code"]])}
                     for cp in op["checkpoints"]]
    by_category = []
    for code, n in sorted(Counter(v["category"] for v in violations).items()):
        vs = [v for v in violations if v["category"] == code]
        by_category.append({"category": code, "name": f"{CATEGORIES[code].name_zh} "
                                                      f"{CATEGORIES[code].name_en}",
                            "violations": n,
                            "cases_opened": sum(1 for v in vs if v["state"] in CASE_STATES)})
    totals = figures(reports, violations)
    report = {"operation_id": op["operation_id"], "name": op["name"], "kind": op["kind"],
              "status": op["status"], "lead_city": op["lead_city"],
              "window": {"starts_at": op["starts_at"], "ends_at": op["ends_at"]},
              "totals": totals, "by_city": by_city, "by_checkpoint": by_checkpoint,
              "by_category": by_category, "violations": violations}
    report["summary"] = summary_text(op, totals, by_city)
    return report


def summary_text(op: dict, totals: dict, by_city: list[dict]) -> str:
    kind = OPERATION_KINDS[op["kind"]]
    cities = "、".join(CITIES[c].name_zh for c in [op["lead_city"], *op["partners"]])
    on_the_way = (totals["violations"] - totals["cases_opened"] - totals["rejected"]
                  - totals["merged"])
    lines = [
        f"{op['name']}({kind.name_zh} {kind.name_en}),{cities}联合开展。",
        f"共上报 {totals['reports']} 份检查点报告,检查车辆 {totals['vehicles_checked']} 辆,"
        f"发现违法行为 {totals['violations']} 起,立案 {totals['cases_opened']} 件"
        f"(已结案 {totals['cases_closed']} 件)。",
        f"{totals['reports']} checkpoint report(s), {totals['vehicles_checked']} vehicles "
        f"checked, {totals['violations']} violation(s), {totals['cases_opened']} case(s) opened "
        f"({totals['cases_closed']} closed), {on_the_way} on the way to a case, "
        f"{totals['rejected']} rejected.",
    ]
    for c in by_city:
        lines.append(f"- {c['name']}: {c['reports']} report(s), {c['vehicles_checked']} "
                     f"vehicles, {c['violations']} violation(s) found, {c['cases_here']} case(s) "
                     f"opened there")
    return "\n".join(lines)


CSV_COLUMNS = ("section", "key", "reports", "vehicles_checked", "violations", "leads",
               "cases_opened", "cases_closed", "cases_here")


def after_action_csv(report: dict) -> str:
    """One row per city (what its teams found, and `cases_here`: cases opened in that city),
    checkpoint and category, and the totals; then one row per violation."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    rows = [("city", c["city"], c) for c in report["by_city"]]
    rows += [("checkpoint", c["checkpoint"], c) for c in report["by_checkpoint"]]
    rows += [("category", c["category"], c) for c in report["by_category"]]
    rows.append(("total", "all", {**report["totals"], "cases_here": report["totals"][
        "cases_opened"]}))
    for section, key, fig in rows:
        writer.writerow([section, key, *(fig.get(col, "") for col in CSV_COLUMNS[2:])])
    buf.write("\n")
    writer.writerow(("violation_id", "reported_by", "checkpoint", "plate", "category", "city",
                     "state", "handled_by", "case_no"))
    for v in report["violations"]:
        writer.writerow((v["violation_id"], v["reported_by"], v["checkpoint"], v["plate"] or "",
                         v["category"], v["city"] or "", v["state"], v["handled_by"] or "",
                         v["case_no"] or ""))
    return buf.getvalue()


# violations and their leads --------------------------------------------------------------------
# The order a violation's lead moves in: a report never moves it back.
STATE_ORDER = {s: i for i, s in enumerate(
    ("pending", "routed", "handed_over", "received", "merged", "accepted", "rejected",
     "case_opened", "case_closed"))}


def advances(current: str, new: str) -> bool:
    return STATE_ORDER[new] > STATE_ORDER[current]


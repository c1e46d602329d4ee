"""Joint operation rules without I/O: the area, the plan's checks, the life cycle, staffing,
trucks heading for a checkpoint, and after-action figures that add up."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime, timedelta

import pytest
from shapely.geometry import Point

from contracts.errors import Conflict, InvalidInput
from services.common.geo import default_city_locator, to_utm, unproject_geometry, wgs84_to_gcj02
from services.jointops import domain

LOC = default_city_locator()
START = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)  # 00:00 Shanghai
END = START + timedelta(hours=4)
CP_TC = domain.point_near_border(LOC, "taicang", "jiading", 0.35, "taicang", 800)
CP_JD = domain.point_near_border(LOC, "taicang", "jiading", 0.55, "jiading", 800)
FAR = (121.05, 31.60)
BORDER = {"polygon": None, "border": {"cities": ["taicang", "jiading"], "buffer_m": 2000,
                                      "from_point": None, "to_point": None}}


def plan(**overrides) -> dict:
    body = {"name": "零点行动", "kind": "zero_hour", "partners": ["jiading", "baoshan"],
            "starts_at": START, "ends_at": END, "area": BORDER,
            "categories": ["construction_waste"], "briefing": None,
            "checkpoints": [cp("CP1", CP_TC), cp("CP2", CP_JD, teams_needed=2)]}
    body.update(overrides)
    return body


def cp(code, point, crs="WGS84", **kw) -> dict:
    return {"code": code, "name": code, "location": {"lon": point[0], "lat": point[1],
                                                     "crs": crs},
            "starts_at": None, "ends_at": None, "teams_needed": 1, **kw}


def errors_of(exc_info) -> dict:
    return exc_info.value.errors


# area --------------------------------------------------------------------------------------
def test_the_border_area_follows_the_shared_border_with_its_buffer():
    line = domain.shared_border(LOC, "taicang", "jiading")
    assert 40_000 < line.length < 55_000  # the Taicang–Jiading border is ~46 km
    area, utm = domain.resolve_area(BORDER, LOC)
    assert area["type"] == "Polygon"
    # the line buffered by 2 km, give or take the 20 m the polygon is simplified by
    assert utm.buffer(25).contains(line.buffer(2000))
    assert line.buffer(2025).contains(utm)
    assert utm.contains(line.interpolate(0.5, normalized=True))
    assert not utm.contains(Point(*to_utm(*FAR)))


def test_a_stretch_between_two_points_keeps_only_that_part_of_the_border():
    line = domain.shared_border(LOC, "taicang", "jiading")
    a, b = (unproject_geometry(line.interpolate(f, normalized=True)).coords[0]
            for f in (0.3, 0.4))
    spec = {"polygon": None, "border": {**BORDER["border"],
                                        "from_point": {"lon": a[0], "lat": a[1]},
                                        "to_point": {"lon": b[0], "lat": b[1]}}}
    _, whole = domain.resolve_area(BORDER, LOC)
    _, stretch = domain.resolve_area(spec, LOC)
    assert stretch.area < whole.area / 3
    assert stretch.contains(line.interpolate(0.35, normalized=True))
    assert not stretch.contains(line.interpolate(0.8, normalized=True))


def test_cities_without_a_common_border_are_refused():
    spec = {"polygon": None, "border": {**BORDER["border"], "cities": ["changshu", "jiading"]}}
    with pytest.raises(InvalidInput, match="share no border"):
        domain.resolve_area(spec, LOC)


@pytest.mark.parametrize("polygon", [
    {"type": "Point", "coordinates": [121.1, 31.4]},
    {"type": "Polygon", "coordinates": [[[121.0, 31.4], [121.2, 31.5], [121.2, 31.4],
                                         [121.0, 31.5], [121.0, 31.4]]]},  # a bow tie
    {"type": "Polygon", "coordinates": [[[400, 31], [401, 31], [401, 32], [400, 31]]]},
    {"type": "Polygon", "coordinates": [[[116.3, 39.9], [116.4, 39.9], [116.4, 40.0],
                                         [116.3, 39.9]]]},  # Beijing: outside the five cities
    {"type": "Polygon"},
    "not even an object",
])
def test_unusable_polygons_are_refused(polygon):
    with pytest.raises(InvalidInput):
        domain.resolve_area({"polygon": polygon, "border": None}, LOC)


# the plan -----------------------------------------------------------------------------------
def test_a_good_plan_is_normalised():
    checked = domain.check_plan(plan(partners=["jiading", "baoshan", "jiading"]), "taicang", LOC)
    assert checked["partners"] == ["jiading", "baoshan"]
    assert [c["code"] for c in checked["checkpoints"]] == ["CP1", "CP2"]
    assert checked["checkpoints"][0]["starts_at"] == START  # defaults to the operation's
    assert checked["area_spec"] == {"border": {"cities": ["taicang", "jiading"],
                                               "buffer_m": 2000}}


def test_a_gcj02_checkpoint_is_converted():
    gcj = wgs84_to_gcj02(*CP_TC)
    checked = domain.check_plan(plan(checkpoints=[cp("G", gcj, crs="GCJ02")]), "taicang", LOC)
    loc = checked["checkpoints"][0]["location"]
    assert (loc["lon"], loc["lat"]) == pytest.approx(CP_TC, abs=1e-5)


@pytest.mark.parametrize("overrides, field", [
    ({"ends_at": START - timedelta(minutes=1)}, "ends_at"),
    ({"ends_at": START}, "ends_at"),
    ({"ends_at": START + timedelta(days=40)}, "ends_at"),
    ({"partners": ["taicang"]}, "partners"),
    ({"checkpoints": [cp("X", FAR)]}, "checkpoints"),
    ({"checkpoints": [cp("A", CP_TC), cp("A", CP_JD)]}, "checkpoints"),
    ({"checkpoints": [cp("A", CP_TC, starts_at=END, ends_at=END + timedelta(hours=1))]},
     "checkpoints"),
    ({"checkpoints": [cp("A", CP_TC, starts_at=START + timedelta(hours=2),
                         ends_at=START + timedelta(hours=1))]}, "checkpoints"),
])
def test_bad_plans_name_the_field(overrides, field):
    with pytest.raises(InvalidInput) as exc:
        domain.check_plan(plan(**overrides), "taicang", LOC)
    assert field in errors_of(exc)


def test_every_bad_checkpoint_is_listed_at_once():
    with pytest.raises(InvalidInput) as exc:
        domain.check_plan(plan(checkpoints=[cp("A", CP_TC), cp("B", FAR), cp("C", FAR)]),
                          "taicang", LOC)
    assert sorted(errors_of(exc)["checkpoints"]) == ["1", "2"]


def test_teams_must_name_a_checkpoint_of_the_plan_and_appear_once():
    cps = [{"code": "CP1"}, {"code": "CP2"}]
    domain.check_teams([{"name": "一中队", "checkpoint": "CP1"}], cps)
    with pytest.raises(InvalidInput) as exc:
        domain.check_teams([{"name": "一中队", "checkpoint": "CP9"},
                            {"name": " 一中队", "checkpoint": "CP1"}], cps)
    assert set(errors_of(exc)["teams"]) == {"0", "1"}


def test_team_names_are_one_team_whatever_the_spacing_or_case():
    assert domain.team_key("  Liuhe   Squad ") == domain.team_key("liuhe squad")


@pytest.mark.parametrize("a, b, expected", [
    ((0, 4), (4, 8), False), ((0, 4), (3, 8), True), ((2, 3), (0, 8), True),
    ((5, 6), (0, 4), False)])
def test_windows_overlap_only_when_they_share_time(a, b, expected):
    h = [START + timedelta(hours=x) for x in (*a, *b)]
    assert domain.overlaps(*h) is expected


# life cycle ----------------------------------------------------------------------------------
def test_the_life_cycle():
    status = "draft"
    for action, expected in (("invite", "invited"), ("confirm", "confirmed"),
                             ("start", "active"), ("complete", "completed"),
                             ("report", "reported")):
        status = domain.next_status(action, status)
        assert status == expected
    assert domain.next_status("report", "reported") == "reported"  # reported again: fine


@pytest.mark.parametrize("action, status", [
    ("start", "draft"), ("confirm", "draft"), ("invite", "active"), ("complete", "confirmed"),
    ("report", "active"), ("cancel", "completed"), ("cancel", "cancelled"),
    ("invite", "cancelled")])
def test_steps_out_of_order_are_conflicts(action, status):
    with pytest.raises(Conflict):
        domain.next_status(action, status)


def test_checkpoints_short_of_teams():
    cps = [{"code": "CP1", "teams_needed": 1}, {"code": "CP2", "teams_needed": 2},
           {"code": "CP3", "teams_needed": 0}]
    teams = [{"checkpoint": "CP1"}, {"checkpoint": "CP2"}]
    assert domain.short_checkpoints(cps, teams) == ["CP2"]
    assert domain.short_checkpoints(cps, [*teams, {"checkpoint": "CP2"}]) == []


# trucks heading for a checkpoint ------------------------------------------------------------------
def truck_at(distance_m, bearing_to_truck, heading, speed=36.0, target=CP_TC):
    x, y = to_utm(*target)
    px = x + distance_m * math.sin(math.radians(bearing_to_truck))
    py = y + distance_m * math.cos(math.radians(bearing_to_truck))
    lon, lat = unproject_geometry(Point(px, py)).coords[0]
    return {"plate": f"T{distance_m}-{heading}", "lon": lon, "lat": lat, "heading": heading,
            "speed_kmh": speed, "ts": "2026-11-27T16:30:00Z"}


def test_a_truck_driving_towards_a_checkpoint_is_listed_with_its_eta():
    cps = [{"code": "CP1", "location": {"lon": CP_TC[0], "lat": CP_TC[1]}}]
    towards = truck_at(1200, 225, 45)  # south-west of it, driving north-east
    away = truck_at(1200, 225, 225)  # same place, driving away
    slow = truck_at(1200, 225, 45, speed=2)  # parked
    far = truck_at(20_000, 225, 45)  # beyond the radius
    no_heading = {**truck_at(1000, 225, 45), "heading": None}
    listed = domain.approaching([towards, away, slow, far, no_heading], cps)
    assert [t["plate"] for t in listed] == [towards["plate"]]
    assert listed[0]["distance_m"] == pytest.approx(1200, abs=5)
    assert listed[0]["eta_minutes"] == pytest.approx(2.0, abs=0.05)  # 1200 m at 10 m/s


def test_the_nearest_checkpoint_ahead_is_named():
    cps = [{"code": "NEAR", "location": {"lon": CP_TC[0], "lat": CP_TC[1]}},
           {"code": "BEHIND", "location": {"lon": CP_JD[0], "lat": CP_JD[1]}}]
    x, y = to_utm(*CP_TC)
    jx, jy = to_utm(*CP_JD)
    heading = domain.bearing(jx, jy, x, y)  # from CP_JD towards CP_TC
    lon, lat = unproject_geometry(Point((x + jx) / 2, (y + jy) / 2)).coords[0]
    truck = {"plate": "P", "lon": lon, "lat": lat, "heading": heading, "speed_kmh": 30,
             "ts": "x"}
    assert [t["checkpoint"] for t in domain.approaching([truck], cps)] == ["NEAR"]


# after action ------------------------------------------------------------------------------
OP = {"operation_id": "op", "name": "零点行动", "kind": "zero_hour", "status": "completed",
      "lead_city": "taicang", "partners": ["jiading", "baoshan"], "starts_at": START,
      "ends_at": END, "checkpoints": [{"code": "CP1", "name": "一"}, {"code": "CP2", "name": "二"}]}


def violation(n, reported_by, checkpoint, city, state, category="construction_waste"):
    case = state in ("case_opened", "case_closed")
    return {"violation_id": f"v{n}", "reported_by": reported_by, "checkpoint": checkpoint,
            "plate": f"P{n}", "category": category, "city": city, "state": state,
            "handled_by": city if state != "pending" else None,
            "case_no": f"C{n}" if case else None}


def test_after_action_figures_add_up_every_way():
    reports = [{"city": "jiading", "checkpoint": "CP2", "vehicles_checked": 20},
               {"city": "taicang", "checkpoint": "CP1", "vehicles_checked": 10},
               {"city": "jiading", "checkpoint": "CP2", "vehicles_checked": 5}]
    vs = [violation(1, "jiading", "CP2", "jiading", "case_opened"),
          violation(2, "jiading", "CP2", "taicang", "case_closed", "illegal_dumping"),
          violation(3, "taicang", "CP1", "taicang", "rejected"),
          violation(4, "taicang", "CP1", "taicang", "pending")]
    report = domain.after_action(OP, reports, vs)
    t = report["totals"]
    assert (t["reports"], t["vehicles_checked"], t["violations"], t["leads"], t["pending"],
            t["cases_opened"], t["cases_closed"], t["rejected"]) == (3, 35, 4, 3, 1, 2, 1, 1)
    for key in ("reports", "vehicles_checked", "violations", "leads", "cases_opened"):
        assert sum(c[key] for c in report["by_city"]) == t[key]
        assert sum(c[key] for c in report["by_checkpoint"]) == t[key]
    assert sum(c["violations"] for c in report["by_category"]) == t["violations"]
    assert sum(c["cases_here"] for c in report["by_city"]) == t["cases_opened"]
    assert [c["city"] for c in report["by_city"]] == ["taicang", "jiading", "baoshan"]
    assert {c["city"]: c["cases_here"] for c in report["by_city"]} == {
        "taicang": 1, "jiading": 1, "baoshan": 0}
    assert "零点行动" in report["summary"] and "35" in report["summary"]

    rows = list(csv.reader(io.StringIO(domain.after_action_csv(report))))
    assert rows[0][:3] == ["section", "key", "reports"]
    assert ["total", "all", "3", "35", "4", "3", "2", "1", "2"] in rows
    assert sum(1 for r in rows if r and r[0] in ("v1", "v2", "v3", "v4")) == 4


def test_a_violation_never_moves_back():
    assert domain.advances("routed", "accepted")
    assert domain.advances("handed_over", "case_opened")
    assert not domain.advances("case_opened", "accepted")
    assert not domain.advances("case_closed", "case_closed")


def test_a_case_opened_in_a_city_outside_the_operation_is_counted_there():
    vs = [violation(1, "taicang", "CP1", "kunshan", "case_opened"),
          violation(2, "taicang", "CP1", "taicang", "case_opened")]
    report = domain.after_action(OP, [{"city": "taicang", "checkpoint": "CP1",
                                       "vehicles_checked": 3}], vs)
    here = {c["city"]: c["cases_here"] for c in report["by_city"]}
    assert here == {"taicang": 1, "jiading": 0, "baoshan": 0, "kunshan": 1}
    assert sum(here.values()) == report["totals"]["cases_opened"] == 2


def test_a_checkpoint_without_its_own_window_follows_the_operations():
    checked = domain.check_plan(plan(checkpoints=[
        cp("A", CP_TC), cp("B", CP_TC, starts_at=START + timedelta(hours=1), ends_at=END)]),
        "taicang", LOC)
    assert [c["follows_window"] for c in checked["checkpoints"]] == [True, False]

"""Unit tests for services.transport.domain: every alert rule (once per episode, with evidence,
not on the normal trip, not from late or repeated points), midnight windows, GCJ-02 input, plates,
trips and the state round trip. No broker, no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from shapely.geometry import box

from services.common.geo import default_city_locator, wgs84_to_gcj02
from services.transport import domain
from services.transport.domain import (
    CityIndex,
    HourWindow,
    Permit,
    Point,
    Site,
    Thresholds,
    VehicleState,
    evaluate,
    normalise_plate,
    parse_batch,
    parse_position,
    within_hours,
)

CST = domain.LOCAL_TZ
PLATE = "苏E12345"
# A Kunshan construction site and a Taicang disposal site, a corridor between them.
ORIGIN = (120.99, 31.39)
DISPOSAL = (121.12, 31.49)
ELSEWHERE = (121.16, 31.52)  # another (unapproved for this permit) disposal site in Taicang
TH = Thresholds()
CITIES = CityIndex(default_city_locator())


def square(lon, lat, half=0.001):
    return box(lon - half, lat - half, lon + half, lat + half)


def site(id, kind, at):
    return Site.from_wgs84(id, kind, square(*at))


def permit(windows=("22:00-05:00",), may_enter=("taicang",), **kw):
    return Permit.from_wgs84(
        id=kw.get("id", "P1"), plate="苏E·12345", origin=site("S-origin", "construction", ORIGIN),
        disposal=site("S-disposal", "disposal", DISPOSAL), corridor=[ORIGIN, DISPOSAL],
        width_m=40, windows=windows, valid_from=kw.get("valid_from", date(2026, 11, 1)),
        valid_to=kw.get("valid_to", date(2026, 11, 30)), issuing_city="kunshan",
        may_enter=may_enter)


def local(h, m=0, day=26):
    return datetime(2026, 11, day, h, m, tzinfo=CST)


def pt(lon, lat, ts, speed=30.0):
    return parse_position({"plate": PLATE, "ts": ts.isoformat(), "lon": lon, "lat": lat,
                           "crs": "WGS84", "speed_kmh": speed, "heading": 45})[1]


def dwell(at, start, minutes, step=30):
    return [pt(at[0], at[1], start + timedelta(seconds=s), 0.0)
            for s in range(0, int(minutes * 60) + 1, step)]


def drive(a, b, start, seconds, step=30, offset=(0.0, 0.0), speed=30.0):
    n = max(1, seconds // step)
    return [pt(a[0] + (b[0] - a[0]) * i / n + offset[0], a[1] + (b[1] - a[1]) * i / n + offset[1],
               start + timedelta(seconds=i * step), speed) for i in range(1, n + 1)]


def normal_trip(start):
    """Load 5 min at the origin, drive 40 min along the corridor, unload 5 min at disposal."""
    pts = dwell(ORIGIN, start, 5)
    t = pts[-1].ts
    pts += drive(ORIGIN, DISPOSAL, t, 40 * 60)
    return pts + dwell(DISPOSAL, pts[-1].ts + timedelta(seconds=30), 5)


def run(points, permits=None, state=None, registered=True, th=TH, sites=()):
    permits = [permit()] if permits is None else permits
    return evaluate(PLATE, registered, permits, state or VehicleState(), points, th, CITIES,
                    sites)


def kinds(outcome):
    return [a.kind for a in outcome.alerts]


# hours ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("at", "inside"), [
    (time(22, 0), True), (time(23, 59), True), (time(0, 0), True), (time(4, 59), True),
    (time(5, 0), False), (time(12, 0), False), (time(21, 59), False),
])
def test_window_crossing_midnight(at, inside):
    assert HourWindow.parse("22:00-05:00").contains(at) is inside


def test_window_same_day_and_parse_errors():
    w = HourWindow.parse("09:00–17:30")
    assert w.contains(time(9, 0)) and not w.contains(time(17, 30)) and str(w) == "09:00-17:30"
    with pytest.raises(ValueError):
        HourWindow.parse("22:00")
    with pytest.raises(ValueError):
        HourWindow.parse("05:00-05:00")


def test_within_hours_uses_local_time():
    w = [HourWindow.parse("22:00-05:00")]
    assert within_hours(w, datetime(2026, 11, 26, 15, 0, tzinfo=UTC))  # 23:00 in Shanghai
    assert not within_hours(w, datetime(2026, 11, 26, 22, 0, tzinfo=UTC))  # 06:00


# positions -----------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["苏E·12345", "苏e 12345", "苏E-12345", "苏E12345"])
def test_plates_are_normalised(raw):
    assert normalise_plate(raw) == "苏E12345"
    assert normalise_plate("沪A·D12345") == "沪AD12345"


@pytest.mark.parametrize("bad", ["", "E12345", "苏E12", None, 12345])
def test_bad_plates(bad):
    with pytest.raises(ValueError):
        normalise_plate(bad)


def test_gcj02_input_is_converted_to_wgs84():
    glon, glat = wgs84_to_gcj02(*ORIGIN)
    assert abs(glon - ORIGIN[0]) > 1e-4  # the offset is real
    _, p = parse_position({"plate": PLATE, "ts": "2026-11-26T22:00:00+08:00", "lon": glon,
                           "lat": glat, "crs": "GCJ02", "speed_kmh": 0})
    assert abs(p.lon - ORIGIN[0]) < 1e-5 and abs(p.lat - ORIGIN[1]) < 1e-5
    assert p.ts.tzinfo is not None


def test_bad_points_refused_one_by_one_good_ones_kept():
    good = {"plate": PLATE, "ts": "2026-11-26T22:00:00+08:00", "lon": 121.0, "lat": 31.4,
            "crs": "WGS84", "speed_kmh": 20}
    batch = [good, {**good, "plate": "nope"}, {**good, "ts": "2026-11-26T22:00:00"},
             {**good, "lon": 10}, {**good, "crs": "BD09"}, {**good, "speed_kmh": -1},
             {**good, "ts": "2026-11-26T22:00:30+08:00"}, good, "junk"]
    by_plate, refused = parse_batch(batch)
    assert [r.index for r in refused] == [1, 2, 3, 4, 5, 8]
    assert all(r.reason for r in refused)
    assert len(by_plate[PLATE]) == 2  # the repeated point counts once


# the normal trip ----------------------------------------------------------------------------

def test_normal_night_trip_raises_nothing_but_an_allowed_crossing_and_closes_the_trip():
    out = run(normal_trip(local(23, 0)))
    assert kinds(out) == ["city_crossing"]
    crossing = out.alerts[0]
    assert crossing.detail == {"from_city": "kunshan", "to_city": "taicang", "allowed": True}
    assert crossing.city == "taicang" and crossing.permit_city == "kunshan"
    assert [t.kind for t in out.trips] == ["started", "closed"]
    assert out.state.trip is None


# route deviation ----------------------------------------------------------------------------

def along(f):
    return (ORIGIN[0] + (DISPOSAL[0] - ORIGIN[0]) * f, ORIGIN[1] + (DISPOSAL[1] - ORIGIN[1]) * f)


def deviation_track(start, off_seconds, offset=0.003):
    """On the corridor to 40 %, `offset` degrees aside (about 400 m) to 45 %, back to the end."""
    pts = drive(ORIGIN, along(0.4), start, 16 * 60)
    pts += drive(along(0.4), along(0.45), pts[-1].ts, off_seconds, offset=(offset, -offset))
    return pts + drive(along(0.45), DISPOSAL, pts[-1].ts + timedelta(seconds=30), 20 * 60)


def test_route_deviation_once_per_episode_with_evidence():
    out = run(deviation_track(local(23, 0), 5 * 60))
    devs = [a for a in out.alerts if a.kind == "route_deviation"]
    assert len(devs) == 1
    a = devs[0]
    assert a.detail["off_corridor_m"] > TH.deviation_m
    assert a.detail["seconds"] >= TH.deviation_seconds
    assert len(a.evidence) >= 3 and a.evidence[0]["ts"] == a.started_at.isoformat()
    assert a.category == "construction_waste"
    assert "route_deviation" not in out.state.episodes  # back on the corridor: episode over


def test_short_deviation_is_not_an_alert():
    out = run(deviation_track(local(23, 0), 30))
    assert "route_deviation" not in kinds(out)


def test_a_second_deviation_is_a_second_episode():
    first = deviation_track(local(23, 0), 3 * 60)
    second = deviation_track(first[-1].ts + timedelta(minutes=1), 3 * 60)
    out = run(first + second)
    devs = [a for a in out.alerts if a.kind == "route_deviation"]
    assert len(devs) == 2 and devs[0].id != devs[1].id


# unapproved stop ----------------------------------------------------------------------------

def test_stop_in_a_field_raises_suspected_dumping_once():
    start = local(23, 0)
    field_at = (along(0.3)[0] + 0.002, along(0.3)[1] - 0.002)  # a field beside the corridor
    pts = drive(ORIGIN, field_at, start, 10 * 60)
    pts += dwell(field_at, pts[-1].ts + timedelta(seconds=30), 8)
    pts += drive(field_at, DISPOSAL, pts[-1].ts, 10 * 60)
    out = run(pts)
    stops = [a for a in out.alerts if a.kind == "unapproved_stop"]
    assert len(stops) == 1
    assert stops[0].category == "illegal_dumping"
    assert stops[0].detail["minutes"] >= TH.stop_minutes
    assert all(e["speed_kmh"] == 0 for e in stops[0].evidence)


def test_short_stop_and_stops_at_sites_are_fine():
    start = local(23, 0)
    light = along(0.5)
    pts = drive(ORIGIN, light, start, 20 * 60)
    pts += dwell(light, pts[-1].ts + timedelta(seconds=30), 2)  # a red light
    pts += drive(light, DISPOSAL, pts[-1].ts, 10 * 60)
    pts += dwell(DISPOSAL, pts[-1].ts + timedelta(seconds=30), 20)
    assert "unapproved_stop" not in kinds(run(pts))


# out of hours -------------------------------------------------------------------------------

def test_out_of_hours_once_and_midnight_window():
    assert "out_of_hours" not in kinds(run(normal_trip(local(23, 40))))  # crosses midnight
    assert "out_of_hours" not in kinds(run(normal_trip(local(2, 0))))
    out = run(normal_trip(local(14, 0)))
    late = [a for a in out.alerts if a.kind == "out_of_hours"]
    assert len(late) == 1 and late[0].detail["windows"] == ["22:00-05:00"]
    # a run that starts inside the window and goes on past 05:00 is caught at 05:00
    out = run(drive(ORIGIN, DISPOSAL, local(4, 40), 40 * 60))
    late = [a for a in out.alerts if a.kind == "out_of_hours"]
    assert len(late) == 1 and late[0].at.astimezone(CST).time() >= time(5, 0)


# permits ------------------------------------------------------------------------------------

def test_no_permit_once_and_expired_permit():
    out = run(normal_trip(local(23, 0)), permits=[])
    assert kinds(out).count("no_permit") == 1
    expired = permit(valid_to=date(2026, 11, 20))
    assert kinds(run(normal_trip(local(23, 0)), permits=[expired])).count("no_permit") == 1


def test_unknown_vehicle_only_where_policy_asks():
    pts = normal_trip(local(23, 0))
    assert "unknown_vehicle" not in kinds(run(pts, permits=[], registered=False))
    th = Thresholds(alert_unknown_vehicles=True)
    out = run(pts, permits=[], registered=False, th=th)
    assert kinds(out).count("unknown_vehicle") == 1 and "no_permit" not in kinds(out)


def test_thresholds_from_settings():
    th = Thresholds.from_settings(lambda name, default: {"TRANSPORT_DEVIATION_M": "80",
                                                         "TRANSPORT_ALERT_UNKNOWN": "true"}
                                  .get(name, default))
    assert th.deviation_m == 80 and th.alert_unknown_vehicles and th.stop_minutes == 5


# manifest mismatch --------------------------------------------------------------------------

def test_unloading_at_another_site_is_a_manifest_mismatch():
    other = site("S-other", "disposal", ELSEWHERE)
    pts = dwell(ORIGIN, local(23, 0), 5)
    pts += drive(ORIGIN, ELSEWHERE, pts[-1].ts, 40 * 60)
    pts += dwell(ELSEWHERE, pts[-1].ts + timedelta(seconds=30), 6)
    out = run(pts, sites=[other])
    assert kinds(out).count("manifest_mismatch") == 1
    assert "unapproved_stop" not in kinds(out)
    mm = next(a for a in out.alerts if a.kind == "manifest_mismatch")
    assert mm.detail["site"] == "S-other" and mm.detail["expected_site"] == "S-disposal"
    assert mm.category == "illegal_dumping"
    assert [t.kind for t in out.trips] == ["started", "mismatch"]


# city crossing ------------------------------------------------------------------------------

def test_crossing_into_a_city_the_permit_does_not_allow():
    out = run(normal_trip(local(23, 0)), permits=[permit(may_enter=())])
    crossing = next(a for a in out.alerts if a.kind == "city_crossing")
    assert crossing.detail["allowed"] is False and crossing.city == "taicang"


# late and repeated points ---------------------------------------------------------------------

def test_late_points_are_not_evaluated_and_repeats_change_nothing():
    pts = normal_trip(local(23, 0))
    first = run(pts)
    # the same batch again: nothing new
    again = run(pts, state=first.state)
    assert again.alerts == [] and again.state.last_ts == first.state.last_ts
    # a late point far off the corridor, stopped, out of hours (by its own instant): ignored
    late = pt(121.3, 31.6, local(14, 0), 0.0)
    out = run([late], state=first.state)
    assert out.alerts == []


def test_batches_split_anywhere_give_the_same_alerts():
    pts = deviation_track(local(23, 0), 5 * 60)
    pts += dwell((pts[-1].lon, pts[-1].lat + 0.01), pts[-1].ts + timedelta(seconds=30), 7)
    whole = run(pts)
    state, alerts = VehicleState(), []
    for i in range(0, len(pts), 7):
        out = run(pts[i:i + 7], state=VehicleState.from_dict(state.to_dict()))
        state, alerts = out.state, alerts + out.alerts
    assert [(a.kind, a.id) for a in alerts] == [(a.kind, a.id) for a in whole.alerts]
    assert {"route_deviation", "unapproved_stop"} <= set(kinds(whole))


def test_out_of_order_points_within_a_batch_are_sorted():
    pts = deviation_track(local(23, 0), 5 * 60)
    shuffled = list(reversed(pts))
    assert kinds(run(shuffled)) == kinds(run(pts))


def test_point_is_frozen():
    p = pt(*ORIGIN, local(23, 0))
    assert isinstance(p, Point)
    with pytest.raises(AttributeError):
        p.lon = 1.0  # type: ignore[misc]

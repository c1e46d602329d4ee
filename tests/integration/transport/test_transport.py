"""Construction-waste transport (渣土运输) on real RabbitMQ and PostgreSQL: registry, ingest by
HTTP and by the `transport.positions` queue, each alert type raised once with evidence, not on the
normal trip, not by late or repeated points; alerts become leads; permits and alerts cross the
bridge."""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, timedelta

import pytest
from kombu import Connection
from support import wait_for

from services.common.geo import wgs84_to_gcj02
from services.transport.domain import LOCAL_TZ

pytestmark = pytest.mark.integration

BUREAU = ("taicang", "Test Taicang Bureau 太仓局", "bureau")
DEVICE = ("taicang", "Test GPS Gateway 定位网关", "device")
ORIGIN = (121.06, 31.47)  # a construction site in Taicang
DISPOSAL = (121.16, 31.52)  # the permit's disposal site
ELSEWHERE = (121.13, 31.47)  # another disposal site
KUNSHAN = (121.00, 31.43)
# Last night, in Shanghai time: always in the past, so leads accept the instants.
NIGHT = (datetime.now(LOCAL_TZ) - timedelta(days=1)).replace(hour=23, minute=0, second=0,
                                                              microsecond=0)


def square(lon, lat, half=0.001):
    return {"type": "Polygon", "coordinates": [[
        [lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
        [lon - half, lat + half], [lon - half, lat - half]]]}


def along(f, a=ORIGIN, b=DISPOSAL):
    return (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)


def pos(plate, at, lon, lat, speed=30.0, crs="WGS84"):
    if crs == "GCJ02":
        lon, lat = wgs84_to_gcj02(lon, lat)
    return {"plate": plate, "ts": at.isoformat(), "lon": lon, "lat": lat, "crs": crs,
            "speed_kmh": speed, "heading": 90}


def dwell(plate, at, start, minutes, **kw):
    return [pos(plate, start + timedelta(seconds=s), *at, speed=0.0, **kw)
            for s in range(0, int(minutes * 60) + 1, 30)]


def drive(plate, a, b, start, seconds, offset=(0.0, 0.0), **kw):
    n = max(1, seconds // 30)
    return [pos(plate, start + timedelta(seconds=30 * i),
                a[0] + (b[0] - a[0]) * i / n + offset[0],
                a[1] + (b[1] - a[1]) * i / n + offset[1], **kw) for i in range(1, n + 1)]


def last_ts(points):
    return datetime.fromisoformat(points[-1]["ts"])


def normal_trip(plate, start, **kw):
    pts = dwell(plate, ORIGIN, start, 5, **kw)
    pts += drive(plate, ORIGIN, DISPOSAL, last_ts(pts), 30 * 60, **kw)
    return pts + dwell(plate, DISPOSAL, last_ts(pts) + timedelta(seconds=30), 5, **kw)


def deviation_and_stop(plate, start, **kw):
    """Off the corridor (≈ 400 m) for 5 minutes, then stopped 8 minutes in a field."""
    pts = drive(plate, ORIGIN, along(0.4), start, 12 * 60, **kw)
    pts += drive(plate, along(0.4), along(0.45), last_ts(pts), 5 * 60, offset=(0.003, -0.003),
                 **kw)
    field_at = (along(0.45)[0] + 0.003, along(0.45)[1] - 0.003)
    pts += dwell(plate, field_at, last_ts(pts) + timedelta(seconds=30), 8, **kw)
    return pts + drive(plate, field_at, DISPOSAL, last_ts(pts) + timedelta(seconds=30),
                       15 * 60, **kw)


def new_plate() -> str:
    return f"苏E·{random.randint(0, 99999):05d}"


@pytest.fixture(scope="module")
def world(platform):
    """Sites of the test (unique ids per run), a bureau and a device client."""
    bureau = platform.client(*BUREAU)
    tag = uuid.uuid4().hex[:8]
    ids = {"origin": f"tc-site-{tag}", "disposal": f"tc-disp-{tag}", "other": f"tc-other-{tag}"}
    for key, at, kind in (("origin", ORIGIN, "construction"), ("disposal", DISPOSAL, "disposal"),
                          ("other", ELSEWHERE, "disposal")):
        r = bureau.post("/api/v1/transport/sites", {"id": ids[key], "name": f"{key} {tag}",
                                                    "kind": kind, "polygon": square(*at)})
        assert r.status_code == 201, r.text
    return {"bureau": bureau, "device": platform.client(*DEVICE), "sites": ids, "tag": tag}


def permit_for(world, plate, windows=("22:00-05:00",), may_enter=(), client=None, sites=None):
    sites = sites or world["sites"]
    today = date.today()
    body = {"id": f"TC-{uuid.uuid4().hex[:10]}", "plate": plate,
            "origin_site": sites["origin"], "disposal_site": sites["disposal"],
            "corridor": [list(ORIGIN), list(DISPOSAL)], "width_m": 40, "windows": list(windows),
            "valid_from": (today - timedelta(days=10)).isoformat(),
            "valid_to": (today + timedelta(days=10)).isoformat(), "may_enter": list(may_enter)}
    r = (client or world["bureau"]).post("/api/v1/transport/permits", body)
    assert r.status_code == 201, r.text
    return r.json()


def send(world, points):
    r = world["device"].post("/api/v1/transport/positions", {"positions": points})
    assert r.status_code == 200, r.text
    return r.json()


def alerts_of(world, plate, kind=None):
    params = {"plate": plate, **({"kind": kind} if kind else {})}
    r = world["bureau"].get("/api/v1/transport/alerts", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def kinds(world, plate):
    return sorted(a["kind"] for a in alerts_of(world, plate))


def test_normal_trip_raises_nothing_stores_the_track_and_closes_the_trip(platform, world):
    plate = new_plate()
    permit_for(world, plate)
    pts = normal_trip(plate, NIGHT)
    result = send(world, pts)
    assert result["accepted"] == len(pts) and result["refused"] == [] and result["alerts"] == 0
    assert kinds(world, plate) == []
    trips = world["bureau"].get("/api/v1/transport/trips", params={"plate": plate}).json()
    assert [t["status"] for t in trips["items"]] == ["closed"]
    track = world["bureau"].get(
        f"/api/v1/transport/vehicles/{plate}/track",
        params={"from": NIGHT.isoformat(), "to": (NIGHT + timedelta(hours=2)).isoformat()})
    assert track.status_code == 200, track.text
    assert len(track.json()["points"]) == len(pts)


def test_deviation_and_dumping_stop_raised_once_become_leads(platform, world):
    plate = new_plate()
    permit_for(world, plate)
    pts = deviation_and_stop(plate, NIGHT)
    with platform.observe("taicang", "transport.events", "transport.alert_raised") as events:
        first = send(world, pts[:40])
        second = send(world, pts[40:])
        assert first["alerts"] + second["alerts"] == 2
        raised = events.wait(lambda e: e["data"]["plate"] == plate.replace("·", ""))
    assert kinds(world, plate) == ["route_deviation", "unapproved_stop"]
    # the same batch again, and the whole track once more: nothing new
    assert send(world, pts[40:])["alerts"] == 0
    assert send(world, pts)["alerts"] == 0
    assert kinds(world, plate) == ["route_deviation", "unapproved_stop"]
    stop = alerts_of(world, plate, "unapproved_stop")[0]
    assert stop["detail"]["minutes"] >= 5 and len(stop["evidence"]) >= 10
    assert stop["city"] == "taicang" and raised[0]["data"]["raised_by"] == "taicang"
    # each alert becomes a lead in Taicang through the leads service's normal path
    for alert in alerts_of(world, plate):
        category = wait_for(lambda a=alert: platform.scalar(
            "taicang", "SELECT category FROM leads.leads WHERE source_org_id = "
            "'system:transport' AND source_ref = :ref", ref=a["id"]), what="the alert's lead")
        assert category == ("illegal_dumping" if alert["kind"] == "unapproved_stop"
                            else "construction_waste")


def test_gcj02_track_is_evaluated_in_wgs84(platform, world):
    plate = new_plate()
    permit_for(world, plate)
    assert send(world, normal_trip(plate, NIGHT, crs="GCJ02"))["alerts"] == 0
    send(world, deviation_and_stop(plate, NIGHT + timedelta(hours=2), crs="GCJ02"))
    assert kinds(world, plate) == ["route_deviation", "unapproved_stop"]
    track = world["bureau"].get(
        f"/api/v1/transport/vehicles/{plate}/track",
        params={"from": NIGHT.isoformat(), "to": (NIGHT + timedelta(minutes=2)).isoformat()})
    first = track.json()["points"][0]
    assert abs(first["lon"] - ORIGIN[0]) < 1e-5 and abs(first["lat"] - ORIGIN[1]) < 1e-5


def test_out_of_hours_with_a_midnight_window(platform, world):
    plate = new_plate()
    permit_for(world, plate)
    # the afternoon before: outside 22:00-05:00
    send(world, normal_trip(plate, NIGHT - timedelta(hours=9)))
    # 23:50 to 00:30: inside the window, across midnight
    assert send(world, normal_trip(plate, NIGHT + timedelta(minutes=50)))["alerts"] == 0
    assert kinds(world, plate) == ["out_of_hours"]
    assert alerts_of(world, plate)[0]["detail"]["windows"] == ["22:00-05:00"]


def test_no_permit_once(platform, world):
    plate = new_plate()
    assert world["bureau"].post("/api/v1/transport/vehicles",
                                {"plate": plate}).status_code == 201
    pts = normal_trip(plate, NIGHT)
    send(world, pts[:30])
    send(world, pts[30:])
    assert kinds(world, plate) == ["no_permit"]


def test_unloading_at_another_site_is_a_manifest_mismatch(platform, world):
    plate = new_plate()
    permit_for(world, plate)
    pts = dwell(plate, ORIGIN, NIGHT, 5)
    pts += drive(plate, ORIGIN, ELSEWHERE, last_ts(pts), 20 * 60)
    pts += dwell(plate, ELSEWHERE, last_ts(pts) + timedelta(seconds=30), 6)
    send(world, pts)
    assert "manifest_mismatch" in kinds(world, plate)
    assert "unapproved_stop" not in kinds(world, plate)
    trips = world["bureau"].get("/api/v1/transport/trips", params={"plate": plate}).json()
    assert [t["status"] for t in trips["items"]] == ["mismatch"]


def test_crossing_into_a_city_the_permit_does_not_allow(platform, world):
    plate = new_plate()
    permit_for(world, plate)
    pts = drive(plate, ORIGIN, KUNSHAN, NIGHT, 10 * 60)
    send(world, pts)
    crossing = alerts_of(world, plate, "city_crossing")
    assert len(crossing) == 1
    assert crossing[0]["city"] == "kunshan" and crossing[0]["detail"]["allowed"] is False


def test_late_points_never_alert_and_bad_points_are_refused_one_by_one(platform, world):
    plate = new_plate()
    permit_for(world, plate)
    send(world, normal_trip(plate, NIGHT))
    # late: earlier than the evaluated track, far off the corridor, stopped for 10 minutes
    late = dwell(plate, ELSEWHERE, NIGHT - timedelta(minutes=30), 10)
    bad = [{**late[0], "plate": "not a plate"}, {**late[0], "ts": "yesterday"},
           {**late[0], "lon": 10.0}]
    result = send(world, late + bad)
    assert result["accepted"] == len(late) and result["alerts"] == 0
    assert [r["index"] for r in result["refused"]] == [len(late), len(late) + 1, len(late) + 2]
    assert all(r["reason"] for r in result["refused"])
    assert kinds(world, plate) == []


def test_device_gateway_queue_ingest(platform, world, site):
    plate = new_plate()
    permit_for(world, plate)
    pts = deviation_and_stop(plate, NIGHT)
    with Connection(site.amqp_uri("taicang")) as conn:
        producer = conn.Producer(serializer="json")
        for p in pts:
            producer.publish(p, exchange="", routing_key="transport.positions",
                             delivery_mode=2)
        producer.publish({"plate": "junk"}, exchange="", routing_key="transport.positions")
    wait_for(lambda: kinds(world, plate) == ["route_deviation", "unapproved_stop"],
             timeout=30, what="alerts from the queue")
    stored = platform.scalar("taicang", "SELECT count(*) FROM transport.positions WHERE "
                             "plate = :p", p=plate.replace("·", ""))
    assert stored == len(pts)


def test_permits_and_alerts_cross_the_bridge(platform, world):
    """A Taicang permit allowing Jiading is replicated there; Jiading's alert on the Taicang
    truck opens a lead in Jiading and reaches Taicang through the bridge."""
    jd_bureau = platform.client("jiading", "Test Jiading Bureau 嘉定局", "bureau")
    jd_device = platform.client("jiading", "Test Jiading GPS 嘉定定位网关", "device")
    plate = new_plate()
    permit = permit_for(world, plate, may_enter=("jiading",))
    wait_for(lambda: jd_bureau.get(f"/api/v1/transport/permits/{permit['id']}")
             .status_code == 200, timeout=30, what="the permit in Jiading")
    field_at = (121.1630, 31.3790)  # a field in Jiading
    pts = drive(plate, ORIGIN, field_at, NIGHT, 20 * 60)
    pts += dwell(plate, field_at, last_ts(pts) + timedelta(seconds=30), 8)
    with platform.observe("taicang", "bridge.events", "transport.alert_raised") as events:
        r = jd_device.post("/api/v1/transport/positions", {"positions": pts})
        assert r.status_code == 200, r.text
        got = events.wait(lambda e: e["data"]["plate"] == plate.replace("·", "")
                          and e["data"]["kind"] == "unapproved_stop", timeout=30)
    assert got[0]["city"] == "jiading" and got[0]["data"]["permit_city"] == "taicang"
    alert_id = got[0]["data"]["alert_id"]
    wait_for(lambda: platform.scalar("jiading", "SELECT count(*) FROM leads.leads WHERE "
                                     "source_ref = :r", r=alert_id), what="the Jiading lead")
    assert got[0]["data"]["evidence"]
    # Taicang's transport service keeps what partners report on its permitted trucks
    told = wait_for(lambda: [a for a in alerts_of(world, plate) if a["id"] == alert_id],
                    what="the alert in Taicang")
    assert told[0]["detail"]["reported_by"] == "jiading" and told[0]["city"] == "jiading"


def test_a_crossing_seen_by_a_third_city_reaches_the_city_entered(platform, world):
    """A Baoshan-permitted truck (not allowed into Jiading), tracked by Taicang's device gateway,
    drives from Taicang into Jiading: Taicang raises `city_crossing` for Jiading; the bridge tells
    both Jiading (the city entered) and Baoshan (the issuer), and the lead lands in Jiading."""
    bs = platform.client("baoshan", "Test Baoshan Bureau 宝山局", "bureau")
    tag = uuid.uuid4().hex[:6]
    for key, at, kind in (("o", ORIGIN, "construction"), ("d", DISPOSAL, "disposal")):
        r = bs.post("/api/v1/transport/sites", {"id": f"bs-{key}-{tag}", "name": key,
                                                "kind": kind, "polygon": square(*at),
                                                "city": "taicang"})
        assert r.status_code == 201, r.text
    plate = new_plate()
    permit = permit_for(world, plate, may_enter=("taicang",), client=bs,
                        sites={"origin": f"bs-o-{tag}", "disposal": f"bs-d-{tag}"})
    wait_for(lambda: world["bureau"].get(f"/api/v1/transport/permits/{permit['id']}")
             .status_code == 200, timeout=30, what="the Baoshan permit in Taicang")
    field_at = (121.1630, 31.3790)  # a field in Jiading
    send(world, drive(plate, ORIGIN, field_at, NIGHT, 20 * 60))
    crossing = wait_for(lambda: alerts_of(world, plate, "city_crossing"), timeout=30,
                        what="the crossing in Taicang")
    assert crossing[0]["city"] == "jiading" and crossing[0]["permit_city"] == "baoshan"
    assert crossing[0]["detail"]["allowed"] is False
    alert_id = crossing[0]["id"]
    jd = platform.client("jiading", "Test Jiading Bureau 嘉定局", "bureau")
    for city, client in (("jiading", jd), ("baoshan", bs)):
        told = wait_for(lambda c=client: [a for a in c.get(
            "/api/v1/transport/alerts", params={"plate": plate}).json()["items"]
            if a["id"] == alert_id], timeout=30, what=f"the crossing told to {city}")
        assert told[0]["detail"]["reported_by"] == "taicang"
    # the lead Taicang's leads service opened for it was handed over to Jiading
    ours = wait_for(lambda: platform.scalar("taicang", "SELECT id FROM leads.leads WHERE "
                                            "source_ref = :r", r=alert_id),
                    timeout=30, what="the crossing's lead in Taicang")
    wait_for(lambda: platform.scalar("jiading", "SELECT count(*) FROM leads.leads WHERE "
                                     "origin_lead_id = :i", i=ours),
             timeout=30, what="the crossing's lead in Jiading")


def test_a_revoked_permit_is_revoked_everywhere_and_the_truck_then_has_none(platform, world):
    jd = platform.client("jiading", "Test Jiading Bureau 嘉定局", "bureau")
    plate = new_plate()
    permit = permit_for(world, plate, may_enter=("jiading",))
    wait_for(lambda: jd.get(f"/api/v1/transport/permits/{permit['id']}").status_code == 200,
             timeout=30, what="the permit in Jiading")
    # only the issuing city revokes; a reason is required
    r = jd.post(f"/api/v1/transport/permits/{permit['id']}/revoke", {"reason": "x"})
    assert r.status_code == 403, r.text
    r = world["bureau"].post(f"/api/v1/transport/permits/{permit['id']}/revoke", {})
    assert r.status_code == 422, r.text
    r = world["bureau"].post(f"/api/v1/transport/permits/{permit['id']}/revoke",
                             {"reason": "企业资质被撤销 licence withdrawn"})
    assert r.status_code == 200 and r.json()["status"] == "revoked", r.text
    assert r.json()["revoke_reason"] == "企业资质被撤销 licence withdrawn"
    r = world["bureau"].post(f"/api/v1/transport/permits/{permit['id']}/revoke",
                             {"reason": "again"})
    assert r.status_code == 409, r.text
    wait_for(lambda: jd.get(f"/api/v1/transport/permits/{permit['id']}").json()["status"]
             == "revoked", timeout=30, what="the revocation in Jiading")
    # the truck now drives without a permit
    send(world, normal_trip(plate, NIGHT)[:30])
    assert "no_permit" in kinds(world, plate)


def test_companies_are_listed_with_their_vehicles(platform, world):
    cid = f"co-{uuid.uuid4().hex[:6]}"
    assert world["bureau"].post("/api/v1/transport/companies",
                                {"id": cid, "name": "太仓渣土运输公司"}).status_code == 201
    assert world["bureau"].post("/api/v1/transport/vehicles",
                                {"plate": new_plate(), "company_id": cid}).status_code == 201
    items = world["bureau"].get("/api/v1/transport/companies").json()["items"]
    mine = [c for c in items if c["id"] == cid]
    assert mine == [{"id": cid, "name": "太仓渣土运输公司", "city": "taicang", "vehicles": 1}]

"""The lead handover capability through the gateway, on real RabbitMQ and PostgreSQL."""

from datetime import UTC, datetime, timedelta

import pytest
from support import JIADING, TAICANG, lead_body, unique_point

from services.common.geo import default_city_locator, metres_between, wgs84_to_gcj02

pytestmark = pytest.mark.integration

PROPERTY = ("taicang", "Test Property Co 测试物业", "source")
CAMERA = ("taicang", "Test Camera Analytics 测试探头", "source")
BUREAU = ("taicang", "Test Taicang Bureau 太仓局", "bureau")


def test_submitted_lead_is_routed_to_the_squad_zone_and_announced(platform):
    source = platform.client(*PROPERTY)
    with platform.observe("taicang") as events:
        r = source.post("/api/v1/leads", lead_body(point=TAICANG),
                        headers={"X-Request-Id": "trace-routing-0001"})
        assert r.status_code == 201, r.text
        lead = r.json()
        assert lead["status"] == "routed"
        assert lead["city"] == "taicang"
        assert lead["squad"] == "taicang-chengxiang"
        assert lead["duplicate_of"] is None
        event = events.wait(lambda e: e["subject"] == lead["id"])[0]
    assert event["type"] == "lead.submitted"
    assert event["trace_id"] == "trace-routing-0001"  # the request's trace follows the lead
    assert event["data"]["squad"] == "taicang-chengxiang"
    assert r.headers["X-Request-Id"] == "trace-routing-0001"

    detail = source.get(f"/api/v1/leads/{lead['id']}").json()
    assert detail["history"][0]["action"] == "submitted"
    assert "Test Property Co" in detail["history"][0]["actor"]
    assert detail["location"] == {"lon": TAICANG[0], "lat": TAICANG[1]}


def test_same_source_ref_answers_the_same_lead_and_stores_nothing_new(platform):
    source = platform.client(*PROPERTY)
    body = lead_body(point=unique_point())
    first = source.post("/api/v1/leads", body)
    again = source.post("/api/v1/leads", body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert platform.scalar("taicang", "SELECT count(*) FROM leads.leads WHERE source_ref = :r",
                           r=body["source_ref"]) == 1


def test_idempotency_key_replays_the_answer_and_refuses_another_body(platform):
    source = platform.client(*PROPERTY)
    body = lead_body(point=unique_point())
    headers = {"Idempotency-Key": f"idem-{body['source_ref']}"}
    first = source.post("/api/v1/leads", body, headers=headers)
    replay = source.post("/api/v1/leads", body, headers=headers)
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers.get("Idempotent-Replayed") == "true"
    other = source.post("/api/v1/leads", {**body, "description": "something else"},
                        headers=headers)
    assert other.status_code == 422
    assert other.json()["type"].endswith("/idempotency-key-reused")


def test_camera_report_of_the_same_spot_ten_minutes_later_is_merged(platform):
    source, camera = platform.client(*PROPERTY), platform.client(*CAMERA)
    point = unique_point()
    t0 = datetime.now(UTC) - timedelta(minutes=20)
    first = source.post("/api/v1/leads", lead_body(point=point,
                                                   occurred_at=t0.isoformat())).json()
    near = (point[0] + 0.0002, point[1])  # about 19 m east
    assert metres_between(*point, *near) < 50
    with platform.observe("taicang") as events:
        r = camera.post("/api/v1/leads", lead_body(
            point=near, occurred_at=(t0 + timedelta(minutes=10)).isoformat(),
            camera={"camera_id": "CAM-1", "model": "garbage-v3", "confidence": 0.9}))
        assert r.status_code == 201
        merged = r.json()
        assert merged["status"] == "merged"
        assert merged["duplicate_of"] == first["id"]
        event = events.wait(lambda e: e["subject"] == merged["id"])[0]
    assert event["type"] == "lead.merged"
    assert event["data"]["duplicate_of"] == first["id"]
    original = source.get(f"/api/v1/leads/{first['id']}").json()
    assert original["merged_count"] == 1
    assert original["history"][-1]["action"] == "duplicate_merged"


@pytest.mark.parametrize("change", ["other_category", "far_away", "much_later"])
def test_not_a_duplicate_when_category_place_or_time_differ(platform, change):
    source = platform.client(*PROPERTY)
    point = unique_point()
    t0 = datetime.now(UTC) - timedelta(hours=2)
    source.post("/api/v1/leads", lead_body(point=point, occurred_at=t0.isoformat()))
    second = lead_body(point=point, occurred_at=(t0 + timedelta(minutes=5)).isoformat())
    if change == "other_category":
        second["category"] = "illegal_advertising"
    elif change == "far_away":
        second["location"]["lon"] = point[0] + 0.001  # about 95 m
    else:
        second["occurred_at"] = (t0 + timedelta(minutes=45)).isoformat()
    r = source.post("/api/v1/leads", second)
    assert r.status_code == 201
    assert r.json()["status"] == "routed"
    assert r.json()["duplicate_of"] is None


def _gcj_point_that_crosses_the_border():
    """A Taicang point whose GCJ-02 coordinates, read as WGS84, would fall in another city."""
    locator = default_city_locator()
    boundary = locator.boundary("taicang").exterior
    for i in range(0, 2000):
        p = boundary.interpolate(i / 2000, normalized=True)
        for dx in (-0.004, -0.002, 0.002, 0.004):
            for dy in (-0.004, -0.002, 0.002, 0.004):
                lon, lat = p.x + dx, p.y + dy
                if locator.city_at(lon, lat) != "taicang":
                    continue
                glon, glat = wgs84_to_gcj02(lon, lat)
                other = locator.city_at(glon, glat)
                if other not in (None, "taicang"):
                    return (lon, lat), (glon, glat), other
    raise AssertionError("no such point found")


def test_gcj02_input_is_converted_and_lands_in_the_right_city(platform):
    (lon, lat), (glon, glat), misread_city = _gcj_point_that_crosses_the_border()
    source = platform.client(*PROPERTY)
    r = source.post("/api/v1/leads", lead_body(
        point=(glon, glat), category="illegal_advertising",
        location={"lon": glon, "lat": glat, "crs": "GCJ02"}))
    assert r.status_code == 201, r.text
    lead = r.json()
    # Read naively as WGS84 the point would be in `misread_city`; converted, it is Taicang's.
    assert lead["city"] == "taicang", f"GCJ-02 input misread as {misread_city}"
    assert lead["status"] == "routed"
    stored = source.get(f"/api/v1/leads/{lead['id']}").json()["location"]
    assert metres_between(stored["lon"], stored["lat"], lon, lat) < 1.0


def test_lead_in_another_city_is_handed_over_with_an_outbound_event(platform):
    sanitation = platform.client("taicang", "Test Sanitation 测试环卫", "source")
    with platform.observe("taicang") as events:
        r = sanitation.post("/api/v1/leads", lead_body(point=unique_point(JIADING, 100),
                                                       category="illegal_dumping"))
        assert r.status_code == 201, r.text
        lead = r.json()
        assert (lead["status"], lead["city"], lead["to_city"]) == ("handed_over", "jiading",
                                                                   "jiading")
        event = events.wait(lambda e: e["subject"] == lead["id"])[0]
    assert event["type"] == "lead.handed_over"
    assert (event["data"]["from_city"], event["data"]["to_city"]) == ("taicang", "jiading")
    assert event["city"] == "taicang"


def test_bureau_accepts_a_lead_and_lead_accepted_is_emitted(platform):
    source, bureau = platform.client(*PROPERTY), platform.client(*BUREAU)
    lead = source.post("/api/v1/leads", lead_body(point=unique_point())).json()
    with platform.observe("taicang", routing_key="lead.accepted") as events:
        r = bureau.post(f"/api/v1/leads/{lead['id']}/decision",
                        {"decision": "accept", "reason": "城厢镇中队处置"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "accepted"
        event = events.wait(lambda e: e["subject"] == lead["id"])[0]
    assert event["data"]["squad"] == lead["squad"]
    assert "Test Taicang Bureau" in event["data"]["decided_by"]
    history = source.get(f"/api/v1/leads/{lead['id']}").json()["history"]
    assert [h["action"] for h in history] == ["submitted", "accept"]
    # deciding twice is a conflict, and changes nothing
    again = bureau.post(f"/api/v1/leads/{lead['id']}/decision", {"decision": "reject",
                                                                "reason": "x"})
    assert again.status_code == 409
    assert source.get(f"/api/v1/leads/{lead['id']}").json()["status"] == "accepted"


def test_reject_needs_a_reason_and_is_recorded(platform):
    source, bureau = platform.client(*PROPERTY), platform.client(*BUREAU)
    lead = source.post("/api/v1/leads", lead_body(point=unique_point())).json()
    r = bureau.post(f"/api/v1/leads/{lead['id']}/decision", {"decision": "reject"})
    assert r.status_code == 422
    assert "reason" in r.json()["errors"]
    assert source.get(f"/api/v1/leads/{lead['id']}").json()["status"] == "routed"
    r = bureau.post(f"/api/v1/leads/{lead['id']}/decision",
                    {"decision": "reject", "reason": "不属于城管职责 not ours"})
    assert r.status_code == 200
    assert r.json()["status"] == "rejected"
    assert r.json()["decision_reason"] == "不属于城管职责 not ours"


def test_a_source_cannot_decide_and_a_handed_over_lead_cannot_be_decided_here(platform):
    source, bureau = platform.client(*PROPERTY), platform.client(*BUREAU)
    lead = source.post("/api/v1/leads", lead_body(point=unique_point())).json()
    r = source.post(f"/api/v1/leads/{lead['id']}/decision", {"decision": "accept"})
    assert r.status_code == 403
    handed = source.post("/api/v1/leads", lead_body(point=unique_point(JIADING, 100),
                                                    category="plaza_management")).json()
    r = bureau.post(f"/api/v1/leads/{handed['id']}/decision", {"decision": "accept"})
    assert r.status_code == 409


def test_an_organisation_sees_only_its_own_leads_unless_city_wide(platform):
    a = platform.client("taicang", "Org A 甲物业", "source")
    b = platform.client("taicang", "Org B 乙物业", "source")
    squad = platform.client("taicang", "Test Squad 测试中队", "squad")
    lead = a.post("/api/v1/leads", lead_body(point=unique_point())).json()
    assert b.get(f"/api/v1/leads/{lead['id']}").status_code == 404
    assert squad.get(f"/api/v1/leads/{lead['id']}").status_code == 200
    assert all(item["source_org"].startswith("Org B")
               for item in b.get("/api/v1/leads").json()["items"])
    assert lead["id"] in [i["id"] for i in a.get("/api/v1/leads?limit=200").json()["items"]]


def test_list_filters_and_paginates_with_a_cursor(platform):
    source = platform.client("taicang", "Org Pager 翻页物业", "source")
    ids = {source.post("/api/v1/leads", lead_body(point=unique_point(),
                                                  category="garbage_sorting")).json()["id"]
           for _ in range(5)}
    seen, cursor = [], None
    while True:
        q = "/api/v1/leads?limit=2&category=garbage_sorting" + (f"&cursor={cursor}"
                                                                 if cursor else "")
        page = source.get(q).json()
        assert len(page["items"]) <= 2
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert set(seen) == ids and len(seen) == 5  # every lead once, none twice
    assert source.get("/api/v1/leads?status=merged").json()["items"] == []
    assert source.get("/api/v1/leads?cursor=garbage").status_code == 422


def test_categories_and_openapi_are_served(platform):
    from support import ApiClient

    anon = ApiClient(platform.url("taicang"), None)
    cats = anon.get("/api/v1/categories").json()["items"]
    assert {c["code"] for c in cats} >= {"exposed_garbage", "illegal_dumping"}
    assert next(c for c in cats if c["code"] == "exposed_garbage")["name_zh"] == "暴露垃圾"
    doc = anon.get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert "/api/v1/leads" in doc["paths"]
    page = anon.get("/docs")
    assert page.status_code == 200 and "POST /api/v1/leads" in page.text

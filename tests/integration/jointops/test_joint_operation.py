"""Joint operations (联合整治) across three cities on real RabbitMQ and PostgreSQL: Taicang plans a
zero-hour action on its border with Jiading, invites Jiading and Baoshan through the bridge; Jiading
accepts with teams (one refused: already on an overlapping operation), Baoshan declines; the
checkpoints report; every violation becomes a case in the city where it happened; the
after-action figures reconcile with the cases."""

from __future__ import annotations

import csv
import io
import math
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from support import TEST_SITE, wait_for

from services.common import parking
from services.common.geo import default_city_locator, to_utm, unproject_geometry
from services.jointops import domain

pytestmark = pytest.mark.integration

BUREAUS = {c: (c, f"Test {c} bureau 城管局", "bureau") for c in ("taicang", "jiading", "baoshan")}
COORDINATOR = ("taicang", "Test Taicang coordination 联合整治办", "coordinator")
J_COORDINATOR = ("jiading", "Test Jiading coordination 联合整治办", "coordinator")
SQUAD = ("jiading", "Test Jiading squad 嘉定一中队", "squad")


def near_border(fraction: float, city: str, metres: float = 800.0) -> tuple[float, float]:
    """A WGS84 point in `city`, `metres` from the Taicang–Jiading border at `fraction` along it."""
    return domain.point_near_border(default_city_locator(), "taicang", "jiading", fraction, city,
                                    metres)


CP1 = near_border(0.35, "taicang")
CP2 = near_border(0.55, "jiading")
IN_TAICANG = near_border(0.40, "taicang", 1200)
IN_JIADING = near_border(0.60, "jiading", 1200)


def iso(t: datetime) -> str:
    return t.isoformat()


def plan_body(start: datetime, end: datetime, **overrides) -> dict:
    body = {
        "name": f"太嘉边界零点行动 {uuid.uuid4().hex[:6]}", "kind": "zero_hour",
        "partners": ["jiading", "baoshan"], "starts_at": iso(start), "ends_at": iso(end),
        "area": {"border": {"cities": ["taicang", "jiading"], "buffer_m": 3000}},
        "categories": ["construction_waste", "illegal_dumping"],
        "checkpoints": [
            {"code": "CP1", "name": "浏河检查点 Liuhe checkpoint",
             "location": {"lon": CP1[0], "lat": CP1[1]}, "teams_needed": 1},
            {"code": "CP2", "name": "外冈检查点 Waigang checkpoint",
             "location": {"lon": CP2[0], "lat": CP2[1]}, "teams_needed": 2},
        ],
        "briefing": "夜间渣土车联合检查 night muck-truck checks",
    }
    body.update(overrides)
    return body


@pytest.fixture(scope="module")
def people(platform):
    return {"coordinator": platform.client(*COORDINATOR),
            "j_coordinator": platform.client(*J_COORDINATOR),
            "squad": platform.client(*SQUAD),
            **{c: platform.client(*BUREAUS[c]) for c in BUREAUS}}


def seen_in(client, op_id, predicate, what):
    def check():
        r = client.get(f"/api/v1/jointops/{op_id}")
        return r.json() if r.status_code == 200 and predicate(r.json()) else None
    return wait_for(check, timeout=30, what=what)


def active_operation(co, partners=("jiading",)) -> tuple[str, datetime]:
    """An operation of Taicang's, planned around now, invited, confirmed and started."""
    now = datetime.now(UTC).replace(microsecond=0)
    r = co.post("/api/v1/jointops", plan_body(now - timedelta(hours=1), now + timedelta(hours=2),
                                              partners=list(partners)))
    assert r.status_code == 201, r.text
    op_id = r.json()["operation_id"]
    for action in ("invite", "confirm", "start"):
        assert co.post(f"/api/v1/jointops/{op_id}/{action}").status_code == 200
    return op_id, now


def parked_on(city: str, queue: str, event_id: str) -> dict:
    """The parked copy of an event on `queue` in `city`, once it is there."""
    return wait_for(lambda: [p for p in parking.list_parked(
        TEST_SITE.management_url(), TEST_SITE.vhost(city), 300)
        if p["queue"] == queue and event_id in (p["payload"] or "")],
        timeout=40, what=f"{event_id} parked on {queue}")[0]


def lead_id_in(platform, city, violation_id):
    return wait_for(lambda: platform.scalar(
        city, "SELECT id FROM leads.leads WHERE source_ref = :r", r=violation_id),
        timeout=30, what=f"the lead of violation {violation_id} in {city}")


def test_the_whole_joint_operation(platform, people):
    now = datetime.now(UTC).replace(microsecond=0)
    start, end = now - timedelta(minutes=30), now + timedelta(hours=4)
    co, jco = people["coordinator"], people["j_coordinator"]

    # Taicang plans; the area is the shared border ± 3 km
    r = co.post("/api/v1/jointops", plan_body(start, end))
    assert r.status_code == 201, r.text
    op = r.json()
    op_id = op["operation_id"]
    assert (op["status"], op["owner"], op["lead_city"]) == ("draft", True, "taicang")
    assert op["area"]["type"] == "Polygon" and op["short_checkpoints"] == ["CP1", "CP2"]
    # a draft is Taicang's alone
    assert people["jiading"].get(f"/api/v1/jointops/{op_id}").status_code == 404

    # Jiading's own operation at an overlapping time already holds its first squad
    r = jco.post("/api/v1/jointops", plan_body(
        start, end, partners=["taicang"],
        area={"border": {"cities": ["jiading", "taicang"], "buffer_m": 3000}}))
    assert r.status_code == 201, r.text
    own = r.json()["operation_id"]
    r = jco.request("PUT", f"/api/v1/jointops/{own}/teams", json={"teams": [
        {"name": "嘉定一中队", "checkpoint": "CP2", "people": 6, "vehicles": 2}]})
    assert r.status_code == 200, r.text

    # invitations go out through the bridge
    r = co.post(f"/api/v1/jointops/{op_id}/invite")
    assert r.status_code == 200 and r.json()["status"] == "invited", r.text
    for city in ("jiading", "baoshan"):
        copy = seen_in(people[city], op_id, lambda o: o["status"] == "invited",
                       f"the invitation in {city}")
        assert copy["owner"] is False and copy["lead_city"] == "taicang"
        assert [i["status"] for i in copy["invitations"] if i["city"] == city] == ["pending"]

    # the same squad on two overlapping operations is refused, and nothing is answered
    teams = [{"name": " 嘉定一中队 ", "checkpoint": "CP2", "people": 6, "vehicles": 2}]
    r = people["jiading"].post(f"/api/v1/jointops/{op_id}/answer",
                               {"decision": "accept", "teams": teams})
    assert r.status_code == 409, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert "嘉定一中队" in r.json()["errors"]["teams"][0]
    assert platform.scalar("jiading", "SELECT count(*) FROM jointops.teams "
                                      "WHERE operation_id = :o", o=op_id) == 0
    assert platform.scalar("jiading", "SELECT status FROM jointops.invitations "
                                      "WHERE operation_id = :o", o=op_id) == "pending"

    # Jiading accepts with two other teams; Baoshan declines
    teams = [{"name": "嘉定二中队", "checkpoint": "CP2", "people": 5, "vehicles": 1,
              "leader": "王队长"},
             {"name": "嘉定三中队", "checkpoint": "CP1", "people": 4, "vehicles": 1}]
    r = people["jiading"].post(f"/api/v1/jointops/{op_id}/answer",
                               {"decision": "accept", "teams": teams, "note": "收到"})
    assert r.status_code == 200, r.text
    r = people["baoshan"].post(f"/api/v1/jointops/{op_id}/answer",
                               {"decision": "decline", "note": "当晚另有任务"})
    assert r.status_code == 200, r.text

    # Taicang sees both answers and Jiading's teams; CP2 is still one team short
    def answered(o):
        return {i["city"]: i["status"] for i in o["invitations"]} == {
            "jiading": "accepted", "baoshan": "declined"}
    op = seen_in(co, op_id, answered, "both answers in Taicang")
    cp = {c["code"]: c for c in op["checkpoints"]}
    assert [t["name"] for t in cp["CP2"]["teams"]] == ["嘉定二中队"]
    assert cp["CP2"]["short"] is True and cp["CP1"]["short"] is False
    assert op["short_checkpoints"] == ["CP2"]
    assert any("CP2" in w for w in op["warnings"])

    # a report before the operation is active is refused
    r = people["taicang"].post(f"/api/v1/jointops/{op_id}/reports",
                               {"checkpoint": "CP1", "vehicles_checked": 3})
    assert r.status_code == 409, r.text

    # Taicang commits its own team, confirms (flagged short) and starts
    r = co.request("PUT", f"/api/v1/jointops/{op_id}/teams", json={"teams": [
        {"name": "浏河中队", "checkpoint": "CP2", "people": 8, "vehicles": 2}]})
    assert r.status_code == 200 and r.json()["short_checkpoints"] == [], r.text
    r = co.post(f"/api/v1/jointops/{op_id}/confirm")
    assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text
    r = co.post(f"/api/v1/jointops/{op_id}/start")
    assert r.status_code == 200 and r.json()["status"] == "active", r.text
    seen_in(people["jiading"], op_id, lambda o: o["status"] == "active", "active in Jiading")

    # Baoshan declined: it files no reports
    seen_in(people["baoshan"], op_id, lambda o: o["status"] == "active", "active in Baoshan")
    r = people["baoshan"].post(f"/api/v1/jointops/{op_id}/reports",
                               {"checkpoint": "CP1", "vehicles_checked": 1})
    assert r.status_code == 403, r.text

    # checkpoint reports: Jiading's squad at CP2 finds one violation in Jiading and one across
    # the border in Taicang; Taicang's bureau at CP1 finds one in Taicang
    seen = now - timedelta(minutes=10)
    r = people["squad"].post(f"/api/v1/jointops/{op_id}/reports", {
        "checkpoint": "CP2", "team": "嘉定二中队", "vehicles_checked": 17, "violations": [
            {"plate": "沪D·12345", "category": "construction_waste",
             "location": {"lon": IN_JIADING[0], "lat": IN_JIADING[1]},
             "description": "未密闭运输 uncovered load", "occurred_at": iso(seen)},
            {"plate": "苏E·54321", "category": "illegal_dumping",
             "location": {"lon": IN_TAICANG[0], "lat": IN_TAICANG[1]},
             "description": "路边倾倒渣土 dumping by the road", "occurred_at": iso(seen)}]})
    assert r.status_code == 201, r.text
    j_report = r.json()
    assert [v["city"] for v in j_report["violations"]] == ["jiading", "taicang"]
    assert [v["plate"] for v in j_report["violations"]] == ["沪D12345", "苏E54321"]
    r = people["taicang"].post(f"/api/v1/jointops/{op_id}/reports", {
        "checkpoint": "CP1", "team": "嘉定三中队", "vehicles_checked": 9, "violations": [
            {"plate": "苏E·11111", "category": "construction_waste",
             "location": {"lon": IN_TAICANG[0] + 0.002, "lat": IN_TAICANG[1]},
             "description": "无核准证 no permit", "occurred_at": iso(seen)}]})
    assert r.status_code == 201, r.text
    t_report = r.json()
    ids = [v["violation_id"] for v in j_report["violations"] + t_report["violations"]]

    # each violation became a lead where it happened: Jiading's own one routed in Jiading, the
    # one across the border handed over to Taicang, Taicang's routed in Taicang
    in_jd = lead_id_in(platform, "jiading", ids[0])
    handed = lead_id_in(platform, "jiading", ids[1])
    assert platform.scalar("jiading", "SELECT status FROM leads.leads WHERE id = :i",
                           i=handed) == "handed_over"
    in_tc_handed = wait_for(lambda: platform.scalar(
        "taicang", "SELECT id FROM leads.leads WHERE origin_lead_id = :i", i=handed),
        timeout=30, what="the handed-over lead in Taicang")
    in_tc = lead_id_in(platform, "taicang", ids[2])

    # the bureaus accept them; each opens a case in its city
    for city, lead in (("jiading", in_jd), ("taicang", in_tc_handed), ("taicang", in_tc)):
        r = people[city].post(f"/api/v1/leads/{lead}/decision",
                              {"decision": "accept", "reason": "联合整治查获"})
        assert r.status_code == 200, r.text

    def all_cases():
        r = co.get(f"/api/v1/jointops/{op_id}/report")
        assert r.status_code == 200, r.text
        rep = r.json()
        return rep if rep["totals"]["cases_opened"] == 3 else None
    report = wait_for(all_cases, timeout=60, what="three cases in the after-action report")

    # the figures reconcile with the cases of each city
    by_v = {v["violation_id"]: v for v in report["violations"]}
    assert [by_v[i]["handled_by"] for i in ids] == ["jiading", "taicang", "taicang"]
    leads_of = dict(zip(ids, (in_jd, in_tc_handed, in_tc), strict=True))
    for i in ids:
        case_lead = platform.scalar(by_v[i]["handled_by"],
                                    "SELECT lead_id FROM cases.cases WHERE case_no = :n",
                                    n=by_v[i]["case_no"])
        assert str(case_lead) == str(leads_of[i])
        assert by_v[i]["state"] == "case_opened"
    totals = report["totals"]
    assert (totals["reports"], totals["vehicles_checked"], totals["violations"],
            totals["leads"]) == (2, 26, 3, 3)
    cities = {c["city"]: c for c in report["by_city"]}
    assert (cities["jiading"]["violations"], cities["jiading"]["cases_here"]) == (2, 1)
    assert (cities["taicang"]["violations"], cities["taicang"]["cases_here"]) == (1, 2)
    assert (cities["baoshan"]["reports"], cities["baoshan"]["violations"]) == (0, 0)
    checkpoints = {c["checkpoint"]: c for c in report["by_checkpoint"]}
    assert (checkpoints["CP2"]["vehicles_checked"], checkpoints["CP1"]["vehicles_checked"]) == (
        17, 9)
    assert {c["category"]: c["violations"] for c in report["by_category"]} == {
        "construction_waste": 2, "illegal_dumping": 1}
    assert "3" in report["summary"] and "零点行动" in report["summary"]

    # CSV and text of the same figures
    r = co.get(f"/api/v1/jointops/{op_id}/report", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    total = next(row for row in rows if row[:2] == ["total", "all"])
    assert total[2:9] == ["2", "26", "3", "3", "3", "0", "3"]
    r = co.get(f"/api/v1/jointops/{op_id}/report", params={"format": "text"})
    assert r.status_code == 200 and "26" in r.text

    # the partner keeps no after-action report of its own
    assert people["jiading"].get(f"/api/v1/jointops/{op_id}/report").status_code == 409

    # completed, then reported; the partners follow
    assert co.post(f"/api/v1/jointops/{op_id}/complete").json()["status"] == "completed"
    assert co.post(f"/api/v1/jointops/{op_id}/report").json()["status"] == "reported"
    seen_in(people["jiading"], op_id, lambda o: o["status"] == "reported", "reported")
    # ... and a report on an operation that is no longer active is refused
    r = people["squad"].post(f"/api/v1/jointops/{op_id}/reports",
                             {"checkpoint": "CP2", "vehicles_checked": 1})
    assert r.status_code == 409, r.text


def test_alerts_in_the_area_and_trucks_heading_for_a_checkpoint(platform, people):
    co = people["coordinator"]
    op_id, now = active_operation(co)
    seen_in(people["jiading"], op_id, lambda o: o["status"] == "active", "active in Jiading")
    r = people["jiading"].post(f"/api/v1/jointops/{op_id}/answer", {"decision": "accept"})
    assert r.status_code == 409  # the invitation closed when the operation started

    # a registered truck without a permit drives towards CP1 (in Taicang) ...
    def drive_towards(city, target, plate):
        x, y = to_utm(*target)
        heading = 45.0
        points = []
        for i in range(6):
            d = 1500 - 200 * i
            px, py = x - d * math.sin(math.radians(heading)), y - d * math.cos(
                math.radians(heading))
            from shapely.geometry import Point
            lon, lat = unproject_geometry(Point(px, py)).coords[0]
            points.append({"plate": plate, "ts": iso(now - timedelta(minutes=6 - i)),
                           "lon": lon, "lat": lat, "speed_kmh": 36.0, "heading": heading})
        bureau = people[city]
        assert bureau.post("/api/v1/transport/vehicles", {"plate": plate}).status_code == 201
        r = platform.client(city, f"Test {city} GPS 定位网关", "device").post(
            "/api/v1/transport/positions", {"positions": points})
        assert r.status_code == 200, r.text

    tc_plate = f"苏E·{random.randint(0, 99999):05d}"
    jd_plate = f"沪D·{random.randint(0, 99999):05d}"
    drive_towards("taicang", CP1, tc_plate)
    # ... and one of Jiading's towards CP2 (Jiading raises that alert; Taicang's feed gets it)
    drive_towards("jiading", CP2, jd_plate)

    def feed():
        f = co.get(f"/api/v1/jointops/{op_id}/feed").json()
        plates = {a["plate"] for a in f["alerts"]}
        return f if {tc_plate.replace("·", ""), jd_plate.replace("·", "")} <= plates else None
    f = wait_for(feed, timeout=30, what="both alerts on the feed")
    alerts = {a["plate"]: a for a in f["alerts"]}
    assert alerts[tc_plate.replace("·", "")]["city"] == "taicang"
    assert alerts[jd_plate.replace("·", "")]["city"] == "jiading"
    assert "no_permit" in {a["kind"] for a in f["alerts"]}
    heading_for = {t["plate"]: t for t in f["approaching"]}
    truck = heading_for[tc_plate.replace("·", "")]
    assert truck["checkpoint"] == "CP1" and 400 <= truck["distance_m"] <= 700
    assert truck["eta_minutes"] == pytest.approx(truck["distance_m"] / 10 / 60, abs=0.2)


BAD_PLANS = {
    "window ends before it starts": lambda s, e: plan_body(e, s),
    "checkpoint outside the area": lambda s, e: plan_body(s, e, checkpoints=[
        {"code": "FAR", "name": "far away", "location": {"lon": 121.05, "lat": 31.60}}]),
    "checkpoint window outside the operation": lambda s, e: plan_body(s, e, checkpoints=[
        {"code": "CP1", "name": "late", "location": {"lon": CP1[0], "lat": CP1[1]},
         "starts_at": iso(e), "ends_at": iso(e + timedelta(hours=1))}]),
    "cities that share no border": lambda s, e: plan_body(s, e, area={"border": {
        "cities": ["changshu", "jiading"], "buffer_m": 1000}}),
    "not a polygon": lambda s, e: plan_body(s, e, area={"polygon": {"type": "Point",
                                                                    "coordinates": [1, 2]}}),
    "a self-intersecting polygon": lambda s, e: plan_body(s, e, area={"polygon": {
        "type": "Polygon", "coordinates": [[[121.0, 31.4], [121.2, 31.5], [121.2, 31.4],
                                            [121.0, 31.5], [121.0, 31.4]]]}}),
    "both polygon and border": lambda s, e: plan_body(s, e, area={
        "polygon": {"type": "Polygon", "coordinates": []},
        "border": {"cities": ["taicang", "jiading"], "buffer_m": 1000}}),
    "the lead city as its own partner": lambda s, e: plan_body(s, e, partners=["taicang"]),
    "an unknown kind": lambda s, e: plan_body(s, e, kind="midnight_party"),
    "a window already over": lambda s, e: plan_body(s - timedelta(days=2),
                                                    e - timedelta(days=2)),
    "the same checkpoint twice": lambda s, e: plan_body(s, e, checkpoints=[
        {"code": "CP1", "name": "a", "location": {"lon": CP1[0], "lat": CP1[1]}},
        {"code": "CP1", "name": "b", "location": {"lon": CP1[0], "lat": CP1[1]}}]),
}


@pytest.mark.parametrize("case", sorted(BAD_PLANS))
def test_bad_plans_are_refused_and_nothing_is_stored(platform, people, case):
    now = datetime.now(UTC)
    before = platform.scalar("taicang", "SELECT count(*) FROM jointops.operations")
    r = people["coordinator"].post("/api/v1/jointops",
                                   BAD_PLANS[case](now + timedelta(hours=1),
                                                   now + timedelta(hours=5)))
    assert r.status_code == 422, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert r.json()["errors"], r.json()
    assert platform.scalar("taicang", "SELECT count(*) FROM jointops.operations") == before


def test_roles_and_state_rules(platform, people):
    now = datetime.now(UTC)
    body = plan_body(now + timedelta(hours=1), now + timedelta(hours=5))
    # a bureau key is not a coordinator's
    assert people["taicang"].post("/api/v1/jointops", body).status_code == 403
    r = people["coordinator"].post("/api/v1/jointops", body)
    op_id = r.json()["operation_id"]
    # steps out of order are conflicts, and change nothing
    for action in ("confirm", "start", "complete", "report"):
        r = people["coordinator"].post(f"/api/v1/jointops/{op_id}/{action}")
        assert r.status_code == 409, (action, r.text)
    assert platform.scalar("taicang", "SELECT status FROM jointops.operations WHERE id = :i",
                           i=op_id) == "draft"
    # a revision that moves a checkpoint out of the area is refused
    r = people["coordinator"].request("PATCH", f"/api/v1/jointops/{op_id}", json={
        "checkpoints": [{"code": "X", "name": "x", "location": {"lon": 121.05, "lat": 31.6}}]})
    assert r.status_code == 422, r.text
    # a good revision after the invitation goes to the partners again
    assert people["coordinator"].post(f"/api/v1/jointops/{op_id}/invite").status_code == 200
    r = people["coordinator"].request("PATCH", f"/api/v1/jointops/{op_id}",
                                      json={"briefing": "改为 23:30 集合"})
    assert r.status_code == 200 and r.json()["revision"] == 2, r.text
    seen_in(people["jiading"], op_id, lambda o: o["revision"] == 2
            and o["briefing"] == "改为 23:30 集合", "the revision in Jiading")
    # the partner cannot change the lead city's plan
    r = people["j_coordinator"].post(f"/api/v1/jointops/{op_id}/cancel")
    assert r.status_code == 403, r.text
    # cancelled: partners are told, teams are free again
    assert people["coordinator"].post(f"/api/v1/jointops/{op_id}/cancel").json()[
        "status"] == "cancelled"
    seen_in(people["baoshan"], op_id, lambda o: o["status"] == "cancelled", "cancelled")
    # unknown operation, malformed id
    assert people["taicang"].get(f"/api/v1/jointops/{uuid.uuid4()}").status_code == 404
    assert people["taicang"].get("/api/v1/jointops/not-a-uuid").status_code == 404


def _publish_as_bridge(city: str, event_type: str, sender: str, data: dict) -> dict:
    """An event as the local bridge re-publishes a verified partner event (signature, window
    and impersonation checks are the bridge's, tested there)."""
    from kombu import Connection, Exchange, Producer

    from contracts.envelope import Event

    wire = Event(type=event_type, version=1, source=f"{sender}/jointops", city=sender,
                 subject=str(data["operation_id"]), data=data).to_wire()
    with Connection(TEST_SITE.amqp_uri(city)) as conn:
        Producer(conn.channel()).publish(
            wire, exchange=Exchange("bridge.events", type="topic", durable=True),
            routing_key=event_type, delivery_mode=2)
    return wire


def test_a_partner_speaking_out_of_turn_is_parked_and_changes_nothing(platform, people):
    co = people["coordinator"]
    op_id, now = active_operation(co)
    # Baoshan was not invited: its report on Taicang's operation is parked with the reason
    report = {"operation_id": op_id, "lead_city": "taicang", "report_id": str(uuid.uuid4()),
              "city": "baoshan", "checkpoint": "CP1", "team": None, "period_from": now,
              "period_to": now, "vehicles_checked": 5, "violations": [], "note": None,
              "filed_by": "宝山区城管局", "filed_at": now}
    wire = _publish_as_bridge("taicang", "jointops.report_filed", "baoshan", report)
    parked = parked_on("taicang", "evt-bridge-jointops.report_filed--jointops."
                                  "on_partner_report", wire["id"])
    assert parked["reason"] == "not_a_partner" and "baoshan" in parked["error"]
    # an answer about an operation Taicang does not lead is parked too
    answer = {"operation_id": str(uuid.uuid4()), "lead_city": "taicang", "city": "jiading",
              "decision": "accept", "teams": [], "note": None, "answered_by": "x",
              "answered_at": now, "revision": 1}
    wire = _publish_as_bridge("taicang", "jointops.invitation_answered", "jiading", answer)
    parked = parked_on("taicang", "evt-bridge-jointops.invitation_answered--jointops."
                                  "on_answered", wire["id"])
    assert parked["reason"] == "not_ours"
    assert platform.scalar("taicang", "SELECT count(*) FROM jointops.reports "
                                      "WHERE operation_id = :o", o=op_id) == 0


def test_the_window_starts_and_ends_the_operation(platform, people):
    """The lead city's tick starts a confirmed operation when its window opens and completes it
    when the window closes; a draft or invited one is left alone; the partners follow."""
    now = datetime.now(UTC).replace(microsecond=0)
    start, end = now + timedelta(hours=30), now + timedelta(hours=34)
    co = people["coordinator"]
    confirmed = co.post("/api/v1/jointops", plan_body(start, end, partners=["baoshan"])).json()
    invited = co.post("/api/v1/jointops", plan_body(start, end, partners=["baoshan"])).json()
    for op, steps in ((confirmed, ("invite", "confirm")), (invited, ("invite",))):
        for step in steps:
            assert co.post(f"/api/v1/jointops/{op['operation_id']}/{step}").status_code == 200

    def status(op):
        return platform.scalar("taicang", "SELECT status FROM jointops.operations "
                                          "WHERE id = :i", i=op["operation_id"])

    before = platform.rpc("taicang", "jointops", "tick_at", iso(start - timedelta(minutes=1)))
    assert confirmed["operation_id"] not in {m["operation_id"] for m in before}
    moved = platform.rpc("taicang", "jointops", "tick_at", iso(start + timedelta(seconds=5)))
    assert {"operation_id": confirmed["operation_id"], "action": "start"} in moved
    assert (status(confirmed), status(invited)) == ("active", "invited")
    # a second tick at the same instant moves nothing again
    again = platform.rpc("taicang", "jointops", "tick_at", iso(start + timedelta(seconds=5)))
    assert confirmed["operation_id"] not in {m["operation_id"] for m in again}
    platform.rpc("taicang", "jointops", "tick_at", iso(end + timedelta(seconds=5)))
    assert status(confirmed) == "completed"
    seen_in(people["baoshan"], confirmed["operation_id"], lambda o: o["status"] == "completed",
            "completed in Baoshan")


def test_bad_reports_are_refused_and_nothing_is_stored(platform, people):
    co = people["coordinator"]
    op_id, now = active_operation(co)

    def violation(**overrides):
        return {"plate": "苏E·00001", "category": "construction_waste",
                "location": {"lon": IN_TAICANG[0], "lat": IN_TAICANG[1]},
                "description": "x", "occurred_at": iso(now - timedelta(minutes=5)),
                **overrides}
    bad = {
        "unknown checkpoint": {"checkpoint": "CP9", "vehicles_checked": 1},
        "period ends before it starts": {
            "checkpoint": "CP1", "vehicles_checked": 1,
            "period_from": iso(now), "period_to": iso(now - timedelta(minutes=30))},
        "violation outside the five cities": {"checkpoint": "CP1", "vehicles_checked": 1,
                                              "violations": [violation(location={
                                                  "lon": 121.49, "lat": 31.23})]},
        "violation before the operation": {"checkpoint": "CP1", "vehicles_checked": 1,
                                           "violations": [violation(occurred_at=iso(
                                               now - timedelta(hours=5)))]},
        "violation with something that is not a plate": {
            "checkpoint": "CP1", "vehicles_checked": 1,
            "violations": [violation(plate="not a plate")]},
        "violation of an unknown category": {"checkpoint": "CP1", "vehicles_checked": 1,
                                             "violations": [violation(category="noise")]},
        "negative vehicles": {"checkpoint": "CP1", "vehicles_checked": -1},
    }
    for case, body in bad.items():
        r = people["taicang"].post(f"/api/v1/jointops/{op_id}/reports", body)
        assert r.status_code == 422, (case, r.text)
        assert r.json()["errors"], case
    assert platform.scalar("taicang", "SELECT count(*) FROM jointops.reports "
                                      "WHERE operation_id = :o", o=op_id) == 0
    # one good violation beside a bad one: the whole report is refused
    r = people["taicang"].post(f"/api/v1/jointops/{op_id}/reports", {
        "checkpoint": "CP1", "vehicles_checked": 2, "violations": [
            violation(), violation(location={"lon": 121.49, "lat": 31.23})]})
    assert r.status_code == 422 and "1" in r.json()["errors"]["violations"]
    assert platform.scalar("taicang", "SELECT count(*) FROM jointops.violations "
                                      "WHERE operation_id = :o", o=op_id) == 0


def test_the_feed_answers_without_the_transport_service(platform, people):
    """The trucks heading for a checkpoint come from the transport service; when it is down the
    feed still answers, with the reports and alerts it has and a note."""
    from liandong import platform as launcher

    co = people["coordinator"]
    op_id, now = active_operation(co)
    assert co.post(f"/api/v1/jointops/{op_id}/reports",
                   {"checkpoint": "CP1", "vehicles_checked": 4}).status_code == 201
    transport = platform.process("taicang", "transport")
    launcher.stop([transport])
    platform.procs.remove(transport)
    try:
        r = co.get(f"/api/v1/jointops/{op_id}/feed")
        assert r.status_code == 200, r.text
        feed = r.json()
        assert feed["approaching"] == [] and "unavailable" in feed["note"]
        assert [rep["vehicles_checked"] for rep in feed["reports"]] == [4]
    finally:
        platform.restart_fresh("taicang", "transport")
    assert "note" not in co.get(f"/api/v1/jointops/{op_id}/feed").json()

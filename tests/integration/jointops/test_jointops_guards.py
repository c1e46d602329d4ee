"""What a partner may not do to a joint operation, and revisions that keep the plan whole: each
refused or parked with its reason, nothing applied."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from test_joint_operation import (
    CP1,
    IN_TAICANG,
    _publish_as_bridge,
    active_operation,
    iso,
    parked_on,
    plan_body,
    seen_in,
)
from test_joint_operation import people as people  # noqa: F401, PLC0414  (the fixture)

pytestmark = pytest.mark.integration


def test_a_partner_cannot_move_another_citys_violation(platform, people):
    co = people["coordinator"]
    op_id, now = active_operation(co)
    r = people["taicang"].post(f"/api/v1/jointops/{op_id}/reports", {
        "checkpoint": "CP1", "vehicles_checked": 1, "violations": [
            {"plate": "苏E·12121", "category": "construction_waste",
             "location": {"lon": IN_TAICANG[0], "lat": IN_TAICANG[1]}, "description": "x",
             "occurred_at": iso(now - timedelta(minutes=5))}]})
    taicangs = r.json()["violations"][0]["violation_id"]
    # Jiading, a partner speaking for itself, claims Taicang's violation became its case
    wire = _publish_as_bridge("taicang", "jointops.violation_updated", "jiading", {
        "operation_id": op_id, "lead_city": "taicang", "violation_id": taicangs,
        "reported_by": "jiading", "state": "case_closed", "lead_id": str(uuid.uuid4()),
        "handled_by": "jiading", "case_no": "JD-2026-999999", "at": now})
    parked = parked_on("taicang", "evt-bridge-jointops.violation_updated--jointops."
                                   "on_violation_updated", wire["id"])
    assert "not known" in parked["error"]
    state = platform.scalar("taicang", "SELECT state || '/' || coalesce(case_no, '-') FROM "
                                       "jointops.violations WHERE id = :v", v=taicangs)
    assert not state.startswith("case_closed") and "JD-2026-999999" not in state


def test_a_third_city_cannot_take_over_a_partners_copy(platform, people):
    co = people["coordinator"]
    now = datetime.now(UTC).replace(microsecond=0)
    op_id = co.post("/api/v1/jointops", plan_body(now + timedelta(hours=1),
                                                  now + timedelta(hours=5))).json()[
        "operation_id"]
    assert co.post(f"/api/v1/jointops/{op_id}/invite").status_code == 200
    copy = seen_in(people["jiading"], op_id, lambda o: o["status"] == "invited", "the copy")
    plan = {k: copy[k] for k in ("name", "kind", "partners", "area", "area_spec",
                                 "categories", "briefing")}
    forged = {**plan, "operation_id": op_id, "lead_city": "baoshan", "coordinator": "x",
              "partners": ["jiading"], "starts_at": now, "ends_at": now + timedelta(hours=1),
              "checkpoints": [], "status": "cancelled", "revision": 999, "change": "cancelled"}
    wire = _publish_as_bridge("jiading", "jointops.operation_published", "baoshan", forged)
    parked = parked_on("jiading", "evt-bridge-jointops.operation_published--jointops."
                                   "on_published", wire["id"])
    assert parked["reason"] == "not_ours"
    assert platform.scalar("jiading", "SELECT status || '/' || lead_city || '/' || revision "
                                      "FROM jointops.operations WHERE id = :i",
                           i=op_id) == "invited/taicang/1"


def test_an_answer_that_arrives_after_the_start_changes_nothing(platform, people):
    co = people["coordinator"]
    op_id, now = active_operation(co)
    wire = _publish_as_bridge("taicang", "jointops.invitation_answered", "jiading", {
        "operation_id": op_id, "lead_city": "taicang", "city": "jiading",
        "decision": "decline", "teams": [], "note": "late", "answered_by": "x",
        "answered_at": now, "revision": 1})
    parked = parked_on("taicang", "evt-bridge-jointops.invitation_answered--jointops."
                                   "on_answered", wire["id"])
    assert parked["reason"] == "closed"
    assert platform.scalar("taicang", "SELECT status FROM jointops.invitations WHERE "
                                      "operation_id = :o AND city = 'jiading'",
                           o=op_id) == "pending"


def test_revisions_keep_the_plan_whole(platform, people):
    co = people["coordinator"]
    now = datetime.now(UTC).replace(microsecond=0)
    op_id = co.post("/api/v1/jointops", plan_body(now + timedelta(hours=1),
                                                  now + timedelta(hours=5))).json()[
        "operation_id"]
    # the window moves: checkpoints that had the operation's window move with it
    later = now + timedelta(hours=2)
    r = co.request("PATCH", f"/api/v1/jointops/{op_id}", json={"starts_at": iso(later)})
    assert r.status_code == 200, r.text
    assert {c["starts_at"] for c in r.json()["checkpoints"]} == {
        later.isoformat().replace("+00:00", "Z")}
    # new checkpoints alone, with their defaults
    r = co.request("PATCH", f"/api/v1/jointops/{op_id}", json={"checkpoints": [
        {"code": "N1", "name": "新检查点", "location": {"lon": CP1[0], "lat": CP1[1]}}]})
    assert r.status_code == 200, r.text
    assert [(c["code"], c["teams_needed"]) for c in r.json()["checkpoints"]] == [("N1", 1)]
    # an area given is given whole: a polygon alone, or a border missing its buffer
    r = co.request("PATCH", f"/api/v1/jointops/{op_id}", json={"area": {"polygon": {
        "type": "Polygon", "coordinates": [[[121.0, 31.3], [121.3, 31.3], [121.3, 31.6],
                                            [121.0, 31.6], [121.0, 31.3]]]}}})
    assert r.status_code == 200, r.text
    r = co.request("PATCH", f"/api/v1/jointops/{op_id}", json={"area": {"border": {
        "cities": ["taicang", "jiading"]}}})
    assert r.status_code == 422 and "buffer_m" in r.text, r.text
    r = co.request("PATCH", f"/api/v1/jointops/{op_id}", json={})
    assert r.status_code == 422, r.text
    # a cursor this API never issued
    r = co.get("/api/v1/jointops", params={"cursor": "WyIyMDI0LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgNV0"})
    assert r.status_code == 422, r.text

"""A partner city's lead, arriving as `lead.handed_over` on `bridge.events` (what the bridge
re-publishes after verifying it), becomes a lead for this city to decide on: once, however often
it is delivered."""

import re
import uuid
from datetime import UTC, datetime

import pytest
from kombu import Connection, Exchange, Producer
from support import TEST_SITE, unique_point, wait_for

from contracts.envelope import Event
from services.common import parking

pytestmark = pytest.mark.integration


def _handover(to_city="jiading", point=None, **data_changes) -> dict:
    lon, lat = point or unique_point((121.1630, 31.3790), 120)
    data = {
        "lead_id": uuid.uuid4(), "from_city": "taicang", "to_city": to_city,
        "category": "illegal_dumping", "description": "田边偷倒渣土 dumping beside a field",
        "location": {"lon": lon, "lat": lat}, "address": None,
        "occurred_at": datetime.now(UTC), "submitted_at": datetime.now(UTC),
        "evidence": [{"uri": "https://evidence.example/x.jpg", "sha256": "b" * 64}],
        "camera": None, "source_org": "太仓环卫所", "source_ref": "HW-1",
    }
    data.update(data_changes)
    return Event(type="lead.handed_over", version=1, source="taicang/leads", city="taicang",
                 subject=str(data["lead_id"]), data=data, trace_id="trace-handover-1").to_wire()


def _publish_to_bridge_events(city: str, body) -> None:
    with Connection(TEST_SITE.amqp_uri(city)) as conn:
        Producer(conn.channel()).publish(
            body, exchange=Exchange("bridge.events", type="topic", durable=True),
            routing_key="lead.handed_over", delivery_mode=2)


def _received(platform, origin_id) -> list:
    with platform.engine("jiading").connect() as conn:
        from sqlalchemy import text

        return conn.execute(text("SELECT id, status, squad, origin_city, trace_id "
                                 "FROM leads.leads WHERE origin_lead_id = :o"),
                            {"o": origin_id}).all()


def _duplicates_metric(platform) -> float:
    import requests

    text = requests.get(platform.service_url("jiading", "leads") + "/metrics").text
    m = re.search(r'liandong_events_handled_total\{handler="on_lead_handed_over",'
                  r'outcome="duplicate",type="lead.handed_over"\} ([0-9.]+)', text)
    return float(m.group(1)) if m else 0.0


def test_handover_becomes_a_routed_lead_once_even_when_redelivered(platform):
    body = _handover()
    origin = body["data"]["lead_id"]
    with platform.observe("jiading") as events:
        _publish_to_bridge_events("jiading", body)
        rows = wait_for(lambda: _received(platform, origin), what="the received lead")
        announced = events.wait(lambda e: e["type"] == "lead.submitted"
                                and e["data"].get("origin_lead_id") == origin)[0]
    lead = rows[0]
    assert (lead.status, lead.origin_city) == ("routed", "taicang")
    assert lead.squad and lead.squad.startswith("jiading-")
    assert lead.trace_id == "trace-handover-1"  # the trace crosses the handover
    assert announced["data"]["city"] == "jiading"

    before = _duplicates_metric(platform)
    _publish_to_bridge_events("jiading", body)  # delivered again
    wait_for(lambda: _duplicates_metric(platform) == before + 1, what="the duplicate skipped")
    assert len(_received(platform, origin)) == 1


def test_jiading_bureau_accepts_the_handed_over_lead(platform):
    body = _handover()
    _publish_to_bridge_events("jiading", body)
    lead_id = str(wait_for(lambda: _received(platform, body["data"]["lead_id"]))[0].id)
    bureau = platform.client("jiading", "嘉定区城管局 Test Jiading Bureau", "bureau")
    with platform.observe("jiading", routing_key="lead.accepted") as events:
        r = bureau.post(f"/api/v1/leads/{lead_id}/decision", {"decision": "accept"})
        assert r.status_code == 200, r.text
        accepted = events.wait(lambda e: e["subject"] == lead_id)[0]
    assert accepted["data"]["origin_city"] == "taicang"
    assert accepted["data"]["origin_lead_id"] == body["data"]["lead_id"]
    detail = bureau.get(f"/api/v1/leads/{lead_id}").json()
    assert [h["action"] for h in detail["history"]] == ["received", "accept"]


def test_handover_for_another_city_is_not_taken(platform):
    body = _handover(to_city="kunshan")
    _publish_to_bridge_events("jiading", body)
    wait_for(lambda: platform.scalar("jiading", "SELECT count(*) FROM leads.inbox "
                                                "WHERE event_id = :e", e=body["id"]) == 1)
    assert _received(platform, body["data"]["lead_id"]) == []


def test_invalid_handover_is_parked_and_creates_nothing(platform):
    body = _handover()
    body["data"]["category"] = "noise"
    _publish_to_bridge_events("jiading", body)
    parked = wait_for(lambda: [p for p in parking.list_parked(TEST_SITE.management_url(),
                                                              TEST_SITE.vhost("jiading"))
                               if p["reason"] == "invalid"
                               and (p["payload"] or "").find(body["id"]) >= 0],
                      what="the invalid handover to be parked")
    assert "category" in parked[0]["error"]
    assert _received(platform, body["data"]["lead_id"]) == []

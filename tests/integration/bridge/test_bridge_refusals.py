"""Nothing crosses unsigned, unchecked or twice: each kind of bad envelope delivered to Jiading's
`bridge.inbound` (where partners' shovels write) is refused, parked with its reason and counted,
and nothing of it is applied."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from kombu import Connection, Exchange, Producer
from support import TEST_SITE, unique_point, wait_for

from contracts.envelope import Event
from services.bridge import signing
from services.common import parking

pytestmark = pytest.mark.integration
JIADING_POINT = (121.1630, 31.3790)


def _taicang_key() -> signing.SigningKey:
    return signing.load_keys(TEST_SITE.bridge_key_dir(), "taicang")[0]


def _handover_event(**data_changes) -> dict:
    lon, lat = unique_point(JIADING_POINT, 110)
    data = {"lead_id": uuid.uuid4(), "from_city": "taicang", "to_city": "jiading",
            "category": "illegal_dumping", "description": "渣土偷倒 refusal test",
            "location": {"lon": lon, "lat": lat}, "address": None,
            "occurred_at": datetime.now(UTC), "submitted_at": datetime.now(UTC),
            "evidence": [], "camera": None, "source_org": "太仓环卫所", "source_ref": "R"}
    data.update(data_changes)
    return Event(type="lead.handed_over", version=1, source="taicang/leads", city="taicang",
                 subject=str(data["lead_id"]), data=data).to_wire()


def _deliver(envelope) -> None:
    """What a partner's shovel does: publish to our bridge.inbound exchange."""
    with Connection(TEST_SITE.amqp_uri("jiading")) as conn:
        Producer(conn.channel()).publish(
            envelope, exchange=Exchange("bridge.inbound", type="fanout", durable=True),
            routing_key="", delivery_mode=2)


def _refusals(platform, event_id) -> list:
    from sqlalchemy import text

    with platform.engine("jiading").connect() as conn:
        return [r.reason for r in conn.execute(
            text("SELECT reason FROM bridge.refusals WHERE event_id = :e ORDER BY id"),
            {"e": event_id})]


def _applied(platform, origin_lead_id) -> int:
    return platform.scalar("jiading", "SELECT count(*) FROM leads.leads "
                                      "WHERE origin_lead_id = :o", o=str(origin_lead_id))


def _parked_reasons(event_id) -> list[str]:
    return [p["reason"] for p in parking.list_parked(TEST_SITE.management_url(),
                                                     TEST_SITE.vhost("jiading"), 500)
            if p["queue"] == "bridge.inbound" and event_id in str(p["payload"])]


def _signed(event=None, key=None, **fields) -> dict:
    event = event or _handover_event()
    envelope = signing.sign(key or _taicang_key(), fields.pop("sender", "taicang"),
                            fields.pop("to", "jiading"), event, fields.pop("sent_at", None))
    return envelope


def _tampered():
    envelope = _signed()
    envelope["event"]["data"]["description"] = "changed after signing"
    return envelope


def _bad_signature():
    envelope = _signed()
    other = _signed()
    envelope["sig"] = other["sig"]  # a valid signature, of something else
    return envelope


def _unknown_sender():
    return _signed(event=_handover_event(), sender="changshu")  # not Jiading's partner here


def _foreign_key():
    return _signed(key=signing.generate_key())  # a key Taicang never exported


def _wrong_destination():
    return _signed(to="kunshan")


def _stale():
    old = (datetime.now(UTC) - timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    return _signed(sent_at=old)


def _not_allowed():
    event = Event(type="lead.merged", version=1, source="taicang/leads", city="taicang",
                  subject="x", data={"lead_id": uuid.uuid4(), "duplicate_of": uuid.uuid4(),
                                     "category": "exposed_garbage", "distance_m": 3.0,
                                     "source_org": "x"}).to_wire()
    return _signed(event=event)


def _invalid_schema():
    event = _handover_event()
    event["data"]["category"] = "noise"
    return _signed(event=event)


def _impersonation():
    event = _handover_event()
    event["source"], event["city"] = "kunshan/leads", "kunshan"
    return _signed(event=event)


CASES = {
    "tampered body": (_tampered, "bad_signature"),
    "bad signature": (_bad_signature, "bad_signature"),
    "unknown sender": (_unknown_sender, "unknown_sender"),
    "a key the sender does not own": (_foreign_key, "unknown_key"),
    "wrong destination": (_wrong_destination, "wrong_destination"),
    "replay outside the window": (_stale, "stale"),
    "type not allowed for that partner": (_not_allowed, "type_not_allowed"),
    "invalid schema": (_invalid_schema, "invalid_event"),
    "an event of another city": (_impersonation, "impersonation"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_envelope_is_refused_parked_counted_and_not_applied(platform, name):
    make, reason = CASES[name]
    envelope = make()
    event_id = envelope["event"]["id"]
    with platform.observe("jiading", exchange="bridge.events") as republished:
        _deliver(envelope)
        wait_for(lambda: _refusals(platform, event_id) == [reason],
                 what=f"refusal {reason}")
        wait_for(lambda: reason in _parked_reasons(event_id), what="the parked copy")
        assert republished.drain() == []  # nothing re-published locally
    assert _applied(platform, envelope["event"]["data"].get("lead_id")) == 0


def test_replay_inside_the_window_is_applied_once_and_the_copy_refused(platform):
    envelope = _signed()
    event_id = envelope["event"]["id"]
    _deliver(envelope)
    wait_for(lambda: _applied(platform, envelope["event"]["data"]["lead_id"]) == 1,
             what="the first delivery applied")
    _deliver(envelope)  # captured and sent again, a minute later
    wait_for(lambda: _refusals(platform, event_id) == ["replay"], what="the replay refused")
    assert _applied(platform, envelope["event"]["data"]["lead_id"]) == 1


def test_garbage_on_the_inbound_queue_is_parked_and_the_bridge_keeps_going(platform):
    with Connection(TEST_SITE.amqp_uri("jiading")) as conn:
        Producer(conn.channel()).publish(
            b"\x00\x01 not json", exchange=Exchange("bridge.inbound", type="fanout",
                                                    durable=True),
            routing_key="", content_type="application/json", content_encoding="utf-8")
    good = _signed()
    _deliver(good)
    wait_for(lambda: _applied(platform, good["event"]["data"]["lead_id"]) == 1,
             what="a good envelope after the garbage")


def test_operator_accepts_envelopes_refused_only_for_their_age(platform):
    """After a link outage longer than the window, the receiving operator applies what was
    refused as stale; everything else stays parked, and nothing is applied twice."""
    from services.bridge.stale import accept_stale

    old = _stale()
    forged = _bad_signature()
    for envelope in (old, forged):
        _deliver(envelope)
    wait_for(lambda: "stale" in _parked_reasons(old["event"]["id"]), what="stale parked")
    wait_for(lambda: "bad_signature" in _parked_reasons(forged["event"]["id"]),
             what="forgery parked")
    counts = accept_stale(TEST_SITE.amqp_uri("jiading"), TEST_SITE.database_url("jiading"),
                          "jiading")
    assert counts["accepted"] >= 1
    wait_for(lambda: _applied(platform, old["event"]["data"]["lead_id"]) == 1,
             what="the stale handover applied by the running bridge's relay")
    assert "bad_signature" in _parked_reasons(forged["event"]["id"])  # still parked
    assert _applied(platform, forged["event"]["data"]["lead_id"]) == 0
    again = accept_stale(TEST_SITE.amqp_uri("jiading"), TEST_SITE.database_url("jiading"),
                         "jiading")
    assert again["accepted"] == 0
    assert _applied(platform, old["event"]["data"]["lead_id"]) == 1


def _bundle(events, **fields) -> dict:
    return signing.sign_bundle(_taicang_key(), "taicang", fields.pop("to", "jiading"), events,
                               fields.pop("sent_at", None))


def test_a_bundle_applies_its_good_events_and_parks_each_bad_one(platform):
    good = [_handover_event() for _ in range(3)]
    bad = _handover_event()
    bad["data"]["category"] = "noise"
    _deliver(_bundle([good[0], bad, good[1], good[2]]))
    for event in good:
        wait_for(lambda e=event: _applied(platform, e["data"]["lead_id"]) == 1,
                 what="each good event of the bundle applied")
    wait_for(lambda: _refusals(platform, bad["id"]) == ["invalid_event"],
             what="the bad event refused")
    parked = wait_for(lambda: [p for p in parking.list_parked(
        TEST_SITE.management_url(), TEST_SITE.vhost("jiading"), 500)
        if p["queue"] == "bridge.inbound" and bad["id"] in str(p["payload"])],
        what="the bad event parked on its own")
    assert parked[0]["reason"] == "invalid_event"
    assert not any(e["id"] in str(parked[0]["payload"]) for e in good)
    assert _applied(platform, bad["data"]["lead_id"]) == 0
    # the same bundle again (a shovel redelivery): nothing applied twice, copies refused
    _deliver(_bundle(good))
    wait_for(lambda: _refusals(platform, good[0]["id"]) == ["replay"], what="the replay")
    assert [_applied(platform, e["data"]["lead_id"]) for e in good] == [1, 1, 1]


def test_a_tampered_bundle_is_parked_whole_and_nothing_of_it_applied(platform):
    events = [_handover_event() for _ in range(2)]
    spoilt = _bundle(events)
    spoilt["events"][1]["data"]["description"] = "changed after signing"
    _deliver(spoilt)
    wait_for(lambda: "bad_signature" in _parked_reasons(events[0]["id"]),
             what="the bundle parked whole")
    assert [_applied(platform, e["data"]["lead_id"]) for e in events] == [0, 0]

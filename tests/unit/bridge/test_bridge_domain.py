"""Bridge rules without a broker: where a local event goes, and each check of a partner's
envelope, in order."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts.envelope import Event
from services.bridge import domain, signing
from services.bridge.keys import import_bundle

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=5)
PARTNERS = {"taicang", "kunshan", "changshu", "jiading", "baoshan"} - {"taicang"}


def handover(to_city="jiading", city="taicang", **data) -> Event:
    body = {"lead_id": uuid.uuid4(), "from_city": city, "to_city": to_city,
            "category": "illegal_dumping", "description": "d",
            "location": {"lon": 121.16, "lat": 31.38}, "address": None, "occurred_at": NOW,
            "submitted_at": NOW, "evidence": [], "camera": None, "source_org": "o",
            "source_ref": "r", **data}
    return Event(type="lead.handed_over", version=1, source=f"{city}/leads", city=city,
                 subject=str(body["lead_id"]), data=body, time=NOW)


def rejected(origin_city, city="jiading") -> Event:
    return Event(type="lead.rejected", version=1, source=f"{city}/leads", city=city,
                 subject="x", data={"lead_id": uuid.uuid4(), "city": city,
                                    "category": "exposed_garbage", "decided_by": "b",
                                    "reason": "no", "origin_city": origin_city,
                                    "origin_lead_id": uuid.uuid4()}, time=NOW)


def test_a_handover_goes_to_its_city_only():
    assert domain.destinations(handover("jiading"), "taicang", PARTNERS) == ["jiading"]
    assert domain.destinations(handover("taicang"), "taicang", PARTNERS) == []  # never us
    assert domain.destinations(handover("jiading"), "taicang", {"kunshan"}) == []  # no partner


def test_reports_go_back_to_the_origin_and_only_our_own_events_leave():
    assert domain.destinations(rejected("taicang"), "jiading", {"taicang"}) == ["taicang"]
    assert domain.destinations(rejected(None), "jiading", {"taicang"}) == []
    # a partner's event re-published here is never sent on (no loops between cities)
    assert domain.destinations(rejected("taicang", city="kunshan"), "jiading",
                               {"taicang", "kunshan"}) == []


def test_anchors_go_to_every_partner():
    anchor = Event(type="evidence.anchored", version=1, source="taicang/cases", city="taicang",
                   subject="1", data={"city": "taicang", "seq": 3, "hash": "a" * 64,
                                      "previous_seq": 1, "at": NOW, "algorithm": "sha256"},
                   time=NOW)
    assert domain.destinations(anchor, "taicang", PARTNERS) == sorted(PARTNERS)


def test_a_joint_operation_goes_to_its_partners_and_their_answers_to_the_lead_city():
    plan = Event(type="jointops.alert_attached", version=1, source="jiading/jointops",
                 city="jiading", subject="op", time=NOW, data={
                     "operation_id": uuid.uuid4(), "lead_city": "taicang", "city": "jiading",
                     "alert_id": uuid.uuid4(), "kind": "no_permit", "plate": "沪D12345",
                     "location": {"lon": 121.2, "lat": 31.4}, "at": NOW, "permit_id": None})
    assert domain.destinations(plan, "jiading", {"taicang", "baoshan"}) == ["taicang"]
    published = Event(type="jointops.operation_published", version=1, source="taicang/jointops",
                      city="taicang", subject="op", time=NOW, data={"partners": [
                          "jiading", "baoshan"], "lead_city": "taicang"})
    assert domain.destinations(published, "taicang", PARTNERS) == ["jiading", "baoshan"]
    # a partner never forwards the lead city's plan
    assert domain.destinations(published, "jiading", {"taicang", "baoshan"}) == []


@pytest.fixture(scope="module")
def keys():
    return {"taicang": signing.generate_key(), "kunshan": signing.generate_key()}


@pytest.fixture(scope="module")
def partners(keys):
    """Jiading's view: Taicang and Kunshan are partners, Kunshan may not send handovers."""
    return {
        "taicang": domain.Partner("taicang", {keys["taicang"].kid:
                                              keys["taicang"].private.public_key()},
                                  frozenset({"lead.handed_over"})),
        "kunshan": domain.Partner("kunshan", {keys["kunshan"].kid:
                                              keys["kunshan"].private.public_key()},
                                  frozenset({"lead.rejected"})),
    }


def signed(keys, sender="taicang", to="jiading", event=None, at=NOW, key=None) -> dict:
    event = event or handover(city=sender)
    stamp = at.isoformat().replace("+00:00", "Z")
    return signing.sign(key or keys[sender], sender, to, event.to_wire(), stamp)


def check(envelope, partners, now=NOW):
    return domain.verify(envelope, "jiading", partners, now, WINDOW)


def test_a_good_envelope_is_accepted(keys, partners):
    verdict = check(signed(keys), partners)
    assert verdict.accepted and verdict.sender == "taicang"
    assert verdict.event.type == "lead.handed_over"


@pytest.mark.parametrize("spoil,reason", [
    (lambda e, k: {k2: v for k2, v in e.items() if k2 != "sig"}, "invalid"),
    (lambda e, k: {**e, "from": "changshu"}, "unknown_sender"),
    (lambda e, k: signing.sign(signing.generate_key(), "taicang", "jiading", e["event"]),
     "unknown_key"),
    (lambda e, k: signing.sign(k["kunshan"], "taicang", "jiading", e["event"]),
     "unknown_key"),  # Kunshan's key is not Taicang's
    (lambda e, k: {**e, "event": {**e["event"], "subject": "changed"}}, "bad_signature"),
    (lambda e, k: {**e, "to": "baoshan"}, "bad_signature"),  # the destination is signed
])
def test_each_check_refuses_with_its_reason(keys, partners, spoil, reason):
    verdict = check(spoil(signed(keys), keys), partners)
    assert not verdict.accepted and verdict.reason == reason
    assert verdict.event is None  # nothing of a refused envelope is handed on


def test_destination_window_contract_and_policy(keys, partners):
    assert check(signed(keys, to="baoshan"), partners).reason == "wrong_destination"
    assert check(signed(keys, at=NOW - timedelta(minutes=6)), partners).reason == "stale"
    assert check(signed(keys, at=NOW + timedelta(minutes=6)), partners).reason == "stale"
    assert check(signed(keys, at=NOW - timedelta(minutes=4)), partners).accepted
    bad = handover(city="taicang").to_wire()
    bad["data"]["category"] = "noise"
    envelope = signing.sign(keys["taicang"], "taicang", "jiading", bad,
                            NOW.isoformat().replace("+00:00", "Z"))
    assert check(envelope, partners).reason == "invalid_event"
    assert check(signed(keys, sender="kunshan", event=handover(city="kunshan")),
                 partners).reason == "type_not_allowed"
    other = handover(city="kunshan").to_wire()  # Taicang signing Kunshan's event
    envelope = signing.sign(keys["taicang"], "taicang", "jiading", other,
                            NOW.isoformat().replace("+00:00", "Z"))
    assert check(envelope, partners).reason == "impersonation"


def test_canonical_form_ignores_key_order_and_keeps_chinese():
    a = signing.canonical({"b": 1, "a": "太仓"})
    assert a == signing.canonical({"a": "太仓", "b": 1})
    assert a == '{"a":"太仓","b":1}'.encode()


def test_a_bundle_whose_key_id_does_not_match_is_refused():
    key = signing.generate_key()
    bundle = {"city": "taicang", "keys": [{"kid": "0" * 16, "public_key": key.public_b64}]}
    with pytest.raises(ValueError, match="does not match"):
        import_bundle(None, bundle)
    with pytest.raises(ValueError, match="no known city"):
        import_bundle(None, {"city": "shanghai", "keys": []})


def bundle(keys, events, sender="taicang", to="jiading", at=NOW, key=None) -> dict:
    stamp = at.isoformat().replace("+00:00", "Z")
    return signing.sign_bundle(key or keys[sender], sender, to,
                               [e.to_wire() if isinstance(e, Event) else e for e in events],
                               stamp)


def check_message(body, partners, now=NOW):
    return domain.verify_message(body, "jiading", partners, now, WINDOW)


def test_a_bundle_is_checked_whole_then_event_by_event(keys, partners):
    good = [handover(city="taicang") for _ in range(3)]
    whole, verdicts = check_message(bundle(keys, good), partners)
    assert whole is None and [v.accepted for v in verdicts] == [True, True, True]
    assert [v.event.id for v in verdicts] == [e.id for e in good]
    # one bad event among good ones: only it is refused
    bad = handover(city="taicang").to_wire()
    bad["data"]["category"] = "noise"
    foreign = handover(city="kunshan")
    whole, verdicts = check_message(bundle(keys, [good[0], bad, foreign]), partners)
    assert whole is None
    assert [v.reason for v in verdicts] == [None, "invalid_event", "impersonation"]


@pytest.mark.parametrize("spoil,reason", [
    (lambda b, k: {**b, "events": [*b["events"], b["events"][0]]}, "bad_signature"),
    (lambda b, k: {**b, "events": b["events"][:1]}, "bad_signature"),  # one dropped
    (lambda b, k: {**b, "to": "baoshan"}, "bad_signature"),
    (lambda b, k: {**b, "events": []}, "invalid"),
    (lambda b, k: {**b, "events": [{}] * 201}, "invalid"),  # more than a bundle holds
    (lambda b, k: {**b, "from": "changshu"}, "unknown_sender"),
    (lambda b, k: signing.sign_bundle(k["kunshan"], "taicang", "jiading", b["events"]),
     "unknown_key"),
])
def test_a_spoilt_bundle_is_refused_whole(keys, partners, spoil, reason):
    whole, verdicts = check_message(spoil(bundle(keys, [handover(city="taicang")] * 2), keys),
                                    partners)
    assert whole is not None and whole.reason == reason and verdicts == []


def test_a_bundle_outside_the_window_or_for_another_city_is_refused_whole(keys, partners):
    events = [handover(city="taicang")]
    assert check_message(bundle(keys, events, at=NOW - timedelta(minutes=6)),
                         partners)[0].reason == "stale"
    assert check_message(bundle(keys, events, to="baoshan"),
                         partners)[0].reason == "wrong_destination"

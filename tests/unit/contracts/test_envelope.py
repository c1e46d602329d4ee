"""Unit tests for the event envelope, the contracts registry, the lead submission schema and
the typed errors that cross RPC."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from marshmallow import Schema, ValidationError, fields
from nameko.exceptions import RemoteError, deserialize, serialize

from contracts import errors as errs
from contracts.envelope import Event, EventValidationError
from contracts.http.leads import LeadSubmissionSchema
from contracts.registry import Registry, load_all, registry

load_all()

OCCURRED = datetime(2026, 5, 1, 8, 45, 12, 345678, tzinfo=UTC)


def submitted_event() -> Event:
    data = {
        "lead_id": uuid.uuid4(),
        "city": "taicang",
        "squad": "taicang-chengxiang",
        "status": "routed",
        "origin_city": None,
        "origin_lead_id": None,
        "category": "exposed_garbage",
        "description": "垃圾堆放在路边 rubbish by the road",
        "location": {"lon": 121.1012, "lat": 31.4521},
        "address": "太仓市城厢镇",
        "occurred_at": OCCURRED,
        "evidence": [{"uri": "s3://evidence/1.jpg", "sha256": "a" * 64}],
        "camera": {"camera_id": "cam-7", "model": "hik-v2", "confidence": 0.93},
        "source_org": "Camera Co",
        "source_ref": "cam-7/000123",
    }
    return Event(type="lead.submitted", version=1, source="liandong/leads", city="taicang",
                 subject=f"lead/{data['lead_id']}", data=data,
                 time=datetime(2026, 5, 1, 8, 46, 0, 123456, tzinfo=UTC))


def rejected_event() -> Event:
    data = {
        "lead_id": uuid.uuid4(),
        "city": "jiading",
        "category": "illegal_parking",
        "decided_by": "Jiading bureau",
        "reason": "不属实 not confirmed on site",
        "origin_city": "taicang",
        "origin_lead_id": uuid.uuid4(),
    }
    return Event(type="lead.rejected", version=1, source="liandong/leads", city="jiading",
                 subject=f"lead/{data['lead_id']}", data=data)


def wire(event: Event) -> dict:
    # through JSON, as on the broker
    return json.loads(json.dumps(event.to_wire()))


# round trips ------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [submitted_event, rejected_event])
def test_to_wire_from_wire_round_trip(make):
    event = make()
    back = Event.from_wire(wire(event))
    assert back == event
    assert back.time.tzinfo is not None


def test_wire_form_is_json_with_utc_z_time():
    event = submitted_event()
    body = wire(event)
    assert set(body) == {"id", "type", "version", "source", "city", "time", "subject",
                         "trace_id", "data"}
    assert body["time"] == "2026-05-01T08:46:00.123456Z"
    assert body["data"]["lead_id"] == str(event.data["lead_id"])
    assert body["data"]["occurred_at"].startswith("2026-05-01T08:45:12.345678")
    assert body["version"] == 1 and body["type"] == "lead.submitted"


def test_non_utc_time_is_sent_as_utc():
    from datetime import timezone

    event = rejected_event()
    local = Event(**{**event.__dict__, "time": datetime(2026, 5, 1, 16, 0,
                                                         tzinfo=timezone(timedelta(hours=8)))})
    assert local.to_wire()["time"] == "2026-05-01T08:00:00Z"


def test_source_service():
    assert submitted_event().source_service == "leads"


# from_wire rejects ------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [None, [], "event", 42, b"{}"])
def test_non_dict_body_is_rejected(body):
    with pytest.raises(EventValidationError):
        Event.from_wire(body)


@pytest.mark.parametrize("missing", ["id", "type", "version", "source", "city", "time",
                                     "subject", "trace_id", "data"])
def test_missing_envelope_field_is_rejected(missing):
    body = wire(rejected_event())
    del body[missing]
    with pytest.raises(EventValidationError) as info:
        Event.from_wire(body)
    assert missing in info.value.errors


@pytest.mark.parametrize("field, value", [
    ("city", "shanghai"),
    ("id", "not-a-uuid"),
    ("version", "1"),  # strict integer
    ("version", 0),
    ("type", "LeadRejected"),
    ("source", "leads"),
    ("time", "yesterday"),
    ("subject", ""),
    ("data", "not an object"),
])
def test_bad_envelope_field_is_rejected(field, value):
    body = wire(rejected_event())
    body[field] = value
    with pytest.raises(EventValidationError) as info:
        Event.from_wire(body)
    assert field in info.value.errors


def test_naive_time_is_rejected():
    body = wire(rejected_event())
    body["time"] = "2026-05-01T08:46:00"
    with pytest.raises(EventValidationError) as info:
        Event.from_wire(body)
    assert "time" in info.value.errors


@pytest.mark.parametrize("type_, version", [("lead.exploded", 1), ("lead.rejected", 99)])
def test_unknown_type_or_version_is_rejected(type_, version):
    body = wire(rejected_event())
    body["type"], body["version"] = type_, version
    with pytest.raises(EventValidationError, match=f"{type_} v{version}"):
        Event.from_wire(body)


@pytest.mark.parametrize("missing", ["reason", "lead_id", "category", "decided_by"])
def test_missing_data_field_is_rejected(missing):
    body = wire(rejected_event())
    del body["data"][missing]
    with pytest.raises(EventValidationError) as info:
        Event.from_wire(body)
    assert missing in info.value.errors


def test_invalid_data_value_is_rejected():
    body = wire(submitted_event())
    body["data"]["location"]["lat"] = 123.0
    with pytest.raises(EventValidationError) as info:
        Event.from_wire(body)
    assert "lat" in info.value.errors["location"]


def test_naive_occurred_at_in_data_is_rejected():
    body = wire(submitted_event())
    body["data"]["occurred_at"] = "2026-05-01T08:45:12"
    with pytest.raises(EventValidationError) as info:
        Event.from_wire(body)
    assert "occurred_at" in info.value.errors


def test_unknown_envelope_field_is_rejected():
    body = wire(rejected_event())
    body["surprise"] = 1
    with pytest.raises(EventValidationError) as info:
        Event.from_wire(body)
    assert "surprise" in info.value.errors


# to_wire refuses invalid data -------------------------------------------------------------------

def test_to_wire_refuses_invalid_category():
    event = rejected_event()
    bad = Event(**{**event.__dict__, "data": {**event.data, "category": "noise"}})
    with pytest.raises(EventValidationError) as info:
        bad.to_wire()
    assert "category" in info.value.errors


def test_to_wire_refuses_missing_required_data():
    event = rejected_event()
    data = dict(event.data)
    del data["reason"]
    with pytest.raises(EventValidationError) as info:
        Event(**{**event.__dict__, "data": data}).to_wire()
    assert "reason" in info.value.errors


def test_to_wire_refuses_unknown_event():
    event = rejected_event()
    with pytest.raises(EventValidationError):
        Event(**{**event.__dict__, "type": "lead.exploded"}).to_wire()


# registry ---------------------------------------------------------------------------------------

def test_registry_refuses_the_same_type_and_version_twice():
    reg = Registry()

    @reg.event("thing.done", 1, "things", "first")
    class First(Schema):
        a = fields.String()

    with pytest.raises(ValueError, match="thing.done v1 registered twice"):
        @reg.event("thing.done", 1, "things", "second")
        class Second(Schema):
            b = fields.String()

    assert reg.contract("thing.done", 1).schema is First

    @reg.event("thing.done", 2, "things", "a new version is fine")
    class Third(Schema):
        b = fields.String()

    assert reg.latest("thing.done").schema is Third


def test_global_registry_refuses_re_registering_a_published_event():
    original = registry.contract("lead.submitted", 1)
    with pytest.raises(ValueError, match="registered twice"):
        registry.event("lead.submitted", 1, "leads", "again")(Schema)
    assert registry.contract("lead.submitted", 1) is original


def test_registry_knows_every_published_lead_event():
    types = {(c.type, c.version) for c in registry.contracts()}
    assert {("lead.submitted", 1), ("lead.merged", 1), ("lead.handed_over", 1),
            ("lead.accepted", 1), ("lead.rejected", 1)} <= types
    assert registry.contract("lead.submitted", 1).exchange == "leads.events"


def test_subscription_lookup():
    sub = registry.subscription("leads", "on_lead_handed_over")
    assert (sub.producer, sub.event_type) == ("bridge", "lead.handed_over")
    assert sub.exchange == "bridge.events"
    assert sub.queue == "evt-bridge-lead.handed_over--leads.on_lead_handed_over"


def test_subscription_for_unregistered_handler_raises_helpfully():
    with pytest.raises(LookupError) as info:
        registry.subscription("leads", "on_something_else")
    message = str(info.value)
    assert "leads.on_something_else" in message
    assert "contracts.subscriptions" in message


def test_subscribe_is_idempotent():
    reg = Registry()
    reg.subscribe("svc", "handle", "leads", "lead.submitted")
    reg.subscribe("svc", "handle", "leads", "lead.submitted")
    assert len(reg.subscriptions("svc")) == 1
    assert reg.subscriptions("other") == []


# LeadSubmissionSchema ---------------------------------------------------------------------------

def submission(**overrides) -> dict:
    body = {
        "source_ref": "cam-7/000123",
        "category": "exposed_garbage",
        "description": "垃圾",
        "location": {"lon": 121.1012, "lat": 31.4521},
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    body.update(overrides)
    return body


def test_submission_rejects_occurred_at_a_day_ahead():
    ahead = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    with pytest.raises(ValidationError) as info:
        LeadSubmissionSchema().load(submission(occurred_at=ahead))
    assert "occurred_at" in info.value.messages


def test_submission_accepts_occurred_at_a_minute_ahead():
    ahead = datetime.now(UTC) + timedelta(minutes=1)
    loaded = LeadSubmissionSchema().load(submission(occurred_at=ahead.isoformat()))
    assert loaded["occurred_at"] == ahead


def test_submission_rejects_naive_occurred_at():
    with pytest.raises(ValidationError) as info:
        LeadSubmissionSchema().load(submission(occurred_at="2026-05-01T08:00:00"))
    assert "occurred_at" in info.value.messages


def test_submission_defaults():
    loaded = LeadSubmissionSchema().load(submission())
    assert loaded["location"]["crs"] == "WGS84"
    assert loaded["evidence"] == []
    assert loaded["address"] is None and loaded["camera"] is None


def test_submission_accepts_gcj02():
    loaded = LeadSubmissionSchema().load(
        submission(location={"lon": 121.1, "lat": 31.45, "crs": "GCJ02"}))
    assert loaded["location"]["crs"] == "GCJ02"


def test_submission_rejects_bd09():
    with pytest.raises(ValidationError) as info:
        LeadSubmissionSchema().load(
            submission(location={"lon": 121.1, "lat": 31.45, "crs": "BD09"}))
    assert "crs" in info.value.messages["location"]


@pytest.mark.parametrize("field", ["source_ref", "category", "description", "location",
                                   "occurred_at"])
def test_submission_requires(field):
    body = submission()
    del body[field]
    with pytest.raises(ValidationError) as info:
        LeadSubmissionSchema().load(body)
    assert field in info.value.messages


# typed errors over RPC --------------------------------------------------------------------------

@pytest.mark.parametrize("cls", errs.EXPECTED_ERRORS)
def test_typed_error_survives_nameko_serialisation(cls):
    original = cls("lead 42 不存在", {"lead_id": ["unknown 未知"]})
    data = json.loads(json.dumps(serialize(original)))  # as it travels in an RPC reply
    back = deserialize(copy.deepcopy(data))
    assert type(back) is cls
    assert not isinstance(back, RemoteError)
    assert back.detail == "lead 42 不存在"
    assert back.errors == {"lead_id": ["unknown 未知"]}
    assert str(back) == "lead 42 不存在"


def test_typed_error_without_field_errors_survives():
    back = deserialize(json.loads(json.dumps(serialize(errs.Conflict("already decided")))))
    assert type(back) is errs.Conflict
    assert back.errors == {}


def test_untyped_error_becomes_remote_error():
    back = deserialize(serialize(RuntimeError("boom")))
    assert isinstance(back, RemoteError)

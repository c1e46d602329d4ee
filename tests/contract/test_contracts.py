"""Contract checks of the generated event schemas, AsyncAPI, OpenAPI and broker definitions.

Offline: no broker, no database. When a check about generated files fails, run `make contracts`
(`python -m contracts.generate`) and commit the result; when a published schema has a breaking
change, register a new version of the event instead of changing the published one.
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from contracts import generate
from contracts.compat import breaking_changes
from contracts.envelope import Event
from contracts.registry import load_all

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = load_all()
CONTRACTS = REGISTRY.contracts()
SUBSCRIPTIONS = REGISTRY.subscriptions()
PUBLISHED = sorted(generate.PUBLISHED_DIR.glob("*.json"))


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def contract_id(contract) -> str:
    return f"{contract.type}.v{contract.version}"


# (a) generated files are current ----------------------------------------------------------

def test_generated_contracts_are_current():
    problems = generate.stale()
    assert not problems, (
        "Generated contract files are stale; run `make contracts` and commit the result:\n  "
        + "\n  ".join(problems)
    )


def test_generation_does_not_depend_on_the_environment(monkeypatch):
    owned, _ = generate.outputs()
    monkeypatch.setenv("QUEUE_TYPE", "quorum")
    monkeypatch.setenv("RETRY_DELAYS_MS", "1,2,3,4")
    again, _ = generate.outputs()
    assert again == owned


# (b) published versions stay compatible ---------------------------------------------------

@pytest.mark.parametrize("published", PUBLISHED, ids=lambda p: p.stem)
def test_published_schema_has_compatible_current_schema(published):
    current = generate.SCHEMAS_DIR / published.name
    assert current.exists(), (
        f"{published.stem} was published but is no longer registered: published versions "
        "must stay registered (add a new version beside it instead)"
    )
    problems = breaking_changes(load_json(published), load_json(current))
    assert not problems, (
        f"{published.stem} changed incompatibly since it was published; register a new "
        "version of the event instead:\n  " + "\n  ".join(problems)
    )


def test_every_registered_contract_is_published():
    names = {p.name for p in PUBLISHED}
    missing = [contract_id(c) for c in CONTRACTS
               if generate.schema_file_name(c.type, c.version) not in names]
    assert not missing, f"not published (run `make contracts`): {missing}"


# (c) breaking_changes on small schemas ----------------------------------------------------

BASE = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "data": {
            "type": "object",
            "properties": {
                "status": {"type": "string", "enum": ["routed", "handed_over"]},
                "count": {"type": "integer"},
                "note": {"type": ["string", "null"]},
                "location": {"$ref": "#/$defs/Point"},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["status", "location"],
            "additionalProperties": False,
        },
    },
    "required": ["id", "data"],
    "$defs": {
        "Point": {
            "type": "object",
            "properties": {"lon": {"type": "number"}, "lat": {"type": "number"}},
            "required": ["lon", "lat"],
        }
    },
}


def changed(edit) -> dict:
    schema = copy.deepcopy(BASE)
    edit(schema)
    return schema


def test_identical_schemas_have_no_breaking_changes():
    assert breaking_changes(BASE, copy.deepcopy(BASE)) == []


def test_removed_field_is_breaking():
    current = changed(lambda s: s["properties"]["data"]["properties"].pop("count"))
    assert breaking_changes(BASE, current) == ["data.count: removed"]


def test_retyped_field_is_breaking():
    current = changed(lambda s: s["properties"]["data"]["properties"]["count"].update(
        type="string"))
    assert breaking_changes(BASE, current) == ["data.count: type changed integer → string"]


def test_retyped_field_behind_a_ref_is_breaking():
    current = changed(lambda s: s["$defs"]["Point"]["properties"]["lon"].update(type="string"))
    assert breaking_changes(BASE, current) == ["data.location.lon: type changed number → string"]


def test_changed_format_is_breaking():
    current = changed(lambda s: s["properties"]["id"].update(format="date-time"))
    assert breaking_changes(BASE, current) == ["id: format changed uuid → date-time"]


def test_new_required_field_is_breaking():
    def edit(s):
        s["properties"]["data"]["properties"]["squad"] = {"type": "string"}
        s["properties"]["data"]["required"].append("squad")

    assert breaking_changes(BASE, changed(edit)) == ["data.squad: newly required"]


def test_optional_field_becoming_required_is_breaking():
    current = changed(lambda s: s["properties"]["data"]["required"].append("count"))
    assert breaking_changes(BASE, current) == ["data.count: newly required"]


def test_narrowed_enum_is_breaking():
    current = changed(lambda s: s["properties"]["data"]["properties"]["status"].update(
        enum=["routed"]))
    assert breaking_changes(BASE, current) == ["data.status: enum narrowed, removed 'handed_over'"]


def test_widened_enum_is_not_breaking():
    current = changed(lambda s: s["properties"]["data"]["properties"]["status"]["enum"].append(
        "merged"))
    assert breaking_changes(BASE, current) == []


def test_field_becoming_non_nullable_is_breaking():
    current = changed(lambda s: s["properties"]["data"]["properties"]["note"].update(
        type="string"))
    assert breaking_changes(BASE, current) == ["data.note: no longer nullable"]


def test_nested_field_becoming_non_nullable_via_any_of_is_breaking():
    published = changed(lambda s: s["properties"]["data"]["properties"].update(
        location={"anyOf": [{"$ref": "#/$defs/Point"}, {"type": "null"}]}))
    assert breaking_changes(published, BASE) == ["data.location: no longer nullable"]


def test_retyped_array_items_are_breaking():
    current = changed(lambda s: s["properties"]["data"]["properties"]["tags"].update(
        items={"type": "integer"}))
    assert breaking_changes(BASE, current) == ["data.tags[]: type changed string → integer"]


def test_added_optional_field_is_not_breaking():
    current = changed(lambda s: s["properties"]["data"]["properties"].update(
        reason={"type": ["string", "null"], "default": None}))
    assert breaking_changes(BASE, current) == []


def test_becoming_nullable_is_not_breaking():
    current = changed(lambda s: s["properties"]["data"]["properties"]["count"].update(
        type=["integer", "null"]))
    assert breaking_changes(BASE, current) == []


def test_several_changes_are_all_reported():
    def edit(s):
        s["properties"]["data"]["properties"].pop("count")
        s["properties"]["data"]["properties"]["status"]["enum"] = ["routed"]
        s["$defs"]["Point"]["properties"]["lat"]["type"] = "string"

    assert sorted(breaking_changes(BASE, changed(edit))) == [
        "data.count: removed",
        "data.location.lat: type changed number → string",
        "data.status: enum narrowed, removed 'handed_over'",
    ]


def test_generated_schema_with_a_removed_data_field_is_breaking():
    published = load_json(generate.SCHEMAS_DIR / "lead.submitted.v1.json")
    current = copy.deepcopy(published)
    del current["properties"]["data"]["properties"]["address"]
    current["$defs"]["Point"]["properties"]["lon"]["type"] = "string"
    assert sorted(breaking_changes(published, current)) == [
        "data.address: removed", "data.location.lon: type changed number → string"]


# (d) generated schemas validate real events -----------------------------------------------

LEAD_ID = uuid.UUID("7c1e7c52-2f0e-4c0a-9d53-1b3a4c1f0a01")
OTHER_LEAD_ID = uuid.UUID("0b9f7a35-64a1-4d8e-8f4e-6b2a0c9d1e02")
OCCURRED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
POINT = {"lon": 121.1101, "lat": 31.4577}  # central Taicang

LEAD_BODY = {
    "category": "illegal_parking",
    "description": "车辆违停: a van parked across the cycle lane on Shanghai East Road",
    "location": POINT,
    "address": "太仓市上海东路 88 号",
    "occurred_at": OCCURRED,
    "evidence": [{"uri": "s3://evidence/taicang/2026/03/02/cam-0042.jpg", "sha256": "a" * 64}],
    "camera": {"camera_id": "TC-CAM-0042", "model": "DS-2CD7A47", "confidence": 0.93},
    "source_org": "taicang-camera-ops",
    "source_ref": "CAM-20260302-0001",
}

EXAMPLES: dict[tuple[str, int], dict[str, Any]] = {
    ("lead.submitted", 1): {
        **LEAD_BODY, "lead_id": LEAD_ID, "city": "taicang", "squad": "taicang-chengxiang",
        "status": "routed", "origin_city": None, "origin_lead_id": None,
    },
    ("lead.merged", 1): {
        "lead_id": LEAD_ID, "duplicate_of": OTHER_LEAD_ID, "category": "illegal_parking",
        "distance_m": 12.5, "source_org": "taicang-camera-ops",
    },
    ("lead.handed_over", 1): {
        **LEAD_BODY, "lead_id": LEAD_ID, "from_city": "taicang", "to_city": "kunshan",
        "submitted_at": OCCURRED,
    },
    ("lead.accepted", 1): {
        "lead_id": LEAD_ID, "city": "kunshan", "squad": None, "category": "illegal_parking",
        "location": POINT, "description": "车辆违停", "occurred_at": OCCURRED,
        "decided_by": "kunshan-bureau", "reason": None, "origin_city": "taicang",
        "origin_lead_id": OTHER_LEAD_ID,
    },
    ("lead.rejected", 1): {
        "lead_id": LEAD_ID, "city": "kunshan", "category": "illegal_parking",
        "decided_by": "kunshan-bureau", "reason": "outside our jurisdiction 不在辖区",
        "origin_city": None, "origin_lead_id": None,
    },
    ("lead.handover_overdue", 1): {
        "lead_id": LEAD_ID, "city": "jiading", "origin_city": "taicang",
        "origin_lead_id": uuid.UUID("0f3c1e2d-4b5a-4c6d-8e7f-9a0b1c2d3e4f"),
        "category": "illegal_dumping", "squad": "jiading-waigang", "level": 1,
        "kind": "reminder", "received_at": datetime(2026, 11, 26, 1, 0, tzinfo=UTC),
        "limit_minutes": 240,
    },
}

# Cases (案件指派) and supervision (限时督办): a handed-over lead's case, walked through its steps.
CASE_ID = uuid.UUID("5d0c2f1e-8b7a-4c3d-9e2f-0a1b2c3d4e05")
STEP_AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CASE_SNAPSHOT = {
    "case_id": CASE_ID, "case_no": "TC-2026-000123", "version": 3, "city": "taicang",
    "category": "illegal_parking", "status": "in_progress", "squad": "taicang-chengxiang",
    "town": "城厢镇", "lead_id": LEAD_ID, "origin_city": "kunshan",
    "origin_lead_id": OTHER_LEAD_ID, "opened_at": OCCURRED, "closed_at": None,
    "close_mode": None,
    "assignments": [{"n": 1, "squad": "taicang-chengxiang", "town": "城厢镇", "kind": "auto",
                     "at": OCCURRED, "accepted_at": STEP_AT}],
    "rounds": [{"round": 1, "squad": "taicang-chengxiang", "started_at": STEP_AT,
                "rectified_at": None, "evaluated_at": None, "passed": None,
                "cancelled_at": None}],
    "holds": [{"since": STEP_AT, "until": None, "party": "交警大队 traffic police"}],
}
CASE_EVENT = {
    "case_id": CASE_ID, "case_no": "TC-2026-000123", "lead_id": LEAD_ID, "city": "taicang",
    "category": "illegal_parking", "status": "in_progress", "squad": "taicang-chengxiang",
    "origin_city": "kunshan", "origin_lead_id": OTHER_LEAD_ID,
    "actor": "城厢镇中队 Chengxiang Squad", "at": STEP_AT, "case": CASE_SNAPSHOT,
}
EVIDENCE = [{"uri": "s3://evidence/taicang/2026/03/02/after.jpg", "sha256": "b" * 64}]
SUPERVISION = {"case_id": CASE_ID, "case_no": "TC-2026-000123", "squad": "taicang-chengxiang",
               "origin_city": "kunshan"}

EXAMPLES.update({
    ("case.opened", 1): {**CASE_EVENT, "status": "assigned",
                         "assignment_reason": "zone taicang-chengxiang: fewest open cases"},
    ("case.assigned", 1): {**CASE_EVENT, "kind": "transferred",
                           "from_squad": "taicang-shaxi", "reason": "属城厢镇辖区"},
    ("case.accepted", 1): {**CASE_EVENT, "note": None},
    ("case.rectified", 1): {**CASE_EVENT, "status": "rectified", "round": 1,
                            "summary": "车辆已驶离", "evidence": EVIDENCE, "penalty": {
                                "decision": "no_penalty", "rule_id": "illegal_parking.first-minor",
                                "min_yuan": 0, "max_yuan": 0, "suggested_yuan": 0,
                                "explanation": "首违不罚", "rules_version": "demo-2026-1"}},
    ("case.evaluated", 1): {**CASE_EVENT, "round": 1, "result": "fail",
                            "comment": "仍有车辆违停"},
    ("case.held", 1): {**CASE_EVENT, "party": "交警大队 traffic police", "reason": "需交警拖车"},
    ("case.resumed", 1): {**CASE_EVENT, "note": "拖车完成"},
    ("case.closed", 1): {**CASE_EVENT, "status": "closed", "mode": "evaluated",
                         "summary": "整改合格", "evidence": EVIDENCE},
    ("evidence.anchored", 1): {"city": "taicang", "seq": 4821, "hash": "c" * 64,
                               "previous_seq": 4790, "at": STEP_AT,
                               "algorithm": "sha256 over canonical JSON"},
    ("supervision.deadline_set", 1): {
        **SUPERVISION, "deadline_id": 77, "kind": "disposal", "seq": 1, "started_at": STEP_AT,
        "limit": "1 working_days", "limit_hours": 7.5, "due_at": None, "remind_at": None,
        "reason": "paused"},
    ("supervision.notice_issued", 1): {
        **SUPERVISION, "notice_id": 501, "deadline_id": 77, "deadline_kind": "disposal",
        "kind": "order", "level": 1, "title": "督办单 Supervision order",
        "recipient": "squad 中队", "town": "城厢镇", "issued_at": STEP_AT, "due_at": STEP_AT},
    ("supervision.deadline_closed", 1): {
        **SUPERVISION, "deadline_id": 77, "kind": "disposal", "seq": 1, "outcome": "met",
        "ended_at": STEP_AT, "due_at": OCCURRED, "late": True, "working_hours": 9.25},
    ("supervision.order_answered", 1): {
        **SUPERVISION, "notice_id": 501, "actor": "城厢镇中队", "at": STEP_AT,
        "text": "已增派人手", "evidence": EVIDENCE},
    ("supervision.order_evaluated", 1): {
        **SUPERVISION, "notice_id": 501, "actor": "督查科", "at": STEP_AT,
        "result": "unsatisfactory", "comment": "请说明完成时间"},
})


# Transport (渣土运输): a Kunshan permit, and an alert raised in Taicang.
SQUARE = {"type": "Polygon", "coordinates": [[[120.98, 31.38], [120.99, 31.38], [120.99, 31.39],
                                              [120.98, 31.39], [120.98, 31.38]]]}
EXAMPLES.update({
    ("transport.permit_issued", 1): {
        "permit_id": "KS-2026-0042", "plate": "苏E12345",
        "origin": {"id": "ks-site-1", "name": "昆山工地", "kind": "construction",
                   "polygon": SQUARE},
        "disposal": {"id": "tc-disp-1", "name": "太仓消纳场", "kind": "disposal",
                     "polygon": SQUARE},
        "corridor": [[120.99, 31.39], [121.12, 31.49]], "width_m": 40.0,
        "windows": ["22:00-05:00"], "valid_from": date(2026, 11, 1),
        "valid_to": date(2026, 11, 30), "issuing_city": "kunshan", "may_enter": ["taicang"],
        "status": "active"},
    ("transport.alert_raised", 1): {
        "alert_id": OTHER_LEAD_ID, "kind": "unapproved_stop", "plate": "苏E12345",
        "permit_id": "KS-2026-0042", "permit_city": "kunshan", "city": "taicang",
        "raised_by": "taicang", "at": STEP_AT, "started_at": OCCURRED, "location": POINT,
        "detail": {"minutes": 8.0}, "evidence": [
            {"ts": OCCURRED, "lon": 121.1, "lat": 31.45, "speed_kmh": 0.0}]},
})


# Joint operations (联合整治): Taicang's zero-hour action with Jiading and Baoshan.
OPERATION_ID = "7c3f6b0e-2a44-4d7e-9a55-3c1f0b9d2e11"
VIOLATION_ID = "0b9e1c52-5d7a-4c1e-8f0a-6b7d3e2c9a10"
CHECKPOINT = {"code": "CP1", "name": "浏河收费站 Liuhe toll gate", "location": POINT,
              "starts_at": STEP_AT, "ends_at": STEP_AT, "teams_needed": 2}
TEAM = {"name": "嘉定一中队", "checkpoint": "CP1", "people": 6, "vehicles": 2,
        "leader": "王队长", "contact": None}
PLAN = {"operation_id": OPERATION_ID, "name": "太嘉边界零点行动", "kind": "zero_hour",
        "lead_city": "taicang", "coordinator": "太仓市城管局 (org-1)",
        "partners": ["jiading", "baoshan"], "starts_at": OCCURRED, "ends_at": STEP_AT,
        "area": SQUARE, "area_spec": {"border": {"cities": ["taicang", "jiading"],
                                                 "buffer_m": 2000}},
        "categories": ["construction_waste"], "checkpoints": [CHECKPOINT],
        "briefing": "夜间渣土车专项检查", "status": "invited", "revision": 1}
EXAMPLES.update({
    ("jointops.operation_published", 1): {**PLAN, "change": "invited",
                                          "short_checkpoints": ["CP1"]},
    ("jointops.invitation_answered", 1): {
        "operation_id": OPERATION_ID, "lead_city": "taicang", "city": "jiading",
        "decision": "accept", "teams": [TEAM], "note": None, "answered_by": "嘉定区城管局",
        "answered_at": STEP_AT, "revision": 1},
    ("jointops.report_filed", 1): {
        "operation_id": OPERATION_ID, "lead_city": "taicang", "report_id": OTHER_LEAD_ID,
        "city": "jiading", "checkpoint": "CP1", "team": "嘉定一中队",
        "period_from": OCCURRED, "period_to": STEP_AT, "vehicles_checked": 14,
        "violations": [{"violation_id": VIOLATION_ID, "plate": "沪D12345",
                        "category": "construction_waste", "location": POINT,
                        "city": "taicang", "address": None, "description": "未密闭运输",
                        "occurred_at": OCCURRED, "evidence": EVIDENCE}],
        "note": None, "filed_by": "嘉定区城管局", "filed_at": STEP_AT},
    ("jointops.violation_updated", 1): {
        "operation_id": OPERATION_ID, "lead_city": "taicang", "violation_id": VIOLATION_ID,
        "reported_by": "jiading", "state": "case_opened", "lead_id": LEAD_ID,
        "handled_by": "taicang", "case_no": "TC-2026-000042", "at": STEP_AT},
    ("jointops.alert_attached", 1): {
        "operation_id": OPERATION_ID, "lead_city": "taicang", "city": "jiading",
        "alert_id": OTHER_LEAD_ID, "kind": "unapproved_stop", "plate": "沪D12345",
        "location": POINT, "at": STEP_AT, "permit_id": None},
})

def example_event(contract) -> dict[str, Any]:
    data = EXAMPLES.get((contract.type, contract.version))
    if data is None:
        pytest.fail(f"add an example of {contract_id(contract)} to EXAMPLES in {__file__}")
    return Event(
        type=contract.type, version=contract.version, source=f"taicang/{contract.producer}",
        city="taicang", subject=str(LEAD_ID), data=data,
    ).to_wire()


def validator_for(contract) -> Draft202012Validator:
    schema = load_json(generate.SCHEMAS_DIR / generate.schema_file_name(contract.type,
                                                                        contract.version))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.mark.parametrize("contract", CONTRACTS, ids=contract_id)
def test_generated_schema_validates_a_real_event(contract):
    validator = validator_for(contract)
    wire = json.loads(json.dumps(example_event(contract)))  # exactly what travels
    errors = [e.message for e in validator.iter_errors(wire)]
    assert not errors, errors


@pytest.mark.parametrize("contract", CONTRACTS, ids=contract_id)
def test_generated_schema_rejects_an_event_missing_a_required_field(contract):
    validator = validator_for(contract)
    wire = json.loads(json.dumps(example_event(contract)))
    required = validator.schema["properties"]["data"]["required"]
    assert required, f"{contract_id(contract)} has no required data fields"
    for name in required:
        broken = copy.deepcopy(wire)
        del broken["data"][name]
        assert not validator.is_valid(broken), f"accepted {contract_id(contract)} without {name}"
    for name in ("id", "type", "time", "data"):
        broken = copy.deepcopy(wire)
        del broken[name]
        assert not validator.is_valid(broken), f"accepted {contract_id(contract)} without {name}"


@pytest.mark.parametrize("contract", CONTRACTS, ids=contract_id)
def test_generated_schema_pins_type_and_version(contract):
    validator = validator_for(contract)
    wire = json.loads(json.dumps(example_event(contract)))
    assert not validator.is_valid({**wire, "type": "lead.other"})
    assert not validator.is_valid({**wire, "version": contract.version + 1})
    assert not validator.is_valid({**wire, "city": "shanghai"})


# (e) AsyncAPI --------------------------------------------------------------------------------

ASYNCAPI = load_json(generate.ASYNCAPI_FILE)


def resolve(doc: dict, ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs_in(node: Any):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs_in(item)


def test_asyncapi_header():
    assert ASYNCAPI["asyncapi"] == "2.6.0"
    assert ASYNCAPI["info"]["title"] == "Liandong 联动 events"
    assert ASYNCAPI["defaultContentType"] == "application/json"


@pytest.mark.parametrize("contract", CONTRACTS, ids=contract_id)
def test_asyncapi_has_a_channel_per_contract(contract):
    channel = ASYNCAPI["channels"].get(f"{contract.exchange}/{contract.type}")
    assert channel is not None, f"no channel for {contract_id(contract)}"
    amqp = channel["bindings"]["amqp"]
    assert amqp["exchange"] == {"name": contract.exchange, "type": "topic", "durable": True,
                                "autoDelete": False}
    assert channel["subscribe"]["bindings"]["amqp"]["cc"] == [contract.type]
    message = channel["subscribe"]["message"]
    refs = [m["$ref"] for m in message.get("oneOf", [message])]
    ref = f"#/components/messages/{generate.message_name(contract.type, contract.version)}"
    assert ref in refs
    payload = resolve(ASYNCAPI, ref)["payload"]
    assert payload["properties"]["type"]["const"] == contract.type
    assert "$schema" not in payload and "$id" not in payload


def test_asyncapi_subscribers_match_the_registry():
    listed = {
        (channel_name, s["handler"], s["queue"])
        for channel_name, channel in ASYNCAPI["channels"].items()
        for s in channel["x-subscribers"]
    }
    expected = {
        (f"{s.exchange}/{s.event_type}", f"{s.service}.{s.method}", s.queue)
        for s in SUBSCRIPTIONS
    }
    assert listed == expected


def test_asyncapi_refs_resolve():
    for ref in refs_in(ASYNCAPI):
        resolve(ASYNCAPI, ref)


# (f) OpenAPI ---------------------------------------------------------------------------------

OPENAPI = load_json(generate.OPENAPI_FILE)
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def test_openapi_is_valid_3_1():
    from openapi_spec_validator import validate

    assert OPENAPI["openapi"].startswith("3.1")
    validate(OPENAPI)


def test_openapi_operations_with_a_body_answer_422_as_problem_json():
    checked = 0
    for path, item in OPENAPI["paths"].items():
        for method, op in item.items():
            if method not in METHODS or "requestBody" not in op:
                continue
            checked += 1
            response = op["responses"].get("422")
            assert response is not None, f"{method.upper()} {path}: no 422 response"
            assert "application/problem+json" in response.get("content", {}), (
                f"{method.upper()} {path}: 422 is not application/problem+json")
    assert checked, "no operation with a request body"


# (g) subscriptions ---------------------------------------------------------------------------

@pytest.mark.parametrize("sub", SUBSCRIPTIONS, ids=lambda s: f"{s.service}.{s.method}")
def test_subscription_refers_to_a_registered_event_type(sub):
    types = {c.type for c in CONTRACTS}
    assert sub.event_type in types, (
        f"{sub.service}.{sub.method} subscribes to unregistered event type {sub.event_type}")


# (h) broker definitions ----------------------------------------------------------------------

DEFINITIONS = load_json(generate.DEFINITIONS_FILE)


def test_definitions_cover_the_five_city_vhosts():
    assert [v["name"] for v in DEFINITIONS["vhosts"]] == list(generate.VHOSTS)
    assert "_comment" not in DEFINITIONS
    for key in ("exchanges", "queues", "bindings", "policies"):
        assert {item["vhost"] for item in DEFINITIONS[key]} == set(generate.VHOSTS), key


@pytest.mark.parametrize("vhost", generate.VHOSTS)
@pytest.mark.parametrize("sub", SUBSCRIPTIONS, ids=lambda s: f"{s.service}.{s.method}")
def test_definitions_declare_each_subscription_with_retry_and_parking(vhost, sub):
    queues = {q["name"]: q for q in DEFINITIONS["queues"] if q["vhost"] == vhost}
    exchanges = {e["name"]: e for e in DEFINITIONS["exchanges"] if e["vhost"] == vhost}
    bindings = [b for b in DEFINITIONS["bindings"] if b["vhost"] == vhost]

    assert sub.queue in queues, f"{vhost}: no queue {sub.queue}"
    assert queues[sub.queue]["durable"]
    assert exchanges[sub.exchange]["type"] == "topic"
    assert {"source": sub.exchange, "vhost": vhost, "destination": sub.queue,
            "destination_type": "queue", "routing_key": sub.event_type,
            "arguments": {}} in bindings
    assert f"{sub.queue}.parked" in queues, f"{vhost}: no parking queue for {sub.queue}"

    retries = sorted(name for name in queues if name.startswith(f"{sub.queue}.retry."))
    assert retries, f"{vhost}: no retry queue for {sub.queue}"
    for name in retries:
        args = queues[name]["arguments"]
        assert args["x-dead-letter-exchange"] == ""
        assert args["x-dead-letter-routing-key"] == sub.queue, f"{name} does not lead back"
        assert args["x-message-ttl"] > 0

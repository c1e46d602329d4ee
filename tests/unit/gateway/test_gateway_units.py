"""Unit tests for the gateway's problem details, API keys, key cache, body reading, validation
and route conversion. No broker, no database, no HTTP server."""

from __future__ import annotations

import json
from types import SimpleNamespace

import nameko
import pytest
from marshmallow import Schema, fields
from nameko.exceptions import RemoteError
from werkzeug.test import EnvironBuilder

from contracts.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    OutsideJurisdiction,
)
from contracts.http.leads import DecisionSchema
from services.gateway import keys, problems
from services.gateway.api import Operation, _validate, read_json
from services.gateway.problems import Problem

# problems ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls, status, kind", [
    (InvalidInput, 422, "invalid-input"),
    (OutsideJurisdiction, 422, "outside-jurisdiction"),
    (NotFound, 404, "not-found"),
    (Forbidden, 403, "forbidden"),
    (Conflict, 409, "conflict"),
])
def test_domain_errors_map_to_their_status_and_type(cls, status, kind):
    problem = problems.from_exception(cls("it went wrong", {"field": ["bad"]}))
    assert (problem.status, problem.kind) == (status, kind)
    assert problem.detail == "it went wrong"
    assert problem.errors == {"field": ["bad"]}


def test_every_expected_error_is_mapped():
    from contracts.errors import EXPECTED_ERRORS

    assert set(problems.MAPPED_ERRORS) == set(EXPECTED_ERRORS)


@pytest.mark.parametrize("exc", [
    RuntimeError("password=hunter2 at db:5432"),
    KeyError("x"),
    RemoteError("OperationalError", "password=hunter2"),
    DomainError("an unmapped domain error"),
])
def test_unknown_errors_are_503_never_500_and_do_not_leak(exc):
    problem = problems.from_exception(exc)
    assert problem.status == 503
    assert problem.kind == "unavailable"
    assert "hunter2" not in problem.detail and "hunter2" not in problem.title
    assert problem.errors == {}


def test_a_problem_passes_through_unchanged():
    p = Problem(429, "rate-limited", "Too many", headers={"Retry-After": "3"})
    assert problems.from_exception(p) is p


def test_response_is_problem_json_with_unescaped_chinese():
    problem = problems.from_exception(InvalidInput("位置无效", {"location": ["不在辖区"]}))
    resp = problems.response(problem, trace_id="trace-123456", instance="/api/v1/leads")
    assert resp.status_code == 422
    assert resp.mimetype == "application/problem+json"
    assert "charset=utf-8" in resp.content_type
    text = resp.get_data(as_text=True)
    assert "输入无效" in text and "位置无效" in text and "不在辖区" in text
    assert "\\u" not in text
    body = json.loads(text)
    assert body == {
        "type": problems.PROBLEM_BASE + "invalid-input",
        "title": "Invalid input 输入无效",
        "status": 422,
        "detail": "位置无效",
        "errors": {"location": ["不在辖区"]},
        "instance": "/api/v1/leads",
        "trace_id": "trace-123456",
    }


def test_response_omits_empty_members_and_keeps_headers():
    resp = problems.response(Problem(413, "too-large", "Too large", headers={"Retry-After": "5"}))
    body = json.loads(resp.get_data(as_text=True))
    assert set(body) == {"type", "title", "status"}
    assert resp.headers["Retry-After"] == "5"


# keys -------------------------------------------------------------------------------------------

def test_hash_key_is_deterministic_peppered_and_not_the_key():
    key = keys.new_key("taicang")
    h = keys.hash_key(key, "pepper-1")
    assert h == keys.hash_key(key, "pepper-1")
    assert h != keys.hash_key(key, "pepper-2")
    assert h != keys.hash_key(key + "x", "pepper-1")
    assert key not in h and h != key
    assert len(h) == 64 and int(h, 16) >= 0  # hex SHA-256


def test_new_key_is_unique_and_prefixed_with_the_city():
    made = [keys.new_key("jiading") for _ in range(200)]
    assert len(set(made)) == 200
    assert all(k.startswith("ld_jiading_") for k in made)
    assert all(len(k) > len("ld_jiading_") + 32 for k in made)


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(keys, "time", SimpleNamespace(monotonic=lambda: now[0]))
    return now


def test_key_cache_hit_within_ttl_and_miss_after(clock):
    cache = keys.KeyCache(ttl=10)
    identity = {"org_id": "o1", "roles": ["source"]}
    assert cache.get("h1") == (None, False)
    cache.put("h1", identity)
    assert cache.get("h1") == (identity, True)
    clock[0] += 9.9
    assert cache.get("h1") == (identity, True)
    clock[0] += 0.2
    assert cache.get("h1") == (None, False)


def test_key_cache_remembers_unknown_keys_too(clock):
    cache = keys.KeyCache(ttl=5)
    cache.put("unknown", None)
    assert cache.get("unknown") == (None, True)  # a known miss: no database look-up
    clock[0] += 6
    assert cache.get("unknown") == (None, False)


def test_key_cache_put_refreshes_expiry(clock):
    cache = keys.KeyCache(ttl=5)
    cache.put("h", {"org_id": "a"})
    clock[0] += 4
    cache.put("h", {"org_id": "b"})
    clock[0] += 4
    assert cache.get("h") == ({"org_id": "b"}, True)


# read_json --------------------------------------------------------------------------------------

def request(data, content_type="application/json"):
    return EnvironBuilder(method="POST", path="/api/v1/leads", data=data,
                          content_type=content_type).get_request()


def test_valid_object_is_returned():
    assert read_json(request(json.dumps({"a": 1, "名": "值"}).encode())) == {"a": 1, "名": "值"}


@pytest.mark.parametrize("ctype", ["application/json; charset=utf-8",
                                   "application/problem+json", "application/merge-patch+json"])
def test_json_content_types_are_accepted(ctype):
    assert read_json(request(b'{"a": 1}', ctype)) == {"a": 1}


def test_over_limit_content_length_is_413():
    with nameko.config.patch({"MAX_BODY_BYTES": 10}):
        with pytest.raises(Problem) as info:
            read_json(request(b'{"a": "0123456789"}'))
        assert info.value.status == 413
        assert read_json(request(b'{"a": 1}')) == {"a": 1}  # 8 bytes: fine


def test_over_limit_body_without_content_length_is_413():
    builder = EnvironBuilder(method="POST", data=b'{"a": "0123456789"}',
                             content_type="application/json")
    environ = builder.get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True  # chunked: the server marks the end of the body
    from werkzeug.wrappers import Request

    with nameko.config.patch({"MAX_BODY_BYTES": 10}):
        with pytest.raises(Problem) as info:
            read_json(Request(environ))
    assert info.value.status == 413


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded",
                                   "application/xml"])
def test_wrong_content_type_is_415(ctype):
    with pytest.raises(Problem) as info:
        read_json(request(b'{"a": 1}', ctype))
    assert info.value.status == 415


@pytest.mark.parametrize("data", [b"{not json", b"", b'{"a": 1', b"\xff\xfe"])
def test_invalid_json_is_400(data):
    with pytest.raises(Problem) as info:
        read_json(request(data))
    assert info.value.status == 400
    assert info.value.kind == "malformed-json"


@pytest.mark.parametrize("data", [b"[1, 2]", b'"text"', b"42", b"null"])
def test_json_that_is_not_an_object_is_400(data):
    with pytest.raises(Problem) as info:
        read_json(request(data))
    assert info.value.status == 400


# _validate --------------------------------------------------------------------------------------

def test_validate_returns_loaded_data():
    assert _validate(DecisionSchema, {"decision": "accept"}, "body") == {
        "decision": "accept", "reason": None}


def test_validate_maps_errors_to_422_with_field_errors():
    with pytest.raises(Problem) as info:
        _validate(DecisionSchema, {"decision": "maybe"}, "body")
    assert info.value.status == 422
    assert info.value.kind == "invalid-input"
    assert "decision" in info.value.errors
    assert "body" in info.value.detail


def test_validate_rejects_unknown_fields():
    class Small(Schema):
        a = fields.Integer()

    with pytest.raises(Problem) as info:
        _validate(Small, {"a": 1, "b": 2}, "query")
    assert "b" in info.value.errors


# Operation.rule ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path, rule", [
    ("/api/v1/leads/{lead_id}/decision", "/api/v1/leads/<lead_id>/decision"),
    ("/api/v1/leads", "/api/v1/leads"),
    ("/api/v1/a/{x}/b/{y_2}", "/api/v1/a/<x>/b/<y_2>"),
])
def test_operation_rule(path, rule):
    assert Operation("GET", path, "summary", None).rule == rule

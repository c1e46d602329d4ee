"""Every bad input gets a clear problem+json answer, and nothing is stored or published."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from support import OUTSIDE, ApiClient, lead_body, unique_point

pytestmark = pytest.mark.integration


def _count(platform) -> int:
    return platform.scalar("taicang", "SELECT count(*) FROM leads.leads")


def _outbox(platform) -> int:
    return platform.scalar("taicang", "SELECT count(*) FROM leads.outbox")


def _body(**changes):
    body = lead_body(point=unique_point())
    for key, value in changes.items():
        if value is _DELETE:
            body.pop(key)
        else:
            body[key] = value
    return body


_DELETE = object()
HUGE = "垃" * 400_000  # 1.2 MB in UTF-8

CASES = {
    # name: (request kwargs, status, problem type suffix, field expected in errors)
    "malformed json": (dict(data=b'{"category": "exposed_garbage",',
                            headers={"Content-Type": "application/json"}),
                       400, "malformed-json", None),
    "not an object": (dict(json=[1, 2, 3]), 400, "malformed-json", None),
    "not json at all": (dict(data=b"category=exposed_garbage",
                             headers={"Content-Type": "application/x-www-form-urlencoded"}),
                        415, "unsupported-media-type", None),
    "wrong types": (dict(json=_body(description=12, location={"lon": "east", "lat": 31.4})),
                    422, "invalid-input", "description"),
    "unknown category": (dict(json=_body(category="noise")), 422, "invalid-input", "category"),
    "missing fields": (dict(json=_body(category=_DELETE, occurred_at=_DELETE)), 422,
                       "invalid-input", "occurred_at"),
    "latitude out of range": (dict(json=_body(location={"lon": 121.1, "lat": 131.4})), 422,
                              "invalid-input", "location"),
    "unknown crs": (dict(json=_body(location={"lon": 121.1, "lat": 31.4, "crs": "BD09"})), 422,
                    "invalid-input", "location"),
    "outside the five cities": (dict(json=_body(location={"lon": OUTSIDE[0],
                                                          "lat": OUTSIDE[1]})),
                                422, "outside-jurisdiction", "location"),
    "in the future": (dict(json=_body(occurred_at=(datetime.now(UTC) + timedelta(days=1))
                                      .isoformat())), 422, "invalid-input", "occurred_at"),
    "naive timestamp": (dict(json=_body(occurred_at="2026-11-26T08:00:00")), 422,
                        "invalid-input", "occurred_at"),
    "bad evidence hash": (dict(json=_body(evidence=[{"uri": "x", "sha256": "abc"}])), 422,
                          "invalid-input", "evidence"),
    "body over 1 MiB": (dict(json=_body(description=HUGE)), 413, "too-large", None),
    "NaN coordinate": (dict(data=json.dumps(_body(location={"lon": float("nan"),
                                                            "lat": 31.4})).encode(),
                            headers={"Content-Type": "application/json"}),
                       422, "invalid-input", "location"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_lead_is_refused_with_problem_details_and_nothing_stored(platform, name):
    kwargs, status, kind, field = CASES[name]
    client = platform.client("taicang", "Bad Input Co 测试", "source")
    leads_before, outbox_before = _count(platform), _outbox(platform)
    r = client.request("POST", "/api/v1/leads", **kwargs)
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["type"].endswith("/" + kind)
    assert problem["status"] == status and problem["title"]
    if field:
        assert field in problem["errors"], problem
    assert (_count(platform), _outbox(platform)) == (leads_before, outbox_before)


@pytest.mark.parametrize("auth", [None, "Bearer", "Bearer ld_taicang_not-a-real-key",
                                  "Basic dXNlcjpwYXNz"])
def test_missing_or_unknown_key_is_401(platform, auth):
    client = ApiClient(platform.url("taicang"), None)
    headers = {"Authorization": auth} if auth else {}
    before = _count(platform)
    r = client.post("/api/v1/leads", lead_body(point=unique_point()), headers=headers)
    assert r.status_code == 401
    assert r.json()["type"].endswith("/unauthenticated")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert _count(platform) == before


def test_wrong_role_is_403_and_nothing_stored(platform):
    coordinator = platform.client("taicang", "Coordinator 协调员", "coordinator")
    before = _count(platform)
    r = coordinator.post("/api/v1/leads", lead_body(point=unique_point()))
    assert r.status_code == 403
    assert "source" in r.json()["detail"]
    assert _count(platform) == before


def test_revoked_key_stops_working(platform):
    from sqlalchemy import text

    key = platform.key("taicang", "Revoked Co 注销", "source")
    client = ApiClient(platform.url("taicang"), key)
    assert client.get("/api/v1/leads").status_code == 200
    with platform.engine("taicang").begin() as conn:
        conn.execute(text("UPDATE gateway.api_keys SET revoked_at = now() "
                          "WHERE prefix = :p"), {"p": key[:len("taicang") + 8]})
    from support import wait_for

    wait_for(lambda: client.get("/api/v1/leads").status_code == 401, timeout=20,
             what="the revoked key to be refused (cache ttl 10 s)")


@pytest.mark.parametrize("path", ["/api/v1/leads/not-a-uuid",
                                  "/api/v1/leads/00000000-0000-0000-0000-000000000000",
                                  "/api/v1/nothing-here"])
def test_unknown_things_are_404_problems(platform, path):
    client = platform.client("taicang", "Test Bureau 404", "bureau")
    r = client.get(path)
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize("body,status", [({"decision": "maybe"}, 422), ({}, 422),
                                         ({"decision": "reject", "reason": ""}, 422)])
def test_bad_decisions_change_nothing(platform, body, status):
    source = platform.client("taicang", "Bad Input Co 测试", "source")
    bureau = platform.client("taicang", "Test Bureau 404", "bureau")
    lead = source.post("/api/v1/leads", lead_body(point=unique_point())).json()
    r = bureau.post(f"/api/v1/leads/{lead['id']}/decision", body)
    assert r.status_code == status
    assert source.get(f"/api/v1/leads/{lead['id']}").json()["status"] == "routed"


def test_bad_list_query_is_422(platform):
    client = platform.client("taicang", "Test Bureau 404", "bureau")
    for q in ("status=lost", "limit=0", "limit=abc", "from=yesterday"):
        r = client.get(f"/api/v1/leads?{q}")
        assert r.status_code == 422, q

"""Cases (案件指派) through the gateway on real RabbitMQ and PostgreSQL: one case per accepted
lead, numbering, balancing, steps with role checks, bad input."""

import re
import uuid

import pytest
from kombu import Connection, Exchange, Producer
from support import EVIDENCE, TEST_SITE, case_roles, open_case, unique_point, wait_for

pytestmark = pytest.mark.integration

CASE_NO = re.compile(r"^TC-(\d{4})-(\d{6})$")


def _publish(city: str, exchange: str, body: dict) -> None:
    with Connection(TEST_SITE.amqp_uri(city)) as conn:
        Producer(conn.channel()).publish(
            body, exchange=Exchange(exchange, type="topic", durable=True),
            routing_key=body["type"], delivery_mode=2)


def test_an_accepted_lead_opens_a_numbered_assigned_case(platform):
    with platform.observe("taicang", "cases.events", "case.opened") as events:
        case = open_case(platform)
        opened = events.wait(lambda e: e["subject"] == case["id"])[0]
    assert CASE_NO.match(case["case_no"]), case["case_no"]
    assert case["status"] == "assigned" and case["zone_squad"] == "taicang-chengxiang"
    # 城厢镇 and 科教新城 work each other's zones: the balancer chose one of them
    assert case["squad"] in ("taicang-chengxiang", "taicang-kejiaoxincheng")
    data = opened["data"]
    assert (data["case_no"], data["squad"], data["origin_city"]) == (case["case_no"],
                                                                     case["squad"], None)
    assert data["case"]["version"] == 1 and data["case"]["assignments"][0]["kind"] == "auto"
    assert "fewest open cases" in data["assignment_reason"]
    history = case_roles(platform)["bureau"].get(f"/api/v1/cases/{case['id']}").json()["history"]
    assert [h["action"] for h in history][:1] == ["opened"]
    assert "Case Test Bureau" in history[0]["actor"]  # the bureau that accepted the lead


def test_redelivered_or_replayed_lead_accepted_opens_no_second_case(platform):
    with platform.observe("taicang", "leads.events", "lead.accepted") as events:
        case = open_case(platform)
        accepted = events.wait(lambda e: e["data"]["lead_id"] == case["lead_id"])[0]
    _publish("taicang", "leads.events", accepted)  # redelivery: same event id (inbox)
    replay = {**accepted, "id": str(uuid.uuid4())}  # replay under a new id (unique lead id)
    _publish("taicang", "leads.events", replay)
    wait_for(lambda: platform.scalar("taicang", "SELECT count(*) FROM cases.inbox "
                                                "WHERE event_id = :e", e=replay["id"]) == 1,
             what="the replay to be handled")
    assert platform.scalar("taicang", "SELECT count(*) FROM cases.cases WHERE lead_id = :l",
                           l=case["lead_id"]) == 1


def test_case_numbers_are_unique_and_increase(platform):
    first, second = open_case(platform), open_case(platform)
    (y1, n1), (y2, n2) = (CASE_NO.match(c["case_no"]).groups() for c in (first, second))
    assert y1 == y2 and int(n2) > int(n1)
    assert platform.scalar("taicang", "SELECT count(DISTINCT case_no) = count(*) "
                                      "FROM cases.cases")


def test_assignment_balances_open_cases_between_the_squads_of_the_zone(platform):
    bureau = case_roles(platform)["bureau"]
    pair = ("taicang-chengxiang", "taicang-kejiaoxincheng")
    for _ in range(3):
        loads = {s["code"]: s["open_cases"] for s in bureau.get("/api/v1/squads").json()["items"]}
        case = open_case(platform)
        if case["zone_squad"] != "taicang-chengxiang":
            continue
        expected = min(pair, key=lambda s: (loads[s], s != "taicang-chengxiang"))
        assert case["squad"] == expected, (loads, case["squad"])
    squads = bureau.get("/api/v1/squads").json()["items"]
    assert len(squads) == 11 and all(s["demo"] for s in squads)
    assert next(s for s in squads if s["code"] == "taicang-chengxiang")["covers"] == [
        "taicang-kejiaoxincheng"]


def test_reassign_and_transfer_need_a_reason_and_are_recorded(platform):
    roles = case_roles(platform)
    case = open_case(platform)
    path = f"/api/v1/cases/{case['id']}"
    assert roles["bureau"].post(f"{path}/reassign", {"squad": "taicang-shaxi"}).status_code == 422
    with platform.observe("taicang", "cases.events", "case.assigned") as events:
        r = roles["bureau"].post(f"{path}/reassign", {"squad": "taicang-shaxi",
                                                      "reason": "沙溪镇中队熟悉该地段"})
        assert r.status_code == 200, r.text
        assert (r.json()["squad"], r.json()["status"]) == ("taicang-shaxi", "assigned")
        r = roles["squad"].post(f"{path}/transfer", {"squad": "taicang-liuhe",
                                                     "reason": "belongs to 浏河镇"})
        assert r.status_code == 200 and r.json()["squad"] == "taicang-liuhe"
        kinds = [e["data"]["kind"] for e in events.wait(
            lambda e: e["subject"] == case["id"] and e["data"]["kind"] == "transferred")]
    assert kinds == ["transferred"]
    # without a squad, the balancer picks another one
    r = roles["supervisor"].post(f"{path}/reassign", {"reason": "rebalance"})
    assert r.status_code == 200 and r.json()["squad"] not in ("taicang-liuhe", None)
    history = r.json()["history"]
    assert [h["action"] for h in history if h["action"] in ("reassign", "transfer")] == [
        "reassign", "transfer", "reassign"]
    assert history[-1]["detail"]["reason"] == "rebalance"
    assert [a["kind"] for a in r.json()["assignments"]] == [
        "auto", "reassigned", "transferred", "reassigned"]
    for bad in ({"squad": "taicang-nowhere", "reason": "x"},
                {"squad": r.json()["squad"], "reason": "same squad"}):
        assert roles["bureau"].post(f"{path}/reassign", bad).status_code == 422


def test_on_the_spot_closure_in_one_step_with_evidence(platform):
    roles = case_roles(platform)
    case = open_case(platform, category="street_vending")
    path = f"/api/v1/cases/{case['id']}/close"
    body = {"mode": "on_the_spot", "summary": "当场劝离 moved on at once"}
    r = roles["squad"].post(path, body)
    assert r.status_code == 422 and "evidence" in r.json()["errors"]
    assert roles["bureau"].post(path, {**body, "evidence": EVIDENCE}).status_code == 403
    with platform.observe("taicang", "cases.events", "case.closed") as events:
        r = roles["squad"].post(path, {**body, "evidence": EVIDENCE, "finding": {
            "severity": "minor", "first_offence": True}})
        assert r.status_code == 200, r.text
        closed = events.wait(lambda e: e["subject"] == case["id"])[0]
    c = r.json()
    assert (c["status"], c["close_mode"]) == ("closed", "on_the_spot")
    assert c["penalty"]["decision"] == "no_penalty"  # 首违免罚
    assert closed["data"]["mode"] == "on_the_spot" and closed["data"]["case_no"] == c["case_no"]
    assert [h["action"] for h in c["history"]][-1] == "close"
    assert roles["squad"].post(f"/api/v1/cases/{case['id']}/accept", {}).status_code == 409


@pytest.mark.parametrize("action, role, body", [
    ("accept", "supervisor", {}),
    ("accept", "bureau", {}),
    ("evaluate", "squad", {"result": "pass"}),
    ("feedback", "bureau", {"summary": "x", "evidence": EVIDENCE}),
    ("transfer", "bureau", {"squad": "taicang-shaxi", "reason": "x"}),
    ("reassign", "squad", {"squad": "taicang-shaxi", "reason": "x"}),
])
def test_roles_are_checked(platform, action, role, body):
    roles = case_roles(platform)
    case = open_case(platform)
    r = roles[role].post(f"/api/v1/cases/{case['id']}/{action}", body)
    assert r.status_code == 403
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert roles["source"].get("/api/v1/cases").status_code == 403


def _state(platform, case_id):
    return (platform.scalar("taicang", "SELECT version FROM cases.cases WHERE id = :c",
                            c=case_id),
            platform.scalar("taicang", "SELECT count(*) FROM cases.case_history "
                                       "WHERE case_id = :c", c=case_id),
            platform.scalar("taicang", "SELECT count(*) FROM cases.outbox WHERE subject = :c",
                            c=case_id))


BAD = [
    ("accept", "squad", {"note": 5}, 422),
    ("feedback", "squad", {"summary": "done"}, 422),  # no evidence
    ("feedback", "squad", {"summary": "done", "evidence": [{"uri": "x", "sha256": "zz"}]}, 422),
    ("feedback", "squad", {"summary": "done", "evidence": EVIDENCE,
                           "finding": {"severity": "huge", "first_offence": True}}, 422),
    ("feedback", "squad", {"summary": "done", "evidence": EVIDENCE}, 409),  # not accepted yet
    ("evaluate", "supervisor", {"result": "maybe"}, 422),
    ("evaluate", "supervisor", {"result": "pass"}, 409),
    ("close", "bureau", {"mode": "shred", "summary": "x"}, 422),
    ("hold", "squad", {"party": ""}, 422),
    ("resume", "squad", {}, 409),
]


@pytest.mark.parametrize("action, role, body, status", BAD,
                         ids=[f"{a}-{s}-{i}" for i, (a, _, _, s) in enumerate(BAD)])
def test_bad_input_is_a_problem_and_changes_nothing(platform, action, role, body, status):
    roles = case_roles(platform)
    case = open_case(platform)
    wait_for(lambda: platform.scalar("taicang", "SELECT count(*) FROM cases.case_history "
                                                "WHERE case_id = :c AND action = "
                                                "'deadline_set'", c=case["id"]),
             what="the first deadline in the history")
    before = _state(platform, case["id"])
    r = roles[role].post(f"/api/v1/cases/{case['id']}/{action}", body)
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert _state(platform, case["id"]) == before


@pytest.mark.parametrize("path", ["/api/v1/cases/not-a-uuid",
                                  f"/api/v1/cases/{uuid.uuid4()}",
                                  f"/api/v1/cases/{uuid.uuid4()}/record"])
def test_unknown_cases_are_404(platform, path):
    r = case_roles(platform)["bureau"].get(path)
    assert r.status_code == 404 and r.json()["type"].endswith("/not-found")
    r = case_roles(platform)["squad"].post(f"/api/v1/cases/{uuid.uuid4()}/accept", {})
    assert r.status_code == 404


def test_list_filters_and_paginates(platform):
    bureau = case_roles(platform)["bureau"]
    ids = {open_case(platform, category="plaza_management", point=unique_point())["id"]
           for _ in range(3)}
    seen, cursor = [], None
    while True:
        page = bureau.get("/api/v1/cases?limit=2&category=plaza_management"
                          + (f"&cursor={cursor}" if cursor else "")).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert ids <= set(seen) and len(seen) == len(set(seen))
    for q in ("status=lost", "limit=0", "cursor=garbage", "from=yesterday"):
        assert bureau.get(f"/api/v1/cases?{q}").status_code == 422, q
    assert all(c["status"] == "closed"
               for c in bureau.get("/api/v1/cases?status=closed").json()["items"])

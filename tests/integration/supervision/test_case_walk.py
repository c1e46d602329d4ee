"""A case walked from the lead to closure with time frozen and shifted (限时督办): reminder, order,
escalation, answers to the order, a failed evaluation that reopens the case, closure; deadlines
across the 2026 National Day holiday and its adjusted working Saturday; the clock paused while
the case waits on another party, where the policy says so.

The cases and supervision services' clocks are frozen through their `set_clock` RPC
(CLOCK_CONTROL is on in the test platform); `scan` runs the due-scan as of an instant for one
case. Nothing here sleeps to wait for time to pass."""

from datetime import UTC, date, datetime, timedelta

import pytest
from support import EVIDENCE, case_roles, deadline, open_case, supervision_of, wait_for

from services.common.workcal import SHANGHAI, WorkCalendar

pytestmark = pytest.mark.integration

CAL = WorkCalendar()


@pytest.fixture
def clock(platform):
    """Freeze both services' clocks at an instant; back to the system clock afterwards."""

    def freeze(at: datetime) -> datetime:
        for service in ("cases", "supervision"):
            platform.rpc("taicang", service, "set_clock", at.isoformat(), "frozen")
        return at

    yield freeze
    for service in ("cases", "supervision"):
        platform.rpc("taicang", service, "set_clock", None)


def scan(platform, at: datetime, case_id: str) -> int:
    return platform.rpc("taicang", "supervision", "scan", at.isoformat(), case_id)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def a_working_morning(days_ahead: int = 21) -> datetime:
    """09:00 Shanghai on a working day at least `days_ahead` days from now: later than any real
    timer tick during the test, so only the test decides what falls due."""
    d = (datetime.now(SHANGHAI) + timedelta(days=days_ahead)).date()
    while not CAL.is_workday(d):
        d += timedelta(days=1)
    return datetime(d.year, d.month, d.day, 9, 0, tzinfo=SHANGHAI).astimezone(UTC)


def notices(platform, case_id) -> list[dict]:
    bureau = case_roles(platform)["bureau"]
    items = bureau.get(f"/api/v1/supervision/notices?case_id={case_id}").json()["items"]
    return sorted(items, key=lambda n: n["id"])


def wait_notices(platform, case_id, n: int) -> list[dict]:
    return wait_for(lambda: (lambda ns: ns if len(ns) >= n else None)(notices(platform, case_id)),
                    what=f"{n} notices")


def test_a_case_from_lead_to_closure_with_reminder_order_escalation_and_reopen(platform, clock):
    roles = case_roles(platform)
    squad, supervisor = roles["squad"], roles["supervisor"]
    start = clock(a_working_morning())
    with platform.observe("taicang", "cases.events", "case.*") as case_events:
        case = open_case(platform)  # exposed_garbage: respond in 2 h, fix in 1 working day
        cid = case["id"]
        assert case["opened_at"] == iso(start)

        # 1. assignment → response deadline, reminder at 75 %
        loop = supervision_of(platform, cid, lambda lp: deadline(lp, "response"))
        response = deadline(loop, "response")
        due, remind = CAL.add(start, 2), CAL.add(start, 1.5)
        assert (response["due_at"], response["remind_at"]) == (iso(due), iso(remind))
        assert response["next_step"] == "reminder:0"

        # 2. time passes: the reminder, then the order, then the first escalation
        assert scan(platform, start + timedelta(minutes=5), cid) == 0  # nothing due yet
        scan(platform, clock(remind + timedelta(minutes=1)), cid)
        assert [n["kind"] for n in wait_notices(platform, cid, 1)] == ["reminder"]
        scan(platform, clock(due + timedelta(minutes=1)), cid)
        scan(platform, clock(due + timedelta(minutes=2)), cid)  # again: nothing new
        escalate = CAL.add(due, 4)
        scan(platform, clock(escalate + timedelta(minutes=1)), cid)
        issued = wait_notices(platform, cid, 3)
        assert [(n["kind"], n["level"]) for n in issued] == [
            ("reminder", 0), ("order", 1), ("escalation", 2)]
        assert issued[1]["title"].startswith("督办单") and issued[0]["title"].startswith("提示单")
        assert issued[2]["recipient"].startswith("bureau leadership")
        assert [n["issued_at"] for n in issued] == [
            iso(remind + timedelta(minutes=1)), iso(due + timedelta(minutes=1)),
            iso(escalate + timedelta(minutes=1))]
        assert len(notices(platform, cid)) == 3  # each once

        # 3. the squad answers the order; the supervisor wants more, then is satisfied
        order = f"/api/v1/supervision/notices/{issued[1]['id']}"
        r = squad.post(f"/api/v1/supervision/notices/{issued[0]['id']}/feedback",
                       {"text": "收到"})
        assert r.status_code == 409  # a reminder needs no answer
        r = squad.post(f"{order}/feedback", {"text": "人手不足，已调派 more hands sent"})
        assert (r.status_code, r.json()["status"]) == (200, "answered")
        assert supervisor.post(f"{order}/evaluation",
                               {"result": "unsatisfactory"}).status_code == 422
        r = supervisor.post(f"{order}/evaluation", {"result": "unsatisfactory",
                                                    "comment": "请说明完成时间"})
        assert r.json()["status"] == "open"
        squad.post(f"{order}/feedback", {"text": "今日17:00前完成", "evidence": EVIDENCE})
        r = supervisor.post(f"{order}/evaluation", {"result": "satisfactory"})
        assert r.json()["status"] == "closed" and len(r.json()["answers"]) == 2

        # 4. the squad accepts, late; the disposal deadline starts
        accepted_at = clock(escalate + timedelta(minutes=30))
        assert squad.post(f"/api/v1/cases/{cid}/accept", {}).json()["status"] == "in_progress"
        loop = supervision_of(platform, cid, lambda lp: deadline(lp, "disposal")
                              and deadline(lp, "response")["status"] == "met")
        assert deadline(loop, "response")["late"] is True
        assert deadline(loop, "disposal")["due_at"] == iso(CAL.add(accepted_at, 7.5))

        # 5. feedback with evidence, in time; the evaluation fails: a new round, a new deadline
        clock(CAL.add(accepted_at, 2))
        r = squad.post(f"/api/v1/cases/{cid}/feedback", {
            "summary": "已清运 cleared", "evidence": EVIDENCE,
            "finding": {"severity": "ordinary", "first_offence": False}})
        assert r.json()["status"] == "rectified"
        assert r.json()["penalty"]["decision"] == "penalty"
        assert r.json()["penalty"]["rule_id"] == "exposed_garbage.ordinary"
        failed_at = clock(CAL.add(accepted_at, 2.5))
        r = supervisor.post(f"/api/v1/cases/{cid}/evaluate", {"result": "fail",
                                                              "comment": "东侧仍有垃圾"})
        assert (r.json()["status"], r.json()["round"]) == ("in_progress", 2)
        loop = supervision_of(platform, cid, lambda lp: deadline(lp, "disposal", 2))
        assert deadline(loop, "disposal", 1)["late"] is False
        rework_due = CAL.add(failed_at, 4)  # the rework limit
        assert deadline(loop, "disposal", 2)["due_at"] == iso(rework_due)

        # 6. the rework is late: reminder and order in one scan; then fixed, passed, closed
        scan(platform, clock(rework_due + timedelta(minutes=1)), cid)
        late = wait_notices(platform, cid, 5)[3:]
        assert [(n["deadline_kind"], n["kind"]) for n in late] == [
            ("disposal", "reminder"), ("disposal", "order")]
        clock(rework_due + timedelta(minutes=20))
        squad.post(f"/api/v1/cases/{cid}/feedback", {"summary": "彻底清理 all gone",
                                                     "evidence": EVIDENCE})
        closed_at = clock(rework_due + timedelta(minutes=40))
        r = supervisor.post(f"/api/v1/cases/{cid}/evaluate", {"result": "pass"})
        assert (r.json()["status"], r.json()["closed_at"]) == ("closed", iso(closed_at))
        types = [e["type"] for e in case_events.wait(
            lambda e: e["subject"] == cid and e["type"] == "case.closed")]
    seen = [e["type"] for e in case_events.seen if e["subject"] == cid]
    assert seen == ["case.opened", "case.accepted", "case.rectified", "case.evaluated",
                    "case.rectified", "case.evaluated", "case.closed"], types

    # the five-step loop, the history and the record tell the same story
    loop = supervision_of(platform, cid, lambda lp: lp["status"] == "closed" and all(
        d["status"] != "pending" for d in lp["deadlines"]) and len(lp["deadlines"]) == 3)
    assert [s["step"] for s in loop["loop"]] == [
        "assignment", "deadline", "feedback", "evaluation", "review"]
    review = loop["loop"][4]["items"][0]
    assert (review["on_time"], review["late_deadlines"], review["orders"]) == (False, 2, 2)
    assert [d["late"] for d in loop["deadlines"]] == [True, False, True]
    evaluation = loop["loop"][3]["items"]
    assert [e.get("passed") for e in evaluation if "round" in e] == [False, True]
    expected = {"deadline_set": 3, "notice_issued": 5, "deadline_closed": 3,
                "order_answered": 2, "order_evaluated": 2}

    def complete(h):
        return all(sum(x["action"] == a for x in h) == n for a, n in expected.items())

    history = wait_for(lambda: (lambda h: h if complete(h) else None)(
        roles["bureau"].get(f"/api/v1/cases/{cid}").json()["history"]),
        what="every supervision step in the history")
    actions = [h["action"] for h in history]
    for step in ("opened", "accept", "feedback", "evaluate", "closed", "deadline_set",
                 "notice_issued", "deadline_closed", "order_answered", "order_evaluated"):
        assert step in actions, step
    assert actions.count("notice_issued") == 5 and actions.count("order_evaluated") == 2
    record = roles["bureau"].get(f"/api/v1/cases/{cid}/record").json()
    assert len(record["entries"]) == len(history)
    assert all(e["proof"]["valid"] and e["proof"]["prev_link"] for e in record["entries"])


def test_deadlines_across_the_2026_national_day_holiday(platform, clock):
    squad = case_roles(platform)["squad"]
    # Wednesday 30 Sep 2026, 16:45: 1-7 Oct are off, Saturday 10 Oct is worked (调休上班)
    clock(datetime(2026, 9, 30, 16, 45, tzinfo=SHANGHAI))
    case = open_case(platform, category="illegal_advertising")  # fix in 3 working days
    loop = supervision_of(platform, case["id"], lambda lp: deadline(lp, "response"))
    # 2 working hours: 45 min on the 30th, the rest on Thursday 8 Oct
    assert deadline(loop, "response")["due_at"] == iso(
        datetime(2026, 10, 8, 9, 45, tzinfo=SHANGHAI))
    clock(datetime(2026, 9, 30, 17, 0, tzinfo=SHANGHAI))
    squad.post(f"/api/v1/cases/{case['id']}/accept", {})
    loop = supervision_of(platform, case["id"], lambda lp: deadline(lp, "disposal"))
    disposal = deadline(loop, "disposal")
    # 22.5 working hours: 0.5 on 30 Sep, 7.5 on 8 Oct, 7.5 on 9 Oct, 7 on Saturday 10 Oct
    assert disposal["due_at"] == iso(datetime(2026, 10, 10, 17, 0, tzinfo=SHANGHAI))
    assert date(2026, 10, 10).weekday() == 5
    # the reminder at 75 % (16.875 h) also falls on the working Saturday
    assert disposal["remind_at"] == iso(datetime(2026, 10, 10, 9, 52, 30, tzinfo=SHANGHAI))


@pytest.mark.parametrize("category, pauses", [("illegal_dumping", True),
                                              ("exposed_garbage", False)])
def test_the_clock_pauses_while_waiting_only_where_the_policy_says(platform, clock, category,
                                                                   pauses):
    squad = case_roles(platform)["squad"]
    start = clock(a_working_morning())
    case = open_case(platform, category=category)
    squad.post(f"/api/v1/cases/{case['id']}/accept", {})
    loop = supervision_of(platform, case["id"], lambda lp: deadline(lp, "disposal"))
    before = deadline(loop, "disposal")["due_at"]
    clock(CAL.add(start, 1))
    r = squad.post(f"/api/v1/cases/{case['id']}/hold", {"party": "住建局 housing bureau",
                                                        "reason": "需住建局先行断电"})
    assert r.json()["held"]["party"] == "住建局 housing bureau"
    loop = supervision_of(platform, case["id"], lambda lp: deadline(lp, "disposal")["paused"]
                          if pauses else True)
    assert deadline(loop, "disposal")["paused"] is pauses
    resumed_at = clock(CAL.add(start, 1 + 7.5))  # a working day later
    squad.post(f"/api/v1/cases/{case['id']}/resume", {"note": "已断电"})
    expected = CAL.add(datetime.fromisoformat(before.replace("Z", "+00:00")), 7.5) if pauses \
        else datetime.fromisoformat(before.replace("Z", "+00:00"))
    loop = supervision_of(platform, case["id"],
                          lambda lp: deadline(lp, "disposal")["due_at"] == iso(expected))
    assert resumed_at < expected or not pauses
    history = case_roles(platform)["bureau"].get(f"/api/v1/cases/{case['id']}").json()["history"]
    assert {"hold", "resume"} <= {h["action"] for h in history}


def test_bad_answers_to_orders_change_nothing(platform):
    roles = case_roles(platform)
    base = "/api/v1/supervision/notices"
    assert roles["squad"].post(f"{base}/999999999/feedback", {"text": "x"}).status_code == 404
    assert roles["squad"].post(f"{base}/abc/feedback", {"text": "x"}).status_code == 404
    assert roles["squad"].post(f"{base}/1/feedback", {}).status_code == 422
    assert roles["squad"].post(f"{base}/1/evaluation", {"result": "satisfactory"}
                               ).status_code == 403
    assert roles["supervisor"].post(f"{base}/1/evaluation", {"result": "fine"}).status_code == 422
    assert roles["source"].get(base).status_code == 403
    for q in ("kind=memo", "limit=500", "cursor=zzz", "case_id=nope"):
        assert roles["bureau"].get(f"{base}?{q}").status_code == 422, q

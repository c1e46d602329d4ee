"""Supervision rules without a broker: policies, the deadlines of a case from its snapshot, the
notice schedule, holds that pause the clock, periods and the assessment figures."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from contracts.reference import CATEGORY_CODES
from services.common.workcal import SHANGHAI, WorkCalendar
from services.supervision import domain

CAL = WorkCalendar()
POLICIES = domain.load_policies()


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def utc(at: datetime) -> datetime:
    return at.astimezone(UTC)


def test_every_category_has_a_policy_with_sensible_defaults():
    assert set(POLICIES) == set(CATEGORY_CODES)
    p = POLICIES["exposed_garbage"]
    assert (str(p.response), str(p.disposal), p.reminder_share, p.max_level) == (
        "2 working_hours", "1 working_days", 0.75, 3)
    assert POLICIES["illegal_dumping"].pause_on_hold and not p.pause_on_hold
    assert domain.Limit.parse("3 working_days").hours(CAL) == 22.5


def test_a_deployment_overrides_policies_with_a_file(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"defaults": {"reminder_share": 0.5},
                                "categories": {"exposed_garbage": {"disposal": "3 working_days",
                                                                   "pause_on_hold": True}}}))
    policies = domain.load_policies(str(path))
    assert policies["exposed_garbage"].disposal == domain.Limit(3, "working_days")
    assert policies["exposed_garbage"].pause_on_hold
    assert policies["street_vending"].reminder_share == 0.5
    assert str(policies["street_vending"].disposal) == "4 working_hours"  # shipped, kept


@pytest.mark.parametrize("doc, error", [
    ({"categories": {"noise": {}}}, "unknown category"),
    ({"defaults": {"reminder_share": 1.5}}, "reminder_share"),
    ({"defaults": {"response": "2 hours"}}, "bad limit"),
    ({"defaults": {"colour": "red"}}, "unknown policy fields"),
])
def test_bad_policy_files_are_refused(tmp_path, doc, error):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=error):
        domain.load_policies(str(path))


def snapshot(**changes) -> dict:
    case = {"case_id": "c1", "case_no": "TC-2026-000001", "category": "exposed_garbage",
            "status": "assigned", "closed_at": None, "close_mode": None,
            "assignments": [{"n": 1, "squad": "taicang-chengxiang", "town": "城厢镇",
                             "kind": "auto", "at": utc(sh(2026, 9, 30, 16, 45)),
                             "accepted_at": None}],
            "rounds": [], "holds": []}
    case.update(changes)
    return case


def plans(case, category="exposed_garbage"):
    return {(p.kind, p.seq): p for p in domain.plan_deadlines(case, POLICIES[category], CAL)}


def test_response_deadline_across_national_day():
    p = plans(snapshot())[("response", 1)]
    # 2 working hours from Wednesday 30 Sep 16:45: 45 min that day, then 8 Oct after the holiday
    assert p.due_at == utc(sh(2026, 10, 8, 9, 45))
    assert p.remind_at == utc(sh(2026, 10, 8, 9, 15))  # at 75 % of the limit
    assert p.outcome is None and not p.paused


def test_disposal_deadline_lands_on_the_adjusted_working_saturday():
    accepted = utc(sh(2026, 9, 30, 15, 0))
    case = snapshot(status="in_progress", rounds=[{
        "round": 1, "squad": "taicang-chengxiang", "started_at": accepted,
        "rectified_at": None, "evaluated_at": None, "passed": None, "cancelled_at": None}])
    case["assignments"][0]["accepted_at"] = accepted
    p = plans(case, "illegal_advertising")[("disposal", 1)]  # 3 working days
    assert p.due_at == utc(sh(2026, 10, 10, 15, 0))  # Saturday 10 Oct is a working day
    response = plans(case, "illegal_advertising")[("response", 1)]
    assert (response.outcome, response.ended_at) == ("met", accepted)


def test_a_failed_evaluation_opens_a_new_round_with_the_rework_limit():
    t = utc(sh(2026, 11, 24, 9, 0))
    rounds = [
        {"round": 1, "squad": "taicang-chengxiang", "started_at": t,
         "rectified_at": t + timedelta(hours=2), "evaluated_at": t + timedelta(hours=3),
         "passed": False, "cancelled_at": None},
        {"round": 2, "squad": "taicang-chengxiang", "started_at": t + timedelta(hours=3),
         "rectified_at": None, "evaluated_at": None, "passed": None, "cancelled_at": None}]
    case = snapshot(status="in_progress", rounds=rounds)
    case["assignments"][0].update(at=t - timedelta(minutes=10), accepted_at=t)
    ps = plans(case)
    assert ps[("disposal", 1)].outcome == "met" and not ps[("disposal", 1)].late
    second = ps[("disposal", 2)]
    assert second.outcome is None and second.limit == POLICIES["exposed_garbage"].rework
    assert second.due_at == utc(sh(2026, 11, 24, 17, 30))  # from 12:00: lunch, then 4 h


def test_a_transfer_cancels_the_open_response_deadline_and_starts_another():
    t = utc(sh(2026, 11, 24, 9, 0))
    case = snapshot(assignments=[
        {"n": 1, "squad": "taicang-chengxiang", "town": "城厢镇", "kind": "auto", "at": t,
         "accepted_at": None},
        {"n": 2, "squad": "taicang-shaxi", "town": "沙溪镇", "kind": "transferred",
         "at": t + timedelta(hours=3), "accepted_at": None}])
    ps = plans(case)
    first = ps[("response", 1)]
    assert (first.outcome, first.ended_at, first.late) == ("cancelled", t + timedelta(hours=3),
                                                           True)  # it was already overdue
    assert ps[("response", 2)].outcome is None and ps[("response", 2)].town == "沙溪镇"


def test_closing_on_the_spot_meets_the_deadline_and_administratively_cancels_it():
    t = utc(sh(2026, 11, 24, 9, 0))
    spot = snapshot(status="closed", closed_at=t, close_mode="on_the_spot")
    assert plans(spot)[("response", 1)].outcome == "met"
    admin = snapshot(status="closed", closed_at=t, close_mode="administrative")
    assert plans(admin)[("response", 1)].outcome == "cancelled"


def held_case(since, until, category="illegal_dumping"):
    start = utc(sh(2026, 11, 23, 9, 0))  # Monday
    case = snapshot(category=category, status="in_progress", rounds=[{
        "round": 1, "squad": "taicang-chengxiang", "started_at": start, "rectified_at": None,
        "evaluated_at": None, "passed": None, "cancelled_at": None}],
        holds=[{"since": since, "until": until, "party": "住建局"}])
    case["assignments"][0].update(at=start, accepted_at=start)
    return plans(case, category)[("disposal", 1)]


def test_the_clock_pauses_while_waiting_only_where_the_policy_says_so():
    since = utc(sh(2026, 11, 23, 14, 0))
    # illegal_dumping pauses: open hold → no due time
    paused = held_case(since, None)
    assert paused.paused and paused.due_at is None
    # resumed a working day later: due moves by the working time spent waiting
    resumed = held_case(since, utc(sh(2026, 11, 24, 14, 0)))
    unpaused = CAL.add(utc(sh(2026, 11, 23, 9, 0)), 22.5)
    assert resumed.due_at == CAL.add(unpaused, 7.5)
    # exposed_garbage does not pause: the hold changes nothing
    running = held_case(since, None, category="exposed_garbage")
    assert running.due_at == CAL.add(utc(sh(2026, 11, 23, 9, 0)), 7.5)


def test_a_hold_after_the_due_time_does_not_move_it():
    late_hold = held_case(utc(sh(2026, 11, 30, 9, 0)), None)
    assert late_hold.due_at == CAL.add(utc(sh(2026, 11, 23, 9, 0)), 22.5)


def test_the_notice_schedule_reminder_order_and_escalations():
    p = plans(snapshot())[("response", 1)]
    steps = domain.step_schedule(p, POLICIES["exposed_garbage"], CAL, [])
    assert [(s["kind"], s["level"]) for s in steps] == [
        ("reminder", 0), ("order", 1), ("escalation", 2), ("escalation", 3)]
    times = [domain.as_time(s["at"]) for s in steps]
    assert times[0] == p.remind_at and times[1] == p.due_at
    assert times[2] == CAL.add(p.due_at, 4) and times[3] == CAL.add(p.due_at, 8)
    assert domain.next_due(steps, 1) == p.due_at and domain.next_due(steps, 4) is None
    assert domain.notice_title("order", 1).startswith("督办单")
    assert domain.notice_title("reminder", 0).startswith("提示单")


def test_periods_are_shanghai_months_quarters_and_years():
    now = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # already 1 Dec in Shanghai
    assert domain.period("month", None, now).key == "2026-12"
    q = domain.period("quarter", "2026-Q4", now)
    assert (q.start, q.end) == (utc(sh(2026, 10, 1)), utc(sh(2027, 1, 1)))
    assert domain.period("year", "2026", now).end == utc(sh(2027, 1, 1))
    with pytest.raises(ValueError):
        domain.period("month", "2026-13", now)
    with pytest.raises(ValueError):
        domain.period("quarter", "2026-11", now)


def test_assessment_figures():
    p = domain.period("month", "2026-11", datetime(2026, 11, 26, tzinfo=UTC))
    t = utc(sh(2026, 11, 23, 9, 0))
    now = utc(sh(2026, 11, 27, 9, 0))
    cases = [
        {"case_id": "a", "squad": "s1", "town": "T1", "origin_city": None, "opened_at": t,
         "closed_at": t + timedelta(hours=2), "assignments": [], "rounds": []},
        {"case_id": "b", "squad": "s1", "town": "T1", "origin_city": "kunshan", "opened_at": t,
         "closed_at": t + timedelta(days=1), "assignments": [{"squad": "s1", "town": "T1"}],
         "rounds": [{"squad": "s1", "passed": False, "evaluated_at": t + timedelta(hours=5)}]},
        {"case_id": "c", "squad": "s2", "town": "T2", "origin_city": None, "opened_at": t,
         "closed_at": None, "assignments": [], "rounds": []},
    ]
    deadlines = [
        {"case_id": "a", "squad": "s1", "town": "T1", "origin_city": None,
         "due_at": t + timedelta(hours=3), "ended_at": t + timedelta(hours=1), "status": "met"},
        {"case_id": "b", "squad": "s1", "town": "T1", "origin_city": "kunshan",
         "due_at": t + timedelta(hours=4), "ended_at": t + timedelta(hours=6), "status": "met"},
        {"case_id": "c", "squad": "s2", "town": "T2", "origin_city": None,
         "due_at": t + timedelta(hours=1), "ended_at": None, "status": "pending"},
    ]
    notices = [{"squad": "s2", "town": "T2", "origin_city": None, "kind": k,
                "issued_at": t + timedelta(hours=2)} for k in ("reminder", "order", "escalation")]
    rows, totals = domain.assess(p, "squad", now, CAL, cases, deadlines, notices)
    s1, s2 = rows
    assert (s1["group"], s1["cases_opened"], s1["cases_closed"], s1["on_time"]) == (
        "s1", 2, 2, 1)
    assert s1["on_time_rate"] == 0.5 and s1["overdue"] == 1 and s1["reopened"] == 1
    assert s1["avg_handling_hours"] == pytest.approx((2 + 7.5) / 2)
    assert s1["p90_handling_hours"] == 7.5
    assert (s2["cases_closed"], s2["on_time_rate"], s2["overdue"]) == (0, None, 1)
    assert (s2["reminders"], s2["orders"], s2["escalations"]) == (1, 1, 1)
    assert totals["cases_opened"] == 3 and totals["overdue"] == 2
    by_partner, _ = domain.assess(p, "partner", now, CAL, cases, deadlines, notices)
    assert {r["group"] for r in by_partner} == {"kunshan", "(local 本市)"}
    csv = domain.to_csv(rows, totals)
    assert csv.splitlines()[0].startswith("group,cases_opened,cases_closed,on_time")
    assert csv.splitlines()[-1].startswith("TOTAL,3,2,1,0.5")


def test_percentile_is_nearest_rank():
    assert domain.percentile_nearest_rank(list(range(1, 11)), 90) == 9
    assert domain.percentile_nearest_rank([5.0], 90) == 5.0
    assert domain.percentile_nearest_rank([], 90) is None

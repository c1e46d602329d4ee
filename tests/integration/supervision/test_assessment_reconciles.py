"""The two-way assessment (双向考核) reconciles with the case histories: every figure of every
group, for the month, quarter and year, recomputed here from nothing but `GET /api/v1/cases/{id}`
histories, equals the report (JSON and CSV)."""

import csv
import io
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from kombu import Connection, Exchange, Producer
from support import (
    EVIDENCE,
    TEST_SITE,
    case_roles,
    deadline,
    open_case,
    supervision_of,
    unique_point,
    wait_for,
)

from contracts.envelope import Event
from services.common.workcal import WorkCalendar
from services.supervision.domain import period

pytestmark = pytest.mark.integration

CAL = WorkCalendar()
FIELDS = ("cases_opened", "cases_closed", "on_time", "on_time_rate", "avg_handling_hours",
          "p90_handling_hours", "overdue", "reopened", "reminders", "orders", "escalations")
NONE = {"squad": "(unassigned)", "town": "(none)", "partner": "(local 本市)"}


def t(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def all_cases(client) -> list[dict]:
    out, cursor = [], None
    while True:
        page = client.get("/api/v1/cases?limit=200" + (f"&cursor={cursor}" if cursor else ""))
        out += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return [client.get(f"/api/v1/cases/{c['id']}").json() for c in out]


def from_histories(cases: list[dict], towns: dict[str, str], kind: str, by: str,
                   now: datetime) -> dict[str, dict]:
    """The figures, from the case histories alone (an independent reading of the rules in
    services/supervision/domain.py DEFINITIONS)."""
    p = period(kind, None, now)

    def within(at):
        return at is not None and p.start <= at < p.end

    def key(squad, origin):
        value = {"squad": squad, "town": towns.get(squad), "partner": origin}[by]
        return value or NONE[by]

    groups = defaultdict(lambda: defaultdict(int))
    hours = defaultdict(list)
    for case in cases:
        squad = origin = opened = closed = None
        deadlines: dict[tuple, dict] = {}
        for h in case["history"]:
            d, at = h["detail"], t(h["at"])
            if h["action"] == "opened":
                squad, origin, opened = d.get("squad"), d.get("origin_city"), at
            elif h["action"] in ("reassign", "transfer"):
                squad = d["to_squad"]
            elif h["action"] in ("closed", "close"):
                closed = at
            elif h["action"] == "evaluate" and d["result"] == "fail" and within(at):
                groups[key(squad, origin)]["reopened"] += 1
            elif h["action"] == "deadline_set":
                entry = deadlines.setdefault((d["kind"], d["seq"]), {})
                entry.update(due=t(d["due_at"]), squad=d["squad"])
            elif h["action"] == "deadline_closed":  # may be recorded before its set
                deadlines.setdefault((d["kind"], d["seq"]), {}).update(
                    ended=t(d["ended_at"]), late=d["late"])
            elif h["action"] == "notice_issued" and within(t(d["issued_at"])):
                field = {"reminder": "reminders", "order": "orders",
                         "escalation": "escalations"}[d["kind"]]
                groups[key(d["squad"], origin)][field] += 1
        missed = {k: dl for k, dl in deadlines.items() if dl.get("due") is not None and (
            dl.get("late") or ("ended" not in dl and now > dl["due"]))}
        g = groups[key(squad, origin)]
        g["cases_opened"] += within(opened)
        if within(closed):
            g["cases_closed"] += 1
            g["on_time"] += not missed
            hours[key(squad, origin)].append(CAL.between(opened, closed))
        for dl in missed.values():
            if within(dl["due"]):
                groups[key(dl["squad"], origin)]["overdue"] += 1
    rows = {}
    for name, g in groups.items():
        if not any(g.values()):
            continue
        hs = sorted(hours[name])
        rows[name] = {f: g.get(f, 0) for f in FIELDS}
        rows[name]["on_time_rate"] = (round(g["on_time"] / g["cases_closed"], 4)
                                      if g["cases_closed"] else None)
        rows[name]["avg_handling_hours"] = round(sum(hs) / len(hs), 2) if hs else None
        rows[name]["p90_handling_hours"] = (round(hs[max(0, -(-9 * len(hs) // 10) - 1)], 2)
                                            if hs else None)
    return rows


def handed_over_case(platform) -> dict:
    """A lead Kunshan handed over to Taicang (as the bridge re-publishes it), accepted."""
    lon, lat = unique_point()
    body = Event(type="lead.handed_over", version=1, source="kunshan/leads", city="kunshan",
                 subject=str(uuid.uuid4()), data={
                     "lead_id": uuid.uuid4(), "from_city": "kunshan", "to_city": "taicang",
                     "category": "illegal_dumping", "description": "边界偷倒 dumping at the border",
                     "location": {"lon": lon, "lat": lat}, "address": None,
                     "occurred_at": datetime.now(UTC), "submitted_at": datetime.now(UTC),
                     "evidence": [], "camera": None, "source_org": "昆山环卫",
                     "source_ref": "KS-1"}).to_wire()
    with Connection(TEST_SITE.amqp_uri("taicang")) as conn:
        Producer(conn.channel()).publish(
            body, exchange=Exchange("bridge.events", type="topic", durable=True),
            routing_key="lead.handed_over", delivery_mode=2)
    bureau = case_roles(platform)["bureau"]
    lead_id = wait_for(lambda: platform.scalar(
        "taicang", "SELECT id FROM leads.leads WHERE origin_lead_id = :o",
        o=body["data"]["lead_id"]), what="the handed-over lead")
    assert bureau.post(f"/api/v1/leads/{lead_id}/decision", {"decision": "accept"}
                       ).status_code == 200
    return wait_for(lambda: bureau.get(f"/api/v1/cases?lead_id={lead_id}").json()["items"],
                    what="its case")[0]


def test_the_assessment_reconciles_with_the_case_histories(platform):
    roles = case_roles(platform)
    squad, supervisor = roles["squad"], roles["supervisor"]
    # a few cases of our own: passed on time, reopened once, closed on the spot, handed over
    on_time, reopened, spot = (open_case(platform) for _ in range(3))
    for c in (on_time, reopened):
        squad.post(f"/api/v1/cases/{c['id']}/accept", {})
        squad.post(f"/api/v1/cases/{c['id']}/feedback", {"summary": "ok", "evidence": EVIDENCE})
    supervisor.post(f"/api/v1/cases/{reopened['id']}/evaluate",
                    {"result": "fail", "comment": "redo"})
    squad.post(f"/api/v1/cases/{reopened['id']}/feedback", {"summary": "ok", "evidence": EVIDENCE})
    for c in (on_time, reopened):
        assert supervisor.post(f"/api/v1/cases/{c['id']}/evaluate",
                               {"result": "pass"}).json()["status"] == "closed"
    squad.post(f"/api/v1/cases/{spot['id']}/close", {"mode": "on_the_spot", "summary": "done",
                                                     "evidence": EVIDENCE})
    partner = handed_over_case(platform)
    assert partner["origin_city"] == "kunshan" and partner["origin_lead_id"]
    loop = supervision_of(platform, partner["id"], lambda lp: deadline(lp, "response"))
    # its reminder falls due: scanned at that instant (time shifted for this case only)
    platform.rpc("taicang", "supervision", "scan", deadline(loop, "response")["remind_at"],
                 partner["id"])

    bureau = roles["bureau"]
    towns = {s["code"]: s["town_zh"] for s in bureau.get("/api/v1/squads").json()["items"]}
    combos = [(k, by) for k in ("month", "quarter", "year") for by in ("squad", "town", "partner")]

    def reconciled():
        now = datetime.now(UTC)
        cases = all_cases(bureau)
        for kind, by in combos:
            report = bureau.get(f"/api/v1/supervision/assessment?period={kind}&by={by}").json()
            got = {r["group"]: {f: r[f] for f in FIELDS} for r in report["rows"]}
            if got != from_histories(cases, towns, kind, by, now):
                return None
        return report

    report = wait_for(reconciled, timeout=60, interval=0.5,
                      what="the assessment to equal the figures from the histories")
    assert report["period"]["kind"] == "year" and "on_time" in report["definitions"]
    by_partner = {r["group"]: r for r in report["rows"]}
    assert by_partner["kunshan"]["cases_opened"] >= 1 and by_partner["kunshan"]["reminders"] >= 1
    month = bureau.get("/api/v1/supervision/assessment?by=squad").json()
    mine = {c["squad"] for c in (on_time, reopened, spot)}
    assert month["totals"]["reopened"] >= 1
    assert sum(r["cases_closed"] for r in month["rows"] if r["group"] in mine) >= 3


def test_the_assessment_as_csv_matches_the_json(platform):
    bureau = case_roles(platform)["bureau"]
    open_case(platform)
    q = "period=quarter&by=town"
    report = bureau.get(f"/api/v1/supervision/assessment?{q}").json()
    r = bureau.get(f"/api/v1/supervision/assessment?{q}&format=csv")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["group"] for row in rows] == [x["group"] for x in report["rows"]] + ["TOTAL"]
    for row, expected in zip(rows, [*report["rows"], report["totals"]], strict=True):
        for f in FIELDS:
            value = expected[f]
            assert row[f] == ("" if value is None else str(value)), (row["group"], f)


@pytest.mark.parametrize("query", ["period=week", "by=district", "format=xml", "at=2026-13",
                                   "period=quarter&at=2026-11", "at=twenty"])
def test_bad_assessment_queries_are_422(platform, query):
    r = case_roles(platform)["bureau"].get(f"/api/v1/supervision/assessment?{query}")
    assert r.status_code == 422 and r.headers["Content-Type"].startswith("application/problem")


def test_a_past_period_can_be_asked_for(platform):
    bureau = case_roles(platform)["bureau"]
    last_year = (datetime.now(UTC) - timedelta(days=366)).year
    r = bureau.get(f"/api/v1/supervision/assessment?period=year&at={last_year}").json()
    assert r["period"]["key"] == str(last_year) and r["rows"] == []

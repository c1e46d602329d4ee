"""A lead Taicang hands over that Jiading does not decide on in time: Jiading issues a reminder
(提示单) past the response limit, then escalates (督办) past the next, each once, and the handover
goes to Jiading's supervision ladder (a supervision order until it is decided); Taicang sees both
on its lead."""

from datetime import UTC, datetime, timedelta

import pytest
from support import JIADING, lead_body, unique_point, wait_for

pytestmark = pytest.mark.integration


def _received(platform, lead_id):
    return platform.scalar("jiading", "SELECT id FROM leads.leads WHERE origin_lead_id = :o",
                           o=lead_id)


def test_an_undecided_handover_is_reminded_then_escalated_and_the_sender_sees_it(platform):
    source = platform.client("taicang", "Overdue Test Sanitation 环卫", "source")
    bureau = platform.client("taicang", "Overdue Test Bureau 太仓局", "bureau")
    lead = source.post("/api/v1/leads", lead_body(point=unique_point(JIADING, 130),
                                                  category="illegal_dumping")).json()
    theirs = str(wait_for(lambda: _received(platform, lead["id"]), what="the handover"))
    t0 = datetime.now(UTC)

    def scan(minutes: float) -> int:
        at = (t0 + timedelta(minutes=minutes)).isoformat()
        return platform.rpc("jiading", "leads", "scan_handovers_at", at)

    scan(60)  # within the 4 h limit: nothing
    assert platform.scalar("jiading", "SELECT overdue_level FROM leads.leads WHERE id = :i",
                           i=theirs) == 0
    scan(5 * 60)  # past the response limit: a reminder
    scan(5 * 60)  # the same instant again: nothing new
    assert platform.scalar("jiading", "SELECT overdue_level FROM leads.leads WHERE id = :i",
                           i=theirs) == 1
    scan(9 * 60)  # past the escalation limit
    scan(12 * 60)  # and later: nothing new
    history = [h["action"] for h in platform.client(
        "jiading", "Overdue Test Jiading Bureau 嘉定局", "bureau").get(
        f"/api/v1/leads/{theirs}").json()["history"]]
    assert history.count("handover_reminder") == 1 and history.count("handover_escalation") == 1

    def seen_in_taicang():
        view = bureau.get(f"/api/v1/leads/{lead['id']}").json()
        return view if view["handover"]["overdue_level"] == 2 else None

    view = wait_for(seen_in_taicang, what="Taicang to see the escalation")
    actions = [h["action"] for h in view["history"]]
    assert actions.count("partner_reminder") == 1 and actions.count("partner_escalation") == 1
    assert view["handover"]["status"] == "received"  # still waiting for Jiading's decision

    # the escalation put it on Jiading's supervision ladder: one order, open until decided
    jd_bureau = platform.client("jiading", "Overdue Test Jiading Bureau 嘉定局", "bureau")

    def order(status):
        items = jd_bureau.get("/api/v1/supervision/handover-orders",
                              params={"status": status}).json()["items"]
        return next((o for o in items if o["lead_id"] == theirs), None)
    opened = wait_for(lambda: order("open"), what="the supervision order in Jiading")
    assert (opened["origin_city"], opened["origin_lead_id"]) == ("taicang", lead["id"])
    assert platform.scalar("jiading", "SELECT count(*) FROM supervision.handover_orders "
                                      "WHERE lead_id = :i", i=theirs) == 1
    r = jd_bureau.post(f"/api/v1/leads/{theirs}/decision",
                       {"decision": "accept", "reason": "督办后受理"})
    assert r.status_code == 200, r.text
    closed = wait_for(lambda: order("closed"), what="the order closed by the decision")
    assert closed["outcome"] == "accepted" and closed["closed_at"]

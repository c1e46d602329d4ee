"""The five cities together, playing the demo day (DOMAIN.md steps 1-4, and the case of
step 2 through supervision to closure)."""

import pytest
import requests
from support import CityPlatform, isolated_site

from contracts.reference import CITY_CODES
from liandong import demo

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

E2E_SITE = isolated_site("e2e", 3000)


@pytest.fixture(scope="module")
def five_cities():
    p = CityPlatform(E2E_SITE, CITY_CODES)
    p.start()
    yield p
    p.stop()


def test_all_five_gateways_serve(five_cities):
    for city in CITY_CODES:
        r = requests.get(f"{five_cities.url(city)}/readyz", timeout=5)
        assert r.json() == {"ready": True, "checks": {"database": "ok", "broker": "ok"}}
        health = requests.get(f"{five_cities.url(city)}/healthz", timeout=5).json()
        assert health["city"] == city


@pytest.fixture(scope="module")
def demo_day(five_cities, tmp_path_factory):
    """The demo day played once; its keys file and what `play` returned."""
    keys_file = tmp_path_factory.mktemp("demo") / "keys.json"
    keys = demo.ensure_keys(E2E_SITE, keys_file)
    return keys_file, keys, demo.play(E2E_SITE, keys, out=lambda *_: None)


def test_demo_day_lead_part(five_cities, demo_day):
    keys_file, keys, out = demo_day
    assert len(keys) == len(demo.DEMO_ORGS)

    first, merged = out["first"], out["merged"]
    assert (first["status"], first["city"], first["squad"]) == ("routed", "taicang",
                                                                "taicang-chengxiang")
    assert merged["status"] == "merged" and merged["duplicate_of"] == first["id"]

    accepted = out["accepted"]
    assert accepted["status"] == "accepted"
    assert [h["action"] for h in accepted["history"]] == ["submitted", "duplicate_merged",
                                                          "accept"]
    handed = out["handed_over"]
    assert (handed["status"], handed["to_city"]) == ("handed_over", "jiading")

    # Taicang's record of the handover carries the outbound event for the bridge
    assert five_cities.scalar("taicang", "SELECT count(*) FROM leads.outbox "
                                         "WHERE type = 'lead.handed_over' AND subject = :s",
                              s=handed["id"]) == 1
    # ... which the bridge carried to Jiading, whose bureau accepted it; Taicang follows it
    across = out["across"]
    assert across["jiading_lead"]["origin_lead_id"] == handed["id"]
    assert across["jiading_lead"]["squad"].startswith("jiading-")
    assert across["taicang_view"]["handover"]["status"] in ("accepted", "case_opened", "closed")
    assert across["taicang_view"]["handover"]["partner_lead_id"] == across["jiading_lead"]["id"]
    reports = [h["action"] for h in across["taicang_view"]["history"]]
    assert "partner_received" in reports and "partner_accepted" in reports
    # keys are reused by a second run (the demo can be replayed)
    assert demo.ensure_keys(E2E_SITE, keys_file) == keys


def test_demo_day_case_part(five_cities, demo_day):
    """Step 2 continued: the accepted lead's case through reminder, order, feedback with
    evidence, evaluation and closure, every step in the tamper-evident record."""
    _, _, out = demo_day
    result = out["case"]
    case = result["case"]
    assert result["time_shifted"] is True  # CLOCK_CONTROL is on in test platforms
    assert case["status"] == "closed" and case["close_mode"] == "evaluated"
    assert case["lead_id"] == out["first"]["id"]
    assert case["squad"] in ("taicang-chengxiang", "taicang-kejiaoxincheng")
    assert case["penalty"]["decision"] == "no_penalty"  # first minor violation, corrected
    assert [n["kind"] for n in sorted(result["notices"], key=lambda n: n["id"])] == [
        "reminder", "order"]
    actions = [h["action"] for h in result["history"]]
    for step in ("opened", "accept", "notice_issued", "order_answered", "feedback", "evaluate",
                 "closed", "deadline_closed"):
        assert step in actions, step
    review = result["loop"]["loop"][4]["items"][0]
    assert review["on_time"] is False and review["orders"] == 1  # fixed after the order
    record = result["record"]
    assert all(e["proof"]["valid"] and e["proof"]["prev_link"] for e in record["entries"])
    assert len(record["entries"]) == len(result["history"])
    # the clocks are back to real time after the demo
    now = five_cities.rpc("taicang", "cases", "set_clock", None)
    assert now["offset_seconds"] == 0 and not now["frozen"]


def test_demo_day_night_truck(five_cities, demo_day):
    """Step 4: a Kunshan-permitted truck leaves its corridor and stops eight minutes in a field
    in Taicang: Taicang raises route-deviation and suspected-dumping alerts, leads open in
    Taicang, and Kunshan (the issuer) is told through the bridge."""
    _, _, out = demo_day
    truck = out["truck"]
    assert {a["kind"] for a in truck["alerts"]} >= {"route_deviation", "unapproved_stop"}
    assert all(a["city"] == "taicang" and a["permit_city"] == "kunshan"
               for a in truck["alerts"] if a["kind"] != "city_crossing")
    categories = {lead["category"] for lead in truck["leads"]}
    assert {"illegal_dumping", "construction_waste"} <= categories
    assert all(lead["city"] == "taicang" for lead in truck["leads"])
    told = {a["kind"] for a in truck["kunshan_alerts"]}
    assert {"route_deviation", "unapproved_stop"} <= told
    assert all(a["detail"]["reported_by"] == "taicang" for a in truck["kunshan_alerts"])


def test_demo_day_zero_hour_action(five_cities, demo_day):
    """Step 5: Taicang's 零点行动 with Jiading and Baoshan: teams committed through the bridge,
    three checkpoint reports, each violation a case in the city where it happened, and an
    after-action report whose figures reconcile with those cases."""
    _, _, out = demo_day
    joint = out["joint"]
    report = joint["report"]
    assert report["status"] == "reported"
    totals = report["totals"]
    assert (totals["reports"], totals["vehicles_checked"], totals["violations"],
            totals["cases_opened"]) == (3, 46, 3, 3)
    here = {c["city"]: c["cases_here"] for c in report["by_city"]}
    assert here == {"taicang": 2, "jiading": 1, "baoshan": 0}
    for v in report["violations"]:
        assert v["handled_by"] == v["city"]  # a case where it happened, whoever found it
        assert five_cities.scalar(v["city"], "SELECT count(*) FROM cases.cases "
                                             "WHERE case_no = :n", n=v["case_no"]) == 1
    # the partners' copies followed the plan to its end
    for city in ("jiading", "baoshan"):
        assert five_cities.scalar(city, "SELECT status FROM jointops.operations WHERE id = :i",
                                  i=joint["operation_id"]) == "reported"
    # the jointops clocks were given back
    assert five_cities.rpc("taicang", "jointops", "set_clock", None)["frozen"] is False

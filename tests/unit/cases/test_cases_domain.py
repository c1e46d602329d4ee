"""Case rules without a broker: numbering, assignment by zone and load, steps, penalties."""

from datetime import UTC, datetime, timedelta

import pytest

from contracts.errors import Conflict, Forbidden, InvalidInput
from contracts.reference import CATEGORY_CODES
from services.cases import domain
from services.common.geo import SquadZones
from services.common.inputs import require_role

T0 = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
ALL = frozenset(CATEGORY_CODES)
CX = domain.Squad("taicang-chengxiang", "城厢镇", ALL, frozenset({"taicang-kejiaoxincheng"}))
KJ = domain.Squad("taicang-kejiaoxincheng", "科教新城", ALL, frozenset({"taicang-chengxiang"}))
SX = domain.Squad("taicang-shaxi", "沙溪镇", ALL)
PORT = domain.Squad("taicang-gangqu", "港区", frozenset({"construction_waste"}))
SQUADS = [CX, KJ, SX, PORT]


def test_case_numbers_are_readable_per_city_and_year():
    assert domain.case_number("taicang", 2026, 123) == "TC-2026-000123"
    assert domain.case_number("jiading", 2027, 1) == "JD-2027-000001"
    # the year is Shanghai's: 31 Dec 16:30 UTC is already 1 Jan there
    assert domain.numbering_year(datetime(2026, 12, 31, 16, 30, tzinfo=UTC)) == 2027


def test_assignment_prefers_the_least_loaded_squad_working_the_zone():
    choice = domain.choose_squad(SQUADS, {"taicang-chengxiang": 3, "taicang-kejiaoxincheng": 1},
                                 "exposed_garbage", "taicang-chengxiang")
    assert choice.squad == KJ
    assert "zone taicang-chengxiang" in choice.reason and "(1)" in choice.reason


def test_ties_go_to_the_zone_owner_and_other_zones_are_not_local():
    assert domain.choose_squad(SQUADS, {}, "exposed_garbage", "taicang-kejiaoxincheng").squad == KJ
    assert domain.choose_squad(SQUADS, {"taicang-shaxi": 9}, "exposed_garbage",
                               "taicang-shaxi").squad == SX  # only squad of that zone


def test_a_squad_that_does_not_take_the_category_is_passed_over_city_wide():
    choice = domain.choose_squad(SQUADS, {"taicang-shaxi": 2, "taicang-chengxiang": 5},
                                 "construction_waste", "taicang-gangqu")
    assert choice.squad == PORT
    no_taker = [domain.Squad("x", None, frozenset({"street_vending"}))]
    choice = domain.choose_squad(no_taker, {}, "illegal_dumping", "x")
    assert choice.squad is None and "no active squad" in choice.reason
    # outside every zone (no zone squad): city-wide balance
    choice = domain.choose_squad(SQUADS, {"taicang-chengxiang": 1, "taicang-kejiaoxincheng": 1},
                                 "exposed_garbage", None)
    assert choice.squad == SX and choice.reason.startswith("city-wide")


def test_inactive_and_excluded_squads_are_not_chosen():
    inactive = domain.Squad(KJ.code, KJ.town, ALL, KJ.covers, active=False)
    assert domain.choose_squad([CX, inactive], {"taicang-chengxiang": 8}, "exposed_garbage",
                               "taicang-chengxiang").squad == CX
    assert domain.choose_squad(SQUADS, {}, "exposed_garbage", "taicang-chengxiang",
                               exclude=frozenset({CX.code})).squad == KJ


def test_squads_seeded_from_demo_zones_with_overrides():
    rows = domain.squads_from_zones(SquadZones.demo("taicang"), {
        "taicang-chengxiang": {"covers": ["taicang-kejiaoxincheng"]}})
    by_code = {r["code"]: r for r in rows}
    assert len(rows) == 11 and by_code["taicang-chengxiang"]["town_zh"] == "城厢镇"
    assert by_code["taicang-chengxiang"]["covers"] == ["taicang-kejiaoxincheng"]
    assert set(by_code["taicang-shaxi"]["categories"]) == ALL
    with pytest.raises(ValueError, match="unknown categories"):
        domain.squads_from_zones(SquadZones.demo("taicang"),
                                 {"taicang-shaxi": {"categories": ["noise"]}})


def new_case(squad=CX, **lead) -> dict:
    lead = {"lead_id": "7c1e7c52-2f0e-4c0a-9d53-1b3a4c1f0a01", "category": "exposed_garbage",
            "origin_city": None, "origin_lead_id": None, **lead}
    choice = domain.Choice(squad, "test")
    return domain.new_case(case_id="c1", case_no="TC-2026-000001", city="taicang", lead=lead,
                           zone_squad="taicang-chengxiang", choice=choice, at=T0)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_the_full_path_with_a_failed_evaluation():
    s = new_case()
    assert (s["status"], s["version"], s["squad"]) == ("assigned", 1, "taicang-chengxiang")
    s = domain.accept(s, at(10))
    assert s["status"] == "in_progress" and s["rounds"][0]["started_at"] == at(10)
    s = domain.rectify(s, at(60), "cleaned", [{"uri": "u", "sha256": "a" * 64}], None, None)
    assert s["status"] == "rectified" and s["rounds"][0]["rectified_at"] == at(60)
    with pytest.raises(InvalidInput):
        domain.evaluate(s, at(70), "fail", "  ")  # a failure says why
    s = domain.evaluate(s, at(70), "fail", "still dirty")
    assert s["status"] == "in_progress"
    assert [r["passed"] for r in s["rounds"]] == [False, None]
    assert s["rounds"][1]["started_at"] == at(70)  # the new round's deadline starts now
    s = domain.rectify(s, at(100), "cleaned again", [{"uri": "u2", "sha256": "b" * 64}], None,
                       None)
    s = domain.evaluate(s, at(110), "pass", None)
    assert (s["status"], s["closed_at"], s["close_mode"]) == ("closed", at(110), "evaluated")
    assert s["version"] == 6  # one version per step


@pytest.mark.parametrize("step", ["accept", "rectify", "evaluate", "hold", "resume"])
def test_steps_out_of_order_are_conflicts(step):
    closed = domain.close(new_case(), at(5), "administrative", {"bureau"}, [], "dup", None, None)
    calls = {
        "accept": lambda s: domain.accept(s, at(9)),
        "rectify": lambda s: domain.rectify(s, at(9), "x", [], None, None),
        "evaluate": lambda s: domain.evaluate(s, at(9), "pass", None),
        "hold": lambda s: domain.hold(s, at(9), "someone"),
        "resume": lambda s: domain.resume(s, at(9)),
    }
    with pytest.raises(Conflict):
        calls[step](closed)


def test_on_the_spot_closes_in_one_step_with_evidence_by_a_squad():
    s = new_case()
    with pytest.raises(InvalidInput):
        domain.close(s, at(5), "on_the_spot", {"squad"}, [], "fixed", None, None)
    with pytest.raises(Forbidden):
        domain.close(s, at(5), "on_the_spot", {"bureau"}, [{"uri": "u", "sha256": "a" * 64}],
                     "fixed", None, None)
    s = domain.close(s, at(5), "on_the_spot", {"squad"}, [{"uri": "u", "sha256": "a" * 64}],
                     "fixed", None, None)
    assert (s["status"], s["close_mode"]) == ("closed", "on_the_spot")
    assert s["assignments"][0]["accepted_at"] == at(5)
    assert s["rounds"] == [{"round": 1, "squad": CX.code, "started_at": at(5),
                            "rectified_at": at(5), "evaluated_at": at(5), "passed": True,
                            "cancelled_at": None}]


def test_reassign_and_transfer_start_a_new_assignment():
    s = domain.accept(new_case(), at(5))
    with pytest.raises(InvalidInput):
        domain.reassign(s, at(6), CX, "transferred")  # already there
    s = domain.reassign(s, at(6), KJ, "transferred")
    assert (s["status"], s["squad"], s["town"]) == ("assigned", KJ.code, "科教新城")
    assert s["rounds"][0]["cancelled_at"] == at(6)  # CX's round ends unfinished
    assert [a["kind"] for a in s["assignments"]] == ["auto", "transferred"]
    unassigned = new_case(squad=None)
    assert unassigned["status"] == "unassigned"
    with pytest.raises(Conflict):
        domain.reassign(unassigned, at(7), SX, "transferred")  # nothing to transfer
    s = domain.reassign(unassigned, at(7), SX, "reassigned")
    assert s["status"] == "assigned" and s["assignments"][0]["n"] == 1


def test_hold_and_resume():
    s = domain.hold(domain.accept(new_case(), at(5)), at(10), "住建局 housing bureau")
    assert domain.held(s)["party"] == "住建局 housing bureau"
    with pytest.raises(Conflict):
        domain.hold(s, at(11), "again")
    s = domain.resume(s, at(20))
    assert s["holds"] == [{"since": at(10), "until": at(20), "party": "住建局 housing bureau"}]
    s = domain.hold(s, at(30), "police")
    s = domain.rectify(s, at(40), "done", [], None, None)  # reporting ends the wait
    assert s["holds"][-1]["until"] == at(40)


RULES = domain.load_penalty_rules()


def test_penalty_rules_are_data_and_complete():
    assert RULES.version and "DEMO" in RULES.notice
    for category in CATEGORY_CODES:
        for severity in domain.SEVERITY_ORDER:
            assert any(r["category"] == category and r["severity"] == severity
                       for r in RULES.penalties), (category, severity)


def test_first_minor_violation_corrected_in_time_is_not_penalised():
    finding = {"severity": "minor", "first_offence": True, "corrected": True}
    p = domain.suggest_penalty(RULES, "street_vending", finding)
    assert p["decision"] == "no_penalty" and p["rule_id"] == "street_vending.first-minor"
    assert "首违不罚" in p["explanation"]


@pytest.mark.parametrize("finding", [
    {"severity": "minor", "first_offence": False, "corrected": True},
    {"severity": "minor", "first_offence": True, "corrected": False},
    {"severity": "ordinary", "first_offence": True, "corrected": True},
])
def test_otherwise_the_discretionary_range_is_suggested(finding):
    p = domain.suggest_penalty(RULES, "street_vending", finding)
    assert p["decision"] == "penalty"
    assert p["min_yuan"] <= p["suggested_yuan"] <= p["max_yuan"]
    assert p["rule_id"] == f"street_vending.{finding['severity']}"
    assert "yuan" in p["explanation"]


def test_no_penalty_list_does_not_cover_dumping_and_no_finding_suggests_nothing():
    p = domain.suggest_penalty(RULES, "illegal_dumping",
                               {"severity": "minor", "first_offence": True, "corrected": True})
    assert p["decision"] == "penalty"
    assert domain.suggest_penalty(RULES, "illegal_dumping", None)["decision"] == "no_finding"


def test_a_penalty_table_with_a_bad_rule_is_refused(tmp_path):
    import json

    bad = {"version": "x", "penalties": [{"id": "a", "category": "street_vending",
                                          "severity": "minor", "min_yuan": 10, "max_yuan": 20,
                                          "suggested_yuan": 30}], "no_penalty": []}
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="outside its range"):
        domain.load_penalty_rules(path)


def test_role_checks():
    with pytest.raises(Forbidden):
        require_role({"roles": ["source"]}, domain.READ_ROLES, "see cases")
    require_role({"roles": ["squad"]}, domain.SQUAD_ROLES, "accept")

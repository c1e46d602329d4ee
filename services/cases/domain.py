"""Case rules without I/O: numbering, assignment by zone and load, the steps of a case and the
discretionary-penalty suggestion.

A case's state is a plain dict (see `new_case`); every step is a function that checks the step is
allowed and returns the changed state, or raises `Conflict`/`InvalidInput` before anything is
written.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from contracts.errors import Conflict, Forbidden, InvalidInput
from contracts.http.cases import (  # noqa: F401  (role sets live with the HTTP contract)
    CLOSE_ROLES,
    EVALUATE_ROLES,
    HOLD_ROLES,
    READ_ROLES,
    REASSIGN_ROLES,
    SQUAD_ROLES,
)
from contracts.reference import CATEGORY_CODES, CITIES
from services.common.workcal import SHANGHAI

OPEN_STATUSES = ("unassigned", "assigned", "in_progress", "rectified")
DATA_DIR = Path(__file__).resolve().parent / "data"


# numbering ---------------------------------------------------------------------------------

def case_number(city: str, year: int, n: int) -> str:
    """`TC-2026-000123`: city abbreviation, year of opening (Asia/Shanghai), counter."""
    return f"{CITIES[city].abbrev}-{year}-{n:06d}"


def numbering_year(at: datetime) -> int:
    return at.astimezone(SHANGHAI).year


# squads and assignment ---------------------------------------------------------------------

@dataclass(frozen=True)
class Squad:
    code: str
    town: str | None
    categories: frozenset[str]
    covers: frozenset[str] = frozenset()
    active: bool = True

    def can_take(self, category: str) -> bool:
        return self.active and category in self.categories

    def works_zone(self, zone_squad: str | None) -> bool:
        return zone_squad is not None and (self.code == zone_squad or zone_squad in self.covers)


@dataclass(frozen=True)
class Choice:
    squad: Squad | None
    reason: str


def choose_squad(squads: list[Squad], loads: dict[str, int], category: str,
                 zone_squad: str | None, exclude: frozenset[str] = frozenset()) -> Choice:
    """The squad for a case: among the squads that work the place's zone and take the category,
    the one with the fewest open cases (ties: the zone's own squad, then by code); when none
    there, the same over the whole city; else none (the case waits unassigned)."""
    able = [s for s in squads if s.can_take(category) and s.code not in exclude]
    local = [s for s in able if s.works_zone(zone_squad)]

    def rank(s: Squad):
        return (loads.get(s.code, 0), s.code != zone_squad, s.code)

    for pool, where in ((local, f"zone {zone_squad}"), (able, "city-wide")):
        if pool:
            best = min(pool, key=rank)
            among = ", ".join(f"{s.code} ({loads.get(s.code, 0)})" for s in sorted(pool, key=rank))
            return Choice(best, f"{where}: fewest open cases among {among}")
    return Choice(None, f"no active squad takes {category}")


def squads_from_zones(zones, overrides: dict[str, Any] | None = None) -> list[dict]:
    """Squad rows seeded from a city's squad zones; `overrides` (data/squads.json) narrows
    categories or adds zones a squad also works. Every squad takes every category unless said."""
    overrides = overrides or {}
    rows = []
    for z in zones:
        o = overrides.get(z.squad, {})
        categories = o.get("categories", list(CATEGORY_CODES))
        unknown = set(categories) - set(CATEGORY_CODES)
        if unknown:
            raise ValueError(f"squad {z.squad}: unknown categories {sorted(unknown)}")
        rows.append({"code": z.squad, "name_zh": z.name_zh, "name_en": z.name_en,
                     "town_zh": z.town_zh, "town_en": z.town_en, "categories": categories,
                     "covers": list(o.get("covers", [])), "active": True, "demo": z.demo})
    return rows


# steps -------------------------------------------------------------------------------------



def _require_status(state: dict, allowed: tuple[str, ...], action: str) -> None:
    if state["status"] not in allowed:
        raise Conflict(f"case {state['case_no']} is {state['status']}; cannot {action}",
                       {"status": [state["status"]]})


def new_case(*, case_id: str, case_no: str, city: str, lead: dict, zone_squad: str | None,
             choice: Choice, at: datetime) -> dict:
    squad = choice.squad
    assignments = [] if squad is None else [{
        "n": 1, "squad": squad.code, "town": squad.town, "kind": "auto", "at": at,
        "accepted_at": None}]
    return {
        "case_id": case_id, "case_no": case_no, "city": city, "version": 1,
        "status": "assigned" if squad else "unassigned",
        "category": lead["category"], "squad": squad.code if squad else None,
        "town": squad.town if squad else None, "zone_squad": zone_squad,
        "lead_id": str(lead["lead_id"]), "origin_city": lead.get("origin_city"),
        "origin_lead_id": _str(lead.get("origin_lead_id")), "opened_at": at,
        "closed_at": None, "close_mode": None, "assignments": assignments, "rounds": [],
        "holds": [], "feedback": None, "penalty": None,
    }


def _next(state: dict) -> dict:
    s = copy.deepcopy(state)
    s["version"] += 1
    return s


def _end_hold(s: dict, at: datetime) -> None:
    if s["holds"] and s["holds"][-1]["until"] is None:
        s["holds"][-1]["until"] = at


def held(state: dict) -> dict | None:
    return state["holds"][-1] if state["holds"] and state["holds"][-1]["until"] is None else None


def accept(state: dict, at: datetime) -> dict:
    _require_status(state, ("assigned",), "accept")
    s = _next(state)
    s["assignments"][-1]["accepted_at"] = at
    s["rounds"].append(_round(len(s["rounds"]) + 1, s["squad"], at))
    s["status"] = "in_progress"
    return s


def _round(n: int, squad: str, at: datetime) -> dict:
    return {"round": n, "squad": squad, "started_at": at, "rectified_at": None,
            "evaluated_at": None, "passed": None, "cancelled_at": None}


def rectify(state: dict, at: datetime, summary: str, evidence: list, finding: dict | None,
            penalty: dict | None) -> dict:
    _require_status(state, ("in_progress",), "report a rectification")
    s = _next(state)
    _end_hold(s, at)
    s["rounds"][-1]["rectified_at"] = at
    s["status"] = "rectified"
    s["feedback"] = {"round": s["rounds"][-1]["round"], "summary": summary,
                     "evidence": evidence, "finding": finding, "at": at}
    s["penalty"] = penalty
    return s


def evaluate(state: dict, at: datetime, result: str, comment: str | None) -> dict:
    _require_status(state, ("rectified",), "evaluate")
    if result == "fail" and not (comment or "").strip():
        raise InvalidInput("a failed evaluation needs a comment saying what is wrong",
                           {"comment": ["required when the result is fail"]})
    s = _next(state)
    current = s["rounds"][-1]
    current["evaluated_at"] = at
    current["passed"] = result == "pass"
    if result == "pass":
        s["status"] = "closed"
        s["closed_at"] = at
        s["close_mode"] = "evaluated"
    else:  # back to the squad for another round, with a new deadline (supervision sets it)
        s["status"] = "in_progress"
        s["rounds"].append(_round(current["round"] + 1, s["squad"], at))
    return s


def reassign(state: dict, at: datetime, squad: Squad, kind: str) -> dict:
    allowed = ("unassigned", "assigned", "in_progress") if kind == "reassigned" else (
        "assigned", "in_progress")
    _require_status(state, allowed, "reassign" if kind == "reassigned" else "transfer")
    if squad.code == state["squad"]:
        raise InvalidInput(f"the case is already with {squad.code}",
                           {"squad": ["choose another squad"]})
    s = _next(state)
    _end_hold(s, at)
    if s["rounds"] and s["rounds"][-1]["rectified_at"] is None and s["status"] == "in_progress":
        s["rounds"][-1]["cancelled_at"] = at  # the new squad starts its own round on acceptance
    s["assignments"].append({"n": len(s["assignments"]) + 1, "squad": squad.code,
                             "town": squad.town, "kind": kind, "at": at, "accepted_at": None})
    s["squad"], s["town"], s["status"] = squad.code, squad.town, "assigned"
    return s


def close(state: dict, at: datetime, mode: str, caller_roles: set[str], evidence: list,
          summary: str, penalty: dict | None, finding: dict | None) -> dict:
    if mode == "on_the_spot":
        if "squad" not in caller_roles:
            raise Forbidden("only a squad closes a case on the spot",
                            {"roles": ["needs squad"]})
        _require_status(state, ("assigned", "in_progress"), "close on the spot")
        if not evidence:
            raise InvalidInput("closing on the spot needs evidence of the fix",
                               {"evidence": ["at least one item"]})
    else:
        if "bureau" not in caller_roles:
            raise Forbidden("only the bureau closes a case administratively",
                            {"roles": ["needs bureau"]})
        _require_status(state, OPEN_STATUSES, "close")
    s = _next(state)
    _end_hold(s, at)
    if mode == "on_the_spot":  # accepted, fixed and checked in one step (当场处置)
        if s["assignments"][-1]["accepted_at"] is None:
            s["assignments"][-1]["accepted_at"] = at
        if not s["rounds"] or s["rounds"][-1]["rectified_at"] is not None:
            s["rounds"].append(_round(len(s["rounds"]) + 1, s["squad"], at))
        s["rounds"][-1].update(rectified_at=at, evaluated_at=at, passed=True)
        s["feedback"] = {"round": s["rounds"][-1]["round"], "summary": summary,
                         "evidence": evidence, "finding": finding, "at": at}
        s["penalty"] = penalty
    elif s["rounds"] and s["rounds"][-1]["rectified_at"] is None:
        s["rounds"][-1]["cancelled_at"] = at
    s["status"], s["closed_at"], s["close_mode"] = "closed", at, mode
    return s


def hold(state: dict, at: datetime, party: str) -> dict:
    _require_status(state, ("assigned", "in_progress"), "wait on another party")
    if held(state):
        raise Conflict(f"case {state['case_no']} already waits on {held(state)['party']}",
                       {"status": ["held"]})
    s = _next(state)
    s["holds"].append({"since": at, "until": None, "party": party})
    return s


def resume(state: dict, at: datetime) -> dict:
    if not held(state):
        raise Conflict(f"case {state['case_no']} is not waiting on anyone",
                       {"status": ["not held"]})
    s = _next(state)
    _end_hold(s, at)
    return s


# penalties (行政处罚自由裁量基准, 首违免罚): data, not code --------------------------------------

SEVERITY_ORDER = {"minor": 0, "ordinary": 1, "serious": 2}


@dataclass(frozen=True)
class PenaltyRules:
    version: str
    notice: str
    penalties: list[dict] = field(default_factory=list)
    no_penalty: list[dict] = field(default_factory=list)


def load_penalty_rules(path: str | Path | None = None) -> PenaltyRules:
    doc = json.loads(Path(path or DATA_DIR / "penalty_rules.json").read_text(encoding="utf-8"))
    rules = PenaltyRules(doc["version"], doc.get("notice", ""), doc["penalties"],
                         doc["no_penalty"])
    for rule in rules.penalties + rules.no_penalty:
        if rule["category"] not in CATEGORY_CODES:
            raise ValueError(f"penalty rule {rule['id']}: unknown category {rule['category']}")
    for rule in rules.penalties:
        if not rule["min_yuan"] <= rule["suggested_yuan"] <= rule["max_yuan"]:
            raise ValueError(f"penalty rule {rule['id']}: suggested outside its range")
    return rules


def suggest_penalty(rules: PenaltyRules, category: str, finding: dict | None) -> dict:
    """The suggestion for what the squad found: no penalty for a first minor violation corrected
    in time where the no-penalty list names the category; else the discretionary range of the
    category and severity, explained."""
    if not finding:
        return {"decision": "no_finding", "rule_id": None, "min_yuan": None, "max_yuan": None,
                "suggested_yuan": None, "rules_version": rules.version,
                "explanation": "no violation finding reported; no penalty suggested"}
    severity = finding["severity"]
    for rule in rules.no_penalty:
        if (rule["category"] == category
                and SEVERITY_ORDER[severity] <= SEVERITY_ORDER[rule["max_severity"]]
                and (finding["first_offence"] or not rule["first_offence_only"])
                and (finding.get("corrected", True) or not rule["corrected_required"])):
            return {"decision": "no_penalty", "rule_id": rule["id"], "min_yuan": 0,
                    "max_yuan": 0, "suggested_yuan": 0, "rules_version": rules.version,
                    "explanation": f"{rule['explanation']} ({rule['basis']})"}
    for rule in rules.penalties:
        if rule["category"] == category and rule["severity"] == severity:
            return {"decision": "penalty", "rule_id": rule["id"], "min_yuan": rule["min_yuan"],
                    "max_yuan": rule["max_yuan"], "suggested_yuan": rule["suggested_yuan"],
                    "rules_version": rules.version,
                    "explanation": f"{rule['explanation']} ({rule['basis']})"}
    return {"decision": "no_finding", "rule_id": None, "min_yuan": None, "max_yuan": None,
            "suggested_yuan": None, "rules_version": rules.version,
            "explanation": f"no discretionary standard for {category}/{severity}; "
                           "decide case by case"}


def _str(value) -> str | None:
    return None if value is None else str(value)

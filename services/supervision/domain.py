"""Supervision rules without I/O: deadline policies, the deadlines a case has at each step, the
schedule of reminder (提示单), supervision order (督办单) and escalations (升级督办), and the
two-way assessment figures (双向考核).

Deadlines are derived from the latest snapshot of a case (`contracts.events.cases`), not from
the order in which events arrive: `plan_deadlines` says, for the case as it is now, which
deadlines exist, when each started, when it falls due and whether it has ended.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contracts.reference import CATEGORY_CODES
from services.common.workcal import SHANGHAI, WorkCalendar

DATA_DIR = Path(__file__).resolve().parent / "data"
UNITS = ("working_hours", "working_days")


# policies ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Limit:
    value: float
    unit: str  # working_hours | working_days

    @classmethod
    def parse(cls, text: str) -> Limit:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s+(working_hours|working_days)\s*", str(text))
        if not m or float(m.group(1)) <= 0:
            raise ValueError(f"bad limit {text!r}: expected e.g. '2 working_hours' or "
                             "'3 working_days'")
        return cls(float(m.group(1)), m.group(2))

    def hours(self, calendar: WorkCalendar) -> float:
        return self.value * (calendar.day_hours if self.unit == "working_days" else 1.0)

    def __str__(self) -> str:
        return f"{self.value:g} {self.unit}"


@dataclass(frozen=True)
class Policy:
    """Deadline policy of a category (限时督办标准)."""

    category: str
    response: Limit  # from assignment to the squad's acceptance
    disposal: Limit  # from acceptance to the feedback (限期整改)
    rework: Limit  # a new round after a failed evaluation
    reminder_share: float  # the reminder notice at this share of the limit
    escalate_after: Limit  # after the order, each further level after this much more
    max_level: int  # 1: order only; 2, 3: escalation levels
    pause_on_hold: bool  # the clock stops while the case waits on another party

    def to_doc(self) -> dict:
        return {"category": self.category, "response": str(self.response),
                "disposal": str(self.disposal), "rework": str(self.rework),
                "reminder_share": self.reminder_share,
                "escalate_after": str(self.escalate_after), "max_level": self.max_level,
                "pause_on_hold": self.pause_on_hold}


POLICY_FIELDS = ("response", "disposal", "rework", "reminder_share", "escalate_after",
                 "max_level", "pause_on_hold")


def _policy(category: str, values: dict) -> Policy:
    unknown = set(values) - set(POLICY_FIELDS)
    if unknown:
        raise ValueError(f"{category}: unknown policy fields {sorted(unknown)}")
    share = float(values["reminder_share"])
    if not 0 < share <= 1:
        raise ValueError(f"{category}: reminder_share must be in (0, 1]")
    level = int(values["max_level"])
    if not 1 <= level <= 5:
        raise ValueError(f"{category}: max_level must be 1..5")
    return Policy(category, Limit.parse(values["response"]), Limit.parse(values["disposal"]),
                  Limit.parse(values["rework"]), share, Limit.parse(values["escalate_after"]),
                  level, bool(values["pause_on_hold"]))


def load_policies(override_file: str | None = None) -> dict[str, Policy]:
    """The shipped defaults (data/deadline_policies.json), then a deployment's file of the same
    format over them (`DEADLINE_POLICY_FILE`): `defaults` first, then per category."""
    docs = [json.loads((DATA_DIR / "deadline_policies.json").read_text(encoding="utf-8"))]
    if override_file:
        docs.append(json.loads(Path(override_file).read_text(encoding="utf-8")))
    defaults: dict[str, Any] = {}
    per_category: dict[str, dict] = defaultdict(dict)
    for doc in docs:
        defaults.update(doc.get("defaults", {}))
        for category, values in doc.get("categories", {}).items():
            if category not in CATEGORY_CODES:
                raise ValueError(f"deadline policy for unknown category {category!r}")
            per_category[category].update(values)
    return {c: _policy(c, {**defaults, **per_category[c]}) for c in CATEGORY_CODES}


# deadlines of a case -----------------------------------------------------------------------

@dataclass(frozen=True)
class Hold:
    since: datetime
    until: datetime | None


def as_time(value) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def elapsed_at(cal: WorkCalendar, start: datetime, hours: float, holds: list[Hold],
               pause: bool) -> datetime | None:
    """When `hours` of working time have run from `start`, not counting the time the case
    waited on another party if the policy pauses for it; None while paused before then."""
    if not pause:
        return cal.add(start, hours)
    t, remaining = start, hours
    for h in sorted(holds, key=lambda h: h.since):
        if h.until is not None and h.until <= t:
            continue
        candidate = cal.add(t, remaining)
        if h.since >= candidate:
            return candidate
        if h.since > t:
            remaining -= cal.between(t, h.since)
        if h.until is None:
            return None
        t = max(t, h.until)
    return cal.add(t, max(remaining, 0.0))


@dataclass(frozen=True)
class DeadlinePlan:
    kind: str  # response | disposal
    seq: int  # the assignment number, or the disposal round
    squad: str
    town: str | None
    started_at: datetime
    limit: Limit
    limit_hours: float
    due_at: datetime | None  # None while paused
    remind_at: datetime | None
    ended_at: datetime | None
    outcome: str | None  # None (pending) | met | cancelled

    @property
    def paused(self) -> bool:
        return self.due_at is None

    @property
    def late(self) -> bool:
        return bool(self.ended_at and self.due_at and self.ended_at > self.due_at)


def plan_deadlines(case: dict, policy: Policy, cal: WorkCalendar) -> list[DeadlinePlan]:
    """Every deadline the case has had, as of this snapshot:

    - `response` n: from assignment n to its acceptance (met); cancelled when the case moved to
      another squad first or was closed administratively; met by an on-the-spot closure;
    - `disposal` r: from the start of round r (acceptance, or the failed evaluation before it) to
      the feedback (met); cancelled when the round was abandoned (reassigned, closed).
    """
    holds = [Hold(as_time(h["since"]), as_time(h["until"])) for h in case.get("holds", [])]
    closed_at, mode = as_time(case.get("closed_at")), case.get("close_mode")
    towns = {a["squad"]: a.get("town") for a in case["assignments"]}
    plans = []
    assignments = sorted(case["assignments"], key=lambda a: a["n"])
    for i, a in enumerate(assignments):
        nxt = assignments[i + 1] if i + 1 < len(assignments) else None
        if a.get("accepted_at"):
            end, outcome = as_time(a["accepted_at"]), "met"
        elif nxt is not None:
            end, outcome = as_time(nxt["at"]), "cancelled"
        elif closed_at is not None:
            end, outcome = closed_at, "met" if mode == "on_the_spot" else "cancelled"
        else:
            end, outcome = None, None
        plans.append(_plan(cal, policy, "response", a["n"], a["squad"], a.get("town"),
                           as_time(a["at"]), policy.response, holds, end, outcome))
    for r in case.get("rounds", []):
        if r.get("rectified_at"):
            end, outcome = as_time(r["rectified_at"]), "met"
        elif r.get("cancelled_at"):
            end, outcome = as_time(r["cancelled_at"]), "cancelled"
        elif closed_at is not None:
            end, outcome = closed_at, "cancelled"
        else:
            end, outcome = None, None
        limit = policy.disposal if r["round"] == 1 else policy.rework
        plans.append(_plan(cal, policy, "disposal", r["round"], r["squad"],
                           towns.get(r["squad"]), as_time(r["started_at"]), limit, holds, end,
                           outcome))
    return plans


def _plan(cal, policy, kind, seq, squad, town, start, limit, holds, end, outcome):
    hours = limit.hours(cal)
    # a hold that began after the deadline ended does not concern it
    relevant = [h for h in holds if end is None or h.since < end]
    relevant = [replace(h, until=min(h.until or end, end) if end else h.until)
                for h in relevant]
    due = elapsed_at(cal, start, hours, relevant, policy.pause_on_hold)
    remind = (elapsed_at(cal, start, hours * policy.reminder_share, relevant,
                         policy.pause_on_hold) if policy.reminder_share < 1 else None)
    return DeadlinePlan(kind, seq, squad, town, start, limit, hours, due, remind, end, outcome)


# notices -----------------------------------------------------------------------------------

RECIPIENTS = {0: "squad 中队", 1: "squad 中队", 2: "bureau leadership 局分管领导",
              3: "bureau director 局主要领导", 4: "city government office 市政府督查室",
              5: "city government office 市政府督查室"}


def notice_title(kind: str, level: int) -> str:
    if kind == "reminder":
        return "提示单 Reminder notice"
    if kind == "order":
        return "督办单 Supervision order"
    return f"升级督办单 Escalated supervision order (level {level})"


def step_schedule(plan: DeadlinePlan, policy: Policy, cal: WorkCalendar,
                  holds: list[Hold]) -> list[dict]:
    """The notices a pending deadline will issue, in order: a reminder at the policy's share of
    the limit, the order when it falls due, then an escalation per level each `escalate_after`
    later (all in working time, paused with the deadline). `at` is None for steps that cannot
    be timed while the clock is paused."""
    steps = []
    if policy.reminder_share < 1:
        steps.append(("reminder", 0, plan.limit_hours * policy.reminder_share))
    steps.append(("order", 1, plan.limit_hours))
    for level in range(2, policy.max_level + 1):
        steps.append(("escalation", level,
                      plan.limit_hours + (level - 1) * policy.escalate_after.hours(cal)))
    out = []
    for kind, level, hours in steps:
        at = elapsed_at(cal, plan.started_at, hours, holds, policy.pause_on_hold)
        out.append({"kind": kind, "level": level, "at": None if at is None else _iso(at)})
    return out


def next_due(steps: list[dict], done: int) -> datetime | None:
    return as_time(steps[done]["at"]) if done < len(steps) else None


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


# assessment (双向考核) ------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    kind: str  # month | quarter | year
    key: str  # 2026-11 | 2026-Q4 | 2026
    start: datetime
    end: datetime


def period(kind: str, key: str | None, now: datetime) -> Period:
    """A calendar period in Asia/Shanghai; `key` None means the one holding `now`."""
    local = now.astimezone(SHANGHAI)
    if key is None:
        key = {"month": f"{local.year}-{local.month:02d}",
               "quarter": f"{local.year}-Q{(local.month - 1) // 3 + 1}",
               "year": f"{local.year}"}[kind]
    patterns = {"month": r"(\d{4})-(\d{2})", "quarter": r"(\d{4})-Q([1-4])", "year": r"(\d{4})"}
    m = re.fullmatch(patterns[kind], key)
    if not m:
        raise ValueError(f"{key!r} is not a {kind} (2026-11, 2026-Q4 or 2026)")
    year = int(m.group(1))
    if kind == "month":
        first = int(m.group(2))
        if not 1 <= first <= 12:
            raise ValueError(f"{key!r}: no such month")
        months = 1
    elif kind == "quarter":
        first, months = (int(m.group(2)) - 1) * 3 + 1, 3
    else:
        first, months = 1, 12
    start = datetime(year, first, 1, tzinfo=SHANGHAI)
    end_month = first + months
    end = datetime(year + (end_month - 1) // 12, (end_month - 1) % 12 + 1, 1, tzinfo=SHANGHAI)
    return Period(kind, key, start.astimezone(UTC), end.astimezone(UTC))


FIGURES = ("cases_opened", "cases_closed", "on_time", "on_time_rate", "avg_handling_hours",
           "p90_handling_hours", "overdue", "reopened", "reminders", "orders", "escalations")

DEFINITIONS = {
    "cases_opened": "cases opened in the period (by the case's current squad, its town, the "
                    "partner bureau that handed the lead over)",
    "cases_closed": "cases closed in the period",
    "on_time": "cases closed in the period none of whose deadlines ended or passed late",
    "on_time_rate": "on_time / cases_closed",
    "avg_handling_hours": "mean working hours from opening to closing, cases closed in the "
                          "period",
    "p90_handling_hours": "90th percentile (nearest rank) of the same",
    "overdue": "deadlines due in the period that were missed: ended after their due time, or "
               "still open past it (by the deadline's squad)",
    "reopened": "failed evaluations in the period, each sending a case back for a new round "
                "(by the squad of the failed round)",
    "reminders": "reminder notices (提示单) issued in the period (by the notice's squad)",
    "orders": "supervision orders (督办单) issued in the period",
    "escalations": "escalated supervision orders (升级督办) issued in the period",
}

NONE_GROUP = {"squad": "(unassigned)", "town": "(none)", "partner": "(local 本市)"}


def percentile_nearest_rank(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def assess(p: Period, by: str, now: datetime, cal: WorkCalendar, cases: list[dict],
           deadlines: list[dict], notices: list[dict]) -> tuple[list[dict], dict]:
    """Figures per group. `cases`: {case_id, squad, town, origin_city, opened_at, closed_at,
    rounds, assignments}; `deadlines`: {case_id, squad, town, origin_city, due_at, ended_at,
    status}; `notices`: {squad, town, origin_city, kind, issued_at}."""

    def within(t) -> bool:
        t = as_time(t)
        return t is not None and p.start <= t < p.end

    def key(row: dict) -> str:
        field = {"squad": "squad", "town": "town", "partner": "origin_city"}[by]
        return row.get(field) or NONE_GROUP[by]

    groups: dict[str, dict] = defaultdict(lambda: {
        "cases_opened": 0, "cases_closed": 0, "on_time": 0, "overdue": 0, "reopened": 0,
        "reminders": 0, "orders": 0, "escalations": 0, "_hours": []})
    late_cases = {d["case_id"] for d in deadlines if missed(d, now)}
    for c in cases:
        g = groups[key(c)]
        if within(c["opened_at"]):
            g["cases_opened"] += 1
        if within(c.get("closed_at")):
            g["cases_closed"] += 1
            g["on_time"] += c["case_id"] not in late_cases
            g["_hours"].append(cal.between(as_time(c["opened_at"]), as_time(c["closed_at"])))
        towns = {a["squad"]: a.get("town") for a in c.get("assignments", [])}
        for r in c.get("rounds", []):
            if r.get("passed") is False and within(r.get("evaluated_at")):
                row = {"squad": r["squad"], "town": towns.get(r["squad"]),
                       "origin_city": c.get("origin_city")}
                groups[key(row)]["reopened"] += 1
    for d in deadlines:
        if within(d["due_at"]) and missed(d, min(now, p.end)):
            groups[key(d)]["overdue"] += 1
    for n in notices:
        if within(n["issued_at"]):
            field = {"reminder": "reminders", "order": "orders",
                     "escalation": "escalations"}[n["kind"]]
            groups[key(n)][field] += 1

    def finish(name: str, g: dict) -> dict:
        hours = g.pop("_hours")
        closed = g["cases_closed"]
        return {"group": name, **g,
                "on_time_rate": round(g["on_time"] / closed, 4) if closed else None,
                "avg_handling_hours": round(sum(hours) / len(hours), 2) if hours else None,
                "p90_handling_hours": (round(percentile_nearest_rank(hours, 90), 2)
                                       if hours else None)}

    all_hours = [h for g in groups.values() for h in g["_hours"]]
    totals = {k: sum(g[k] for g in groups.values()) for k in (
        "cases_opened", "cases_closed", "on_time", "overdue", "reopened", "reminders",
        "orders", "escalations")}
    totals["_hours"] = all_hours
    rows = [finish(name, dict(g)) for name, g in sorted(groups.items())]
    rows = [r for r in rows if any(r[k] for k in ("cases_opened", "cases_closed", "overdue",
                                                   "reopened", "reminders", "orders",
                                                   "escalations"))]
    return rows, finish("TOTAL", totals)


def missed(d: dict, now: datetime) -> bool:
    due, ended = as_time(d.get("due_at")), as_time(d.get("ended_at"))
    if due is None:
        return False
    if ended is not None:
        return ended > due
    return d.get("status") == "pending" and now > due


def to_csv(rows: list[dict], totals: dict) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["group", *FIGURES])
    for r in [*rows, totals]:
        writer.writerow([r["group"], *("" if r[f] is None else r[f] for f in FIGURES)])
    return buf.getvalue()

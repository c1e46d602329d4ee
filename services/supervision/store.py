"""Reading and writing supervision data, applying the rules of `domain.py`.

- `follow`: a case event's snapshot → the case's deadlines (created, moved, ended), in one
  transaction with the events that announce them;
- `scan`: claim due deadlines (`FOR UPDATE SKIP LOCKED`, through the partial index on the next
  step's time) and issue their notices, each once (unique deadline + kind + level);
- orders answered and evaluated; the loop of a case; the assessment.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import UTC, datetime

from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Histogram
from sqlalchemy import and_, bindparam, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from contracts.envelope import Event
from contracts.errors import Conflict, InvalidInput, NotFound
from services.common.clock import Clock
from services.common.config import setting
from services.common.db import UnitOfWork, make_engine
from services.common.inputs import iso_utc, jsonable
from services.common.logging import get_logger
from services.common.pagination import page
from services.common.workcal import DEFAULT_PERIODS, WorkCalendar, parse_year
from services.supervision import domain
from services.supervision.models import (
    calendar_years,
    deadlines,
    handover_orders,
    notices,
    supervised_cases,
)

log = get_logger(__name__)

NOTICES_ISSUED = Counter("liandong_notices_issued_total", "Notices issued", ["kind"])
NOTICE_DELAY = Histogram(
    "liandong_notice_delay_seconds", "From a notice's scheduled time to its issue (real clock)",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600))
TICK_SECONDS = Histogram(
    "liandong_supervision_tick_seconds", "Duration of one due-scan tick",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
DEADLINE_STEPS = Counter("liandong_deadlines_total", "Deadlines set and ended", ["event"])

# Literal predicates, so the planner matches the partial index `ix_deadlines_due`.
PENDING_DUE = text("deadlines.status = 'pending' AND deadlines.next_at IS NOT NULL")
# Statements of the tick built once: only their parameters change (no compilation per notice).
ISSUE = (pg_insert(notices).on_conflict_do_nothing(constraint="uq_notices_once")
         .returning(notices.c.id))
ADVANCE = (update(deadlines).where(deadlines.c.id == bindparam("deadline_id"))
           .values(steps_done=bindparam("done"), next_at=bindparam("next"),
                   updated_at=func.now()))


class SupervisionRules(DependencyProvider):
    """Deadline policies (loaded once) and the working calendar (years loaded by operators are
    re-read every CALENDAR_REFRESH_SECONDS)."""

    def setup(self):
        self.policies = domain.load_policies(setting("DEADLINE_POLICY_FILE", "") or None)
        self.periods = setting("WORKING_PERIODS", DEFAULT_PERIODS)
        self.refresh = float(setting("CALENDAR_REFRESH_SECONDS", 60))
        self.batch = int(setting("SUPERVISION_BATCH", 500))
        self.replica = f"{socket.gethostname()}:{os.getpid()}"
        self.engine = make_engine(pool_size=1)
        self._calendar: WorkCalendar | None = None
        self._loaded_at = 0.0

    def stop(self):
        self.engine.dispose()

    def get_dependency(self, worker_ctx):
        return self

    def calendar(self) -> WorkCalendar:
        if self._calendar is None or time.monotonic() - self._loaded_at > self.refresh:
            with self.engine.connect() as conn:
                docs = conn.execute(select(calendar_years.c.schedule)).scalars().all()
            self.engine.dispose()  # no idle connection kept between refreshes
            years = {}
            for doc in docs:
                try:
                    schedule = parse_year(doc)
                    years[schedule.year] = schedule
                except ValueError as exc:  # loaded through the CLI, which validates; be safe
                    log.error("bad calendar year in the database; ignored", error=str(exc))
            self._calendar = WorkCalendar(self.periods, years)
            self._loaded_at = time.monotonic()
        return self._calendar




def _actor(caller: dict) -> str:
    return f"{caller['org_name']} ({caller['org_id']})"


class SupervisionStore:
    def __init__(self, db: UnitOfWork, clock: Clock, rules: SupervisionRules):
        self.db = db
        self.s = db.session
        self.clock = clock
        self.rules = rules

    # following cases ---------------------------------------------------------------------------
    def follow(self, event: Event) -> None:
        """Bring the case's deadlines in line with its latest snapshot; older snapshots (events
        that arrive after a later one) change nothing."""
        snap = jsonable(event.data["case"])
        case_id = snap["case_id"]
        self.s.execute(pg_insert(supervised_cases).values(
            case_id=case_id, case_no=snap["case_no"], category=snap["category"],
            status=snap["status"], opened_at=snap["opened_at"], version=0, snapshot={})
            .on_conflict_do_nothing())
        row = self.s.execute(select(supervised_cases.c.version).where(
            supervised_cases.c.case_id == case_id).with_for_update()).first()
        if snap["version"] <= row.version:
            log.info("older case snapshot ignored", case_no=snap["case_no"],
                     version=snap["version"], known=row.version)
            return
        self.s.execute(update(supervised_cases).where(supervised_cases.c.case_id == case_id)
                       .values(status=snap["status"], squad=snap["squad"], town=snap["town"],
                               origin_city=snap["origin_city"], closed_at=snap["closed_at"],
                               version=snap["version"], snapshot=snap, updated_at=text("now()")))
        policy = self.rules.policies[snap["category"]]
        cal = self.rules.calendar()
        holds = [domain.Hold(domain.as_time(h["since"]), domain.as_time(h["until"]))
                 for h in snap["holds"]]
        for plan in domain.plan_deadlines(snap, policy, cal):
            self._apply_plan(snap, plan, policy, cal, holds, event.trace_id)

    def _apply_plan(self, snap, plan: domain.DeadlinePlan, policy, cal, holds, trace_id) -> None:
        d = deadlines.c
        existing = self.s.execute(select(deadlines).where(
            d.case_id == snap["case_id"], d.kind == plan.kind, d.seq == plan.seq)
            .with_for_update()).first()
        if existing is not None and existing.status != "pending":
            return  # an ended deadline is final
        pending = plan.outcome is None
        steps = domain.step_schedule(plan, policy, cal, holds) if pending else []
        done = existing.steps_done if existing is not None else 0
        values = {"due_at": plan.due_at, "remind_at": plan.remind_at, "steps": steps,
                  "next_at": domain.next_due(steps, done) if pending else None,
                  "updated_at": text("now()")}
        if not pending:
            values.update(status=plan.outcome, ended_at=plan.ended_at, late=plan.late)
        if existing is None:
            deadline_id = self.s.execute(insert(deadlines).values(
                case_id=snap["case_id"], case_no=snap["case_no"], category=snap["category"],
                kind=plan.kind, seq=plan.seq, squad=plan.squad, town=plan.town,
                origin_city=snap["origin_city"], started_at=plan.started_at,
                limit_text=str(plan.limit), limit_hours=plan.limit_hours,
                **{"status": "pending", **values}).returning(deadlines.c.id)).scalar_one()
            self._deadline_set(snap, deadline_id, plan, "set", trace_id)
        else:
            deadline_id = existing.id
            self.s.execute(update(deadlines).where(d.id == deadline_id).values(**values))
            if existing.due_at != plan.due_at and pending:
                reason = ("paused" if plan.due_at is None else
                          "resumed" if existing.due_at is None else "rescheduled")
                self._deadline_set(snap, deadline_id, plan, reason, trace_id)
        if not pending:
            DEADLINE_STEPS.labels("closed").inc()
            self.db.emit("supervision.deadline_closed", snap["case_id"], {
                "case_id": snap["case_id"], "case_no": snap["case_no"], "squad": plan.squad,
                "origin_city": snap["origin_city"], "deadline_id": deadline_id,
                "kind": plan.kind, "seq": plan.seq, "outcome": plan.outcome,
                "ended_at": plan.ended_at, "due_at": plan.due_at, "late": plan.late,
                "working_hours": round(cal.between(plan.started_at, plan.ended_at), 4),
            }, trace_id=trace_id)

    def _deadline_set(self, snap, deadline_id, plan, reason, trace_id) -> None:
        DEADLINE_STEPS.labels("set").inc()
        self.db.emit("supervision.deadline_set", snap["case_id"], {
            "case_id": snap["case_id"], "case_no": snap["case_no"], "squad": plan.squad,
            "origin_city": snap["origin_city"], "deadline_id": deadline_id, "kind": plan.kind,
            "seq": plan.seq, "started_at": plan.started_at, "limit": str(plan.limit),
            "limit_hours": plan.limit_hours, "due_at": plan.due_at,
            "remind_at": plan.remind_at, "reason": reason,
        }, trace_id=trace_id)

    # the timer ---------------------------------------------------------------------------------
    def scan(self, at: datetime, case_id: str | None = None, limit: int | None = None) -> int:
        """Issue every notice due at `at` of up to `limit` deadlines; returns notices issued.
        Replicas scanning at once skip each other's claimed rows; the unique key on notices
        makes a second issue of the same step impossible anyway."""
        started = time.perf_counter()
        d = deadlines.c
        query = (select(d.id, d.case_id, d.case_no, d.kind, d.squad, d.town, d.origin_city,
                        d.due_at, d.steps, d.steps_done)
                 .where(PENDING_DUE, d.next_at <= at)
                 .order_by(d.next_at).limit(limit or self.rules.batch)
                 .with_for_update(skip_locked=True))
        if case_id is not None:
            query = query.where(d.case_id == case_id)
        issued = 0
        for row in self.s.execute(query).all():
            steps, done = row.steps, row.steps_done
            while done < len(steps):
                step_at = domain.next_due(steps, done)
                if step_at is None or step_at > at:
                    break
                issued += self._issue(row, steps[done], step_at, at)
                done += 1
            self.s.execute(ADVANCE, {"deadline_id": row.id, "done": done,
                                     "next": domain.next_due(steps, done)})
        TICK_SECONDS.observe(time.perf_counter() - started)
        return issued

    def _issue(self, row, step: dict, step_at: datetime, at: datetime) -> int:
        kind, level = step["kind"], step["level"]
        title = domain.notice_title(kind, level)
        recipient = domain.RECIPIENTS[level]
        notice_id = self.s.execute(ISSUE, {
            "deadline_id": row.id, "case_id": row.case_id, "case_no": row.case_no,
            "deadline_kind": row.kind, "kind": kind, "level": level, "title": title,
            "recipient": recipient, "squad": row.squad, "town": row.town,
            "origin_city": row.origin_city, "scheduled_at": step_at, "issued_at": at,
            "due_at": row.due_at, "status": "issued" if kind == "reminder" else "open",
            "issued_by": self.rules.replica}).scalar()
        if notice_id is None:
            return 0
        NOTICES_ISSUED.labels(kind).inc()
        NOTICE_DELAY.observe(max(0.0, (datetime.now(UTC) - step_at).total_seconds()))
        self.db.emit("supervision.notice_issued", row.case_id, {
            "case_id": row.case_id, "case_no": row.case_no, "squad": row.squad,
            "origin_city": row.origin_city, "notice_id": notice_id, "deadline_id": row.id,
            "deadline_kind": row.kind, "kind": kind, "level": level, "title": title,
            "recipient": recipient, "town": row.town, "issued_at": at, "due_at": row.due_at})
        log.info("notice issued", case_no=row.case_no, kind=kind, level=level,
                 deadline=row.kind)
        return 1

    # orders: answered by the squad, evaluated by a supervisor ----------------------------------
    def answer(self, caller: dict, notice_id: int, body: dict) -> dict:
        n = self._notice(notice_id, for_update=True)
        if n.kind == "reminder":
            raise Conflict("a reminder notice needs no answer; answer supervision orders",
                           {"kind": [n.kind]})
        if n.status != "open":
            raise Conflict(f"order {notice_id} is {n.status}; only an open order is answered",
                           {"status": [n.status]})
        at, actor = self.clock.now(), _actor(caller)
        answer = {"at": iso_utc(at), "actor": actor, "text": body["text"],
                  "evidence": body["evidence"]}
        self.s.execute(update(notices).where(notices.c.id == n.id).values(
            status="answered", answers=[*n.answers, answer]))
        self.db.emit("supervision.order_answered", n.case_id, {
            "case_id": n.case_id, "case_no": n.case_no, "squad": n.squad,
            "origin_city": n.origin_city, "notice_id": n.id, "actor": actor, "at": at,
            "text": body["text"], "evidence": body["evidence"]})
        return self.notice(notice_id)

    def evaluate(self, caller: dict, notice_id: int, body: dict) -> dict:
        if body["result"] == "unsatisfactory" and not (body.get("comment") or "").strip():
            raise InvalidInput("an unsatisfactory evaluation needs a comment",
                               {"comment": ["required when unsatisfactory"]})
        n = self._notice(notice_id, for_update=True)
        if n.status != "answered":
            raise Conflict(f"order {notice_id} is {n.status}; only an answered order is "
                           "evaluated", {"status": [n.status]})
        at, actor = self.clock.now(), _actor(caller)
        evaluation = {"at": iso_utc(at), "actor": actor, "result": body["result"],
                      "comment": body.get("comment")}
        self.s.execute(update(notices).where(notices.c.id == n.id).values(
            status="closed" if body["result"] == "satisfactory" else "open",
            evaluations=[*n.evaluations, evaluation]))
        self.db.emit("supervision.order_evaluated", n.case_id, {
            "case_id": n.case_id, "case_no": n.case_no, "squad": n.squad,
            "origin_city": n.origin_city, "notice_id": n.id, "actor": actor, "at": at,
            "result": body["result"], "comment": body.get("comment")})
        return self.notice(notice_id)

    # reading -----------------------------------------------------------------------------------
    def _notice(self, notice_id, for_update: bool = False):
        try:
            notice_id = int(notice_id)
        except (TypeError, ValueError):
            raise NotFound(f"notice {notice_id} not found") from None
        query = select(notices).where(notices.c.id == notice_id)
        if for_update:
            query = query.with_for_update()
        row = self.s.execute(query).first()
        if row is None:
            raise NotFound(f"notice {notice_id} not found")
        return row

    def notice(self, notice_id) -> dict:
        return _notice_view(self._notice(notice_id))

    def list_notices(self, query: dict) -> dict:
        n = notices.c
        conditions = [n[k] == query[k] for k in ("kind", "status", "squad") if k in query]
        if "case_id" in query:
            conditions.append(n.case_id == str(query["case_id"]))
        rows, cursor = page(self.s, notices, query, conditions)
        return {"items": [_notice_view(r) for r in rows], "next_cursor": cursor}

    # handovers left undecided (督办 before there is a case) ----------------------------------
    def order_for_handover(self, event: Event, now: datetime) -> None:
        """The receiving city's escalation of an undecided handover (level 2) puts it on this
        city's supervision ladder: one order per lead, to the bureau (and squad) deciding it."""
        d = event.data
        if d["level"] < 2 or d["city"] != setting("CITY"):
            return
        row = self.s.execute(pg_insert(handover_orders).values(
            lead_id=str(d["lead_id"]), origin_city=d["origin_city"],
            origin_lead_id=str(d["origin_lead_id"]), category=d["category"], squad=d["squad"],
            title="移交线索督办单 Supervision order: handover undecided",
            recipient=d["squad"] or "bureau", received_at=d["received_at"], issued_at=now,
            status="open").on_conflict_do_nothing().returning(handover_orders.c.id)).first()
        if row is not None:
            NOTICES_ISSUED.labels("handover_order").inc()
            log.info("handover supervision order issued", lead_id=str(d["lead_id"]),
                     origin_city=d["origin_city"], order_id=row.id)

    def close_handover_order(self, event: Event, outcome: str, now: datetime) -> None:
        d = event.data
        if not d.get("origin_city"):
            return  # not a handover: no order can be open for it
        self.s.execute(update(handover_orders).where(
            handover_orders.c.lead_id == str(d["lead_id"]),
            handover_orders.c.status == "open").values(status="closed", closed_at=now,
                                                      outcome=outcome))

    def list_handover_orders(self, query: dict) -> dict:
        h = handover_orders.c
        conditions = [h.status == query["status"]] if "status" in query else []
        rows, cursor = page(self.s, handover_orders, query, conditions)
        return {"items": [{
            "id": r.id, "lead_id": str(r.lead_id), "origin_city": r.origin_city,
            "origin_lead_id": str(r.origin_lead_id), "category": r.category, "squad": r.squad,
            "title": r.title, "recipient": r.recipient, "received_at": iso_utc(r.received_at),
            "issued_at": iso_utc(r.issued_at), "status": r.status,
            "closed_at": iso_utc(r.closed_at), "outcome": r.outcome} for r in rows],
            "next_cursor": cursor}

    def loop(self, case_id: str) -> dict:
        """The five-step loop of a case: assignment, deadline, feedback, evaluation, review."""
        try:
            case_id = str(uuid.UUID(str(case_id)))
        except ValueError:
            raise NotFound(f"case {case_id} not found") from None
        case = self.s.execute(select(supervised_cases).where(
            supervised_cases.c.case_id == case_id)).first()
        if case is None:
            raise NotFound(f"case {case_id} not supervised (yet)")
        snap = case.snapshot
        ds = self.s.execute(select(deadlines).where(deadlines.c.case_id == case_id)
                            .order_by(deadlines.c.id)).all()
        ns = self.s.execute(select(notices).where(notices.c.case_id == case_id)
                            .order_by(notices.c.id)).all()
        now = self.clock.now()
        orders = [r for r in ns if r.kind != "reminder"]
        late = [d for d in ds if domain.missed(d._mapping, now)]
        review_at = case.closed_at or now
        periods = {k: domain.period(k, None, review_at).key for k in ("month", "quarter", "year")}
        loop = [
            {"step": "assignment", "title": "平台交办 Platform assignment",
             "items": snap["assignments"]},
            {"step": "deadline", "title": "限期整改 Rectification within a deadline",
             "items": [{"kind": d.kind, "seq": d.seq, "squad": d.squad, "status": d.status,
                        "due_at": iso_utc(d.due_at), "late": d.late} for d in ds]},
            {"step": "feedback", "title": "平台反馈 Feedback on the platform",
             "items": [{"round": r["round"], "squad": r["squad"],
                        "rectified_at": r["rectified_at"]} for r in snap["rounds"]
                       if r.get("rectified_at")]
             + [{"order": o.id, **a} for o in orders for a in o.answers]},
            {"step": "evaluation", "title": "结果评估 Evaluation of the result",
             "items": [{"round": r["round"], "evaluated_at": r["evaluated_at"],
                        "passed": r["passed"]} for r in snap["rounds"] if r.get("evaluated_at")]
             + [{"order": o.id, **e} for o in orders for e in o.evaluations]},
            {"step": "review", "title": "定期调度 Periodic review",
             "items": [{"periods": periods, "status": case.status,
                        "on_time": not late if case.closed_at else None,
                        "late_deadlines": len(late),
                        "reminders": sum(r.kind == "reminder" for r in ns),
                        "orders": sum(r.kind == "order" for r in ns),
                        "escalations": sum(r.kind == "escalation" for r in ns)}]},
        ]
        return {"case_id": case_id, "case_no": case.case_no, "status": case.status,
                "squad": case.squad, "policy": self.rules.policies[case.category].to_doc(),
                "loop": loop, "deadlines": [_deadline_view(d) for d in ds],
                "notices": [_notice_view(r) for r in ns]}

    def assessment(self, query: dict, city: str) -> dict:
        now = self.clock.now()
        try:
            p = domain.period(query["period"], query.get("at"), now)
        except ValueError as exc:
            raise InvalidInput(str(exc), {"at": [str(exc)]}) from None
        sc, d, n = supervised_cases.c, deadlines.c, notices.c
        case_rows = self.s.execute(select(supervised_cases).where(
            sc.opened_at < p.end, or_(sc.closed_at.is_(None), sc.closed_at >= p.start))).all()
        cases = [{"case_id": r.case_id, "squad": r.squad, "town": r.town,
                  "origin_city": r.origin_city, "opened_at": r.opened_at,
                  "closed_at": r.closed_at, "rounds": r.snapshot.get("rounds", []),
                  "assignments": r.snapshot.get("assignments", [])} for r in case_rows]
        closed_ids = [c["case_id"] for c in cases
                      if c["closed_at"] is not None and p.start <= c["closed_at"] < p.end]
        deadline_rows = self.s.execute(select(
            d.case_id, d.squad, d.town, d.origin_city, d.due_at, d.ended_at, d.status)
            .where(or_(and_(d.due_at >= p.start, d.due_at < p.end),
                       d.case_id.in_(closed_ids)))).mappings().all()
        notice_rows = self.s.execute(select(n.squad, n.town, n.origin_city, n.kind, n.issued_at)
                                     .where(n.issued_at >= p.start, n.issued_at < p.end)
                                     ).mappings().all()
        rows, totals = domain.assess(p, query["by"], now, self.rules.calendar(), cases,
                                     [dict(r) for r in deadline_rows],
                                     [dict(r) for r in notice_rows])
        return {"city": city, "by": query["by"], "generated_at": iso_utc(now),
                "period": {"kind": p.kind, "key": p.key, "start": iso_utc(p.start),
                           "end": iso_utc(p.end)},
                "rows": rows, "totals": totals, "definitions": domain.DEFINITIONS}


def _deadline_view(d) -> dict:
    steps, done = d.steps, d.steps_done
    return {"id": d.id, "kind": d.kind, "seq": d.seq, "squad": d.squad, "status": d.status,
            "started_at": iso_utc(d.started_at), "limit": d.limit_text,
            "limit_hours": d.limit_hours, "remind_at": iso_utc(d.remind_at),
            "due_at": iso_utc(d.due_at), "paused": d.status == "pending" and d.due_at is None,
            "ended_at": iso_utc(d.ended_at), "late": d.late,
            "next_step": (f"{steps[done]['kind']}:{steps[done]['level']}"
                          if d.status == "pending" and done < len(steps) else None),
            "next_at": iso_utc(d.next_at)}


def _notice_view(r) -> dict:
    return {"id": r.id, "case_id": r.case_id, "case_no": r.case_no,
            "deadline_id": r.deadline_id, "deadline_kind": r.deadline_kind, "kind": r.kind,
            "level": r.level, "title": r.title, "recipient": r.recipient, "squad": r.squad,
            "town": r.town, "status": r.status, "issued_at": iso_utc(r.issued_at),
            "due_at": iso_utc(r.due_at), "answers": r.answers, "evaluations": r.evaluations}

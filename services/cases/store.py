"""Reading and writing cases in the service's schema, applying the rules of `domain.py`.

Every step commits in one transaction: the case row, its history entry, its entry in the
tamper-evident record and its event (outbox).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime

from nameko.extensions import DependencyProvider
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from contracts.envelope import Event
from contracts.errors import InvalidInput, NotFound
from services.cases import chain, domain
from services.cases.models import case_counters, case_history, cases, squads
from services.cases.record import RecordBook
from services.common.clock import Clock
from services.common.config import setting
from services.common.db import UnitOfWork, make_engine
from services.common.geo import SquadZones
from services.common.inputs import iso_utc, jsonable
from services.common.logging import get_logger
from services.common.pagination import page

log = get_logger(__name__)

TIME_KEYS = {"at", "accepted_at", "started_at", "rectified_at", "evaluated_at", "cancelled_at",
             "since", "until"}
SUPERVISION_ACTOR = "督办 supervision (platform)"
STEP_TIME = {"supervision.notice_issued": "issued_at", "supervision.deadline_closed": "ended_at",
             "supervision.order_answered": "at", "supervision.order_evaluated": "at"}
LOCK_LEAD = text("SELECT pg_advisory_xact_lock(:k)")


class CaseRules(DependencyProvider):
    """Penalty rules and squad seed data, loaded once per container; seeds missing squads."""

    def setup(self):
        self.city = setting("CITY")
        self.penalties = domain.load_penalty_rules(setting("PENALTY_RULES_FILE", "") or None)
        path = setting("SQUAD_ZONES_FILE", "")
        zones = SquadZones.from_file(path) if path else SquadZones.demo(self.city)
        overrides = json.loads((domain.DATA_DIR / "squads.json").read_text(encoding="utf-8"))
        self.seed = domain.squads_from_zones(zones, overrides.get(self.city, {}))

    def start(self):
        engine = make_engine(pool_size=1)
        try:
            with engine.begin() as conn:
                conn.execute(pg_insert(squads).on_conflict_do_nothing(), self.seed)
        finally:
            engine.dispose()

    def get_dependency(self, worker_ctx):
        return self


def _actor(caller: dict) -> str:
    return f"{caller['org_name']} ({caller['org_id']})"




def _times(value):
    if isinstance(value, dict):
        return {k: (datetime.fromisoformat(v.replace("Z", "+00:00"))
                    if k in TIME_KEYS and isinstance(v, str) else _times(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_times(v) for v in value]
    return value


class CaseStore:
    def __init__(self, db: UnitOfWork, clock: Clock, rules: CaseRules, city: str):
        self.db = db
        self.s = db.session
        self.clock = clock
        self.rules = rules
        self.city = city
        self.record = RecordBook(self.s, city)

    # opening ---------------------------------------------------------------------------------
    def open_from_lead(self, event: Event) -> dict | None:
        """`lead.accepted` → exactly one case per lead, however often it is delivered."""
        lead = event.data
        lead_id = str(lead["lead_id"])
        if lead["city"] != self.city:
            log.warning("lead.accepted of another city ignored", lead_city=lead["city"])
            return None
        key = int.from_bytes(hashlib.blake2b(f"case-for:{lead_id}".encode(),
                                             digest_size=8).digest(), "big", signed=True)
        self.s.execute(LOCK_LEAD, {"k": key})
        existing = self.s.execute(select(cases.c.id, cases.c.case_no)
                                  .where(cases.c.lead_id == lead_id)).first()
        if existing is not None:
            log.info("lead already has a case", lead_id=lead_id, case_no=existing.case_no)
            return None
        all_squads, loads = self._squads_and_loads()
        choice = domain.choose_squad(all_squads, loads, lead["category"], lead["squad"])
        at = self.clock.now()
        case_id = str(uuid.uuid4())
        case_no = domain.case_number(self.city, domain.numbering_year(at),
                                     self._next_number(domain.numbering_year(at)))
        state = domain.new_case(case_id=case_id, case_no=case_no, city=self.city, lead=lead,
                                zone_squad=lead["squad"], choice=choice, at=at)
        self.s.execute(insert(cases).values(
            id=case_id, case_no=case_no, city=self.city, lead_id=lead_id,
            origin_city=state["origin_city"], origin_lead_id=state["origin_lead_id"],
            category=lead["category"], description=lead["description"],
            lon=lead["location"]["lon"], lat=lead["location"]["lat"],
            zone_squad=lead["squad"], squad=state["squad"], town=state["town"],
            status=state["status"], version=1, opened_at=at, updated_at=at,
            assignments=jsonable(state["assignments"]), rounds=[], holds=[],
            trace_id=event.trace_id))
        self._history(state, lead["decided_by"], "opened", at, {
            "lead_id": lead_id, "squad": state["squad"], "zone_squad": lead["squad"],
            "assignment": choice.reason, "origin_city": state["origin_city"],
            "origin_lead_id": state["origin_lead_id"]})
        self._emit("case.opened", state, lead["decided_by"], at,
                   {"assignment_reason": choice.reason}, trace_id=event.trace_id)
        log.info("case opened", case_no=case_no, lead_id=lead_id, squad=state["squad"])
        return state

    def _next_number(self, year: int) -> int:
        return self.s.execute(
            pg_insert(case_counters).values(city=self.city, year=year, last=1)
            .on_conflict_do_update(index_elements=["city", "year"],
                                   set_={"last": case_counters.c.last + 1})
            .returning(case_counters.c.last)).scalar_one()

    def _squads_and_loads(self) -> tuple[list[domain.Squad], dict[str, int]]:
        # Locking the squads serialises assignments, so two cases opened at once balance exactly.
        rows = self.s.execute(select(squads).order_by(squads.c.code).with_for_update()).all()
        loads = dict(self.s.execute(
            select(cases.c.squad, func.count()).where(
                cases.c.status.in_(domain.OPEN_STATUSES), cases.c.squad.is_not(None))
            .group_by(cases.c.squad)).all())
        return [domain.Squad(r.code, r.town_zh, frozenset(r.categories), frozenset(r.covers),
                             r.active) for r in rows], loads

    # steps -------------------------------------------------------------------------------------
    def act(self, caller: dict, case_id: str, action: str, body: dict) -> dict:
        state = self._load(case_id, for_update=True)
        at = self.clock.now()
        actor = _actor(caller)
        roles = set(caller["roles"])
        if action == "accept":
            new = domain.accept(state, at)
            self._commit_step(state, new, actor, "accept", at, {"note": body.get("note")},
                              "case.accepted", {"note": body.get("note")})
        elif action == "feedback":
            penalty = domain.suggest_penalty(self.rules.penalties, state["category"],
                                             body.get("finding"))
            evidence = jsonable(body["evidence"])
            new = domain.rectify(state, at, body["summary"], evidence, body.get("finding"),
                                 penalty)
            detail = {"round": new["rounds"][-1]["round"], "summary": body["summary"],
                      "evidence": evidence, "finding": body.get("finding"), "penalty": penalty}
            self._commit_step(state, new, actor, "feedback", at, detail, "case.rectified", {
                "round": detail["round"], "summary": body["summary"],
                "evidence": body["evidence"], "penalty": penalty})
        elif action == "evaluate":
            new = domain.evaluate(state, at, body["result"], body.get("comment"))
            evaluated_round = state["rounds"][-1]["round"]
            detail = {"round": evaluated_round, "result": body["result"],
                      "comment": body.get("comment")}
            if body["result"] == "fail":
                detail["next_round"] = new["rounds"][-1]["round"]
            self._commit_step(state, new, actor, "evaluate", at, detail, "case.evaluated",
                              {"round": evaluated_round, "result": body["result"],
                               "comment": body.get("comment")})
            if body["result"] == "pass":
                self._history(new, actor, "closed", at, {"mode": "evaluated"})
                self._emit("case.closed", new, actor, at, {
                    "mode": "evaluated", "summary": body.get("comment"), "evidence": []})
        elif action in ("reassign", "transfer"):
            kind = "reassigned" if action == "reassign" else "transferred"
            target = self._target_squad(state, body.get("squad"))
            new = domain.reassign(state, at, target, kind)
            detail = {"from_squad": state["squad"], "to_squad": target.code,
                      "reason": body["reason"]}
            self._commit_step(state, new, actor, action, at, detail, "case.assigned", {
                "kind": kind, "from_squad": state["squad"], "reason": body["reason"]})
        elif action == "close":
            penalty = (domain.suggest_penalty(self.rules.penalties, state["category"],
                                              body.get("finding"))
                       if body["mode"] == "on_the_spot" else None)
            evidence = jsonable(body.get("evidence") or [])
            new = domain.close(state, at, body["mode"], roles, evidence, body["summary"],
                               penalty, body.get("finding"))
            self._commit_step(state, new, actor, "close", at, {
                "mode": body["mode"], "summary": body["summary"], "evidence": evidence,
                "penalty": penalty}, "case.closed", {
                "mode": body["mode"], "summary": body["summary"],
                "evidence": body.get("evidence") or []})
        elif action == "hold":
            new = domain.hold(state, at, body["party"])
            self._commit_step(state, new, actor, "hold", at,
                              {"party": body["party"], "reason": body["reason"]},
                              "case.held", {"party": body["party"], "reason": body["reason"]})
        elif action == "resume":
            new = domain.resume(state, at)
            self._commit_step(state, new, actor, "resume", at, {"note": body.get("note")},
                              "case.resumed", {"note": body.get("note")})
        else:  # pragma: no cover - the service only passes known actions
            raise InvalidInput(f"unknown action {action}")
        return self.view(caller, case_id)

    def _target_squad(self, state: dict, code: str | None) -> domain.Squad:
        all_squads, loads = self._squads_and_loads()
        if code is None:
            choice = domain.choose_squad(all_squads, loads, state["category"],
                                         state["zone_squad"],
                                         exclude=frozenset({state["squad"]} - {None}))
            if choice.squad is None:
                raise InvalidInput("no other squad can take this case",
                                   {"squad": [choice.reason]})
            return choice.squad
        squad = next((s for s in all_squads if s.code == code), None)
        if squad is None:
            raise InvalidInput(f"no squad {code} in {self.city}", {"squad": ["unknown squad"]})
        if not squad.can_take(state["category"]):
            raise InvalidInput(f"{code} does not take {state['category']}",
                               {"squad": ["inactive or does not take this category"]})
        return squad

    def _commit_step(self, before: dict, after: dict, actor: str, action: str, at: datetime,
                     detail: dict, event_type: str, event_extra: dict) -> None:
        self.s.execute(update(cases).where(cases.c.id == after["case_id"]).values(
            status=after["status"], version=after["version"], squad=after["squad"],
            town=after["town"], updated_at=at, closed_at=after["closed_at"],
            close_mode=after["close_mode"], assignments=jsonable(after["assignments"]),
            rounds=jsonable(after["rounds"]), holds=jsonable(after["holds"]),
            feedback=jsonable(after["feedback"]), penalty=after["penalty"]))
        self._history(after, actor, action, at, detail)
        self._emit(event_type, after, actor, at, event_extra)
        log.info("case step", case_no=after["case_no"], action=action, status=after["status"])

    def _history(self, state: dict, actor: str, action: str, at: datetime, detail: dict) -> None:
        detail = {k: v for k, v in detail.items() if v is not None}
        seq = self.record.append(state["case_id"], f"case.{action}", {
            "case_no": state["case_no"], "actor": actor, "action": action,
            "status": state["status"], "squad": state["squad"], "detail": detail}, at)
        self.s.execute(insert(case_history).values(
            case_id=state["case_id"], at=at, actor=actor, action=action, status=state["status"],
            detail=jsonable(detail), record_seq=seq))

    def _emit(self, event_type: str, state: dict, actor: str, at: datetime, extra: dict,
              trace_id: str | None = None) -> None:
        self.db.emit(event_type, state["case_id"], {
            "case_id": state["case_id"], "case_no": state["case_no"], "lead_id": state["lead_id"],
            "city": self.city, "category": state["category"], "status": state["status"],
            "squad": state["squad"], "origin_city": state["origin_city"],
            "origin_lead_id": state["origin_lead_id"], "actor": actor, "at": at,
            "case": snapshot(state), **extra,
        }, trace_id=trace_id)

    # supervision steps into the record -------------------------------------------------------
    def record_supervision_step(self, event: Event) -> None:
        data = event.data
        case_id = str(data["case_id"])
        # Lock order case row → record head, as every case step takes them (no deadlock with a
        # step of the same case; KEY SHARE lets other supervision steps of the case proceed).
        row = self.s.execute(select(cases.c.id, cases.c.case_no, cases.c.status, cases.c.squad)
                             .where(cases.c.id == case_id)
                             .with_for_update(read=True, key_share=True)).first()
        # the step's own time where the event has one (deadline_set: when it was set)
        time_field = STEP_TIME.get(event.type)
        at = data[time_field] if time_field else event.time
        action = event.type.split(".", 1)[1]
        payload = chain.normalise(data)
        if row is None:
            log.warning("supervision step for an unknown case; recorded without history",
                        case_id=case_id, type=event.type)
            self.record.append(case_id, event.type, {"detail": payload}, at)
            return
        detail = {k: v for k, v in payload.items() if k not in ("case_id", "case_no")}
        actor = data.get("actor") or SUPERVISION_ACTOR
        seq = self.record.append(case_id, event.type, {
            "case_no": row.case_no, "actor": actor, "action": action, "status": row.status,
            "squad": row.squad, "detail": detail}, at)
        self.s.execute(insert(case_history).values(
            case_id=case_id, at=at, actor=actor, action=action, status=row.status,
            detail=detail, record_seq=seq))

    # reading -----------------------------------------------------------------------------------
    def _load(self, case_id: str, for_update: bool = False) -> dict:
        row = self._row(case_id, for_update)
        if row is None:
            raise NotFound(f"case {case_id} not found")
        m = row._mapping
        return {
            "case_id": str(m["id"]), "case_no": m["case_no"], "city": m["city"],
            "version": m["version"], "status": m["status"], "category": m["category"],
            "squad": m["squad"], "town": m["town"], "zone_squad": m["zone_squad"],
            "lead_id": str(m["lead_id"]), "origin_city": m["origin_city"],
            "origin_lead_id": _str(m["origin_lead_id"]), "opened_at": m["opened_at"],
            "closed_at": m["closed_at"], "close_mode": m["close_mode"],
            "assignments": _times(m["assignments"]), "rounds": _times(m["rounds"]),
            "holds": _times(m["holds"]), "feedback": m["feedback"], "penalty": m["penalty"],
        }

    def _row(self, case_id: str, for_update: bool = False):
        try:
            uuid.UUID(str(case_id))
        except ValueError:
            raise NotFound(f"case {case_id} not found") from None
        query = select(cases).where(cases.c.id == str(case_id))
        if for_update:
            query = query.with_for_update()
        return self.s.execute(query).first()

    def view(self, caller: dict, case_id: str) -> dict:
        row = self._row(case_id)
        if row is None:
            raise NotFound(f"case {case_id} not found")
        history = self.s.execute(select(case_history).where(case_history.c.case_id == case_id)
                                 .order_by(case_history.c.id)).mappings().all()
        return {**self._full(row), "history": [
            {"at": iso_utc(h["at"]), "actor": h["actor"], "action": h["action"],
             "status": h["status"], "detail": {**h["detail"], "record_seq": h["record_seq"]}}
            for h in history]}

    def list(self, caller: dict, query: dict) -> dict:
        c = cases.c
        conditions = []
        for key in ("status", "squad", "category", "origin_city"):
            if key in query:
                conditions.append(c[key] == query[key])
        if "lead_id" in query:
            conditions.append(c.lead_id == str(query["lead_id"]))
        if "opened_from" in query:
            conditions.append(c.opened_at >= query["opened_from"])
        if "opened_to" in query:
            conditions.append(c.opened_at < query["opened_to"])
        rows, cursor = page(self.s, cases, query, conditions, at=c.opened_at)
        return {"items": [self._full(r) for r in rows], "next_cursor": cursor}

    def _full(self, row) -> dict:
        m = row._mapping
        holds = m["holds"] or []
        open_hold = holds[-1] if holds and holds[-1].get("until") is None else None
        return {
            "id": str(m["id"]), "case_no": m["case_no"], "city": m["city"],
            "status": m["status"], "category": m["category"], "description": m["description"],
            "location": {"lon": m["lon"], "lat": m["lat"]}, "squad": m["squad"],
            "town": m["town"], "zone_squad": m["zone_squad"], "lead_id": str(m["lead_id"]),
            "origin_city": m["origin_city"], "origin_lead_id": _str(m["origin_lead_id"]),
            "version": m["version"], "round": len(m["rounds"] or []),
            "opened_at": iso_utc(m["opened_at"]), "updated_at": iso_utc(m["updated_at"]),
            "closed_at": iso_utc(m["closed_at"]), "close_mode": m["close_mode"],
            "held": ({"party": open_hold["party"], "since": open_hold["since"]}
                     if open_hold else None),
            "assignments": m["assignments"], "rounds": m["rounds"], "holds": holds,
            "feedback": m["feedback"], "penalty": m["penalty"], "trace_id": m["trace_id"],
        }

    def record_of(self, case_id: str) -> dict:
        row = self._row(case_id)
        if row is None:
            raise NotFound(f"case {case_id} not found")
        return {"case_id": str(row.id), "case_no": row.case_no, "city": self.city,
                "algorithm": chain.ALGORITHM, "entries": self.record.entries_of(str(row.id)),
                "head": self.record.head(), "anchor": self.record.latest_anchor()}

    def squad_list(self) -> dict:
        loads = dict(self.s.execute(
            select(cases.c.squad, func.count()).where(cases.c.status.in_(domain.OPEN_STATUSES))
            .group_by(cases.c.squad)).all())
        rows = self.s.execute(select(squads).order_by(squads.c.code)).mappings().all()
        return {"items": [{
            "code": r["code"], "name_zh": r["name_zh"], "name_en": r["name_en"],
            "town_zh": r["town_zh"], "town_en": r["town_en"], "categories": list(r["categories"]),
            "covers": list(r["covers"]), "active": r["active"], "demo": r["demo"],
            "open_cases": loads.get(r["code"], 0)} for r in rows]}

    # anchoring ---------------------------------------------------------------------------------
    def anchor(self) -> dict | None:
        at = self.clock.now()
        event_id = str(uuid.uuid4())
        anchored = self.record.record_anchor(at, event_id)
        if anchored is None:
            return None
        self.db.emit("evidence.anchored", f"record:{self.city}", {
            "city": self.city, "seq": anchored["seq"], "hash": anchored["hash"],
            "previous_seq": anchored["previous_seq"], "at": at, "algorithm": chain.ALGORITHM})
        log.info("record anchored", seq=anchored["seq"], hash=anchored["hash"])
        return anchored


def snapshot(state: dict) -> dict:
    """The case as its events carry it (contracts.events.cases.CaseSnapshotSchema)."""
    keys = ("case_id", "case_no", "version", "city", "category", "status", "squad", "town",
            "lead_id", "origin_city", "origin_lead_id", "opened_at", "closed_at", "close_mode")
    return {**{k: state[k] for k in keys}, "assignments": state["assignments"],
            "rounds": state["rounds"], "holds": state["holds"]}


def _str(value):
    return None if value is None else str(value)

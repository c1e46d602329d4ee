"""Reading and writing joint operations, applying the rules of `domain.py`.

- The lead city (`owner`) plans, revises, invites, confirms, starts, ends and reports; each step
  after the invitation is published to the partners (`jointops.operation_published`).
- A partner keeps a copy of the plan, answers, commits its teams and files reports; what it says
  goes to the lead city (`invitation_answered`, `report_filed`, `violation_updated`,
  `alert_attached`), and the lead city's copy of all of it makes the after-action report.
- Every city follows the leads its own reports caused, through its leads and cases events and
  what partners report back on handed-over leads (`follow`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from shapely.geometry import Point, box
from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from contracts.envelope import Event
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound
from contracts.events.jointops import SOURCE_ORG
from services.common.clock import Clock
from services.common.db import UnitOfWork
from services.common.entrypoints import Refusal
from services.common.geo import CityLocator, to_utm, to_wgs84, unproject_geometry
from services.common.inputs import iso_utc, jsonable
from services.common.logging import get_logger
from services.common.pagination import page
from services.common.plates import normalise_plate
from services.jointops import domain
from services.jointops.models import (
    feed_alerts,
    invitations,
    operations,
    reports,
    teams,
    violations,
)

log = get_logger(__name__)

OCCURRED_SLACK = timedelta(hours=1)  # a violation may be noted up to an hour around the window
FUTURE_TOLERANCE = timedelta(minutes=5)
APPROACH_LOOKBACK = timedelta(minutes=10)


def _actor(caller: dict) -> str:
    return f"{caller['org_name']} ({caller['org_id']})"


class OperationStore:
    def __init__(self, db: UnitOfWork, clock: Clock, city: str, locator: CityLocator):
        self.db = db
        self.s = db.session
        self.clock = clock
        self.city = city
        self.locator = locator

    # plans (the lead city) ------------------------------------------------------------------
    def create(self, caller: dict, plan: dict) -> dict:
        now = self.clock.now()
        checked = domain.check_plan(plan, self.city, self.locator)
        if checked["ends_at"] <= now:
            raise InvalidInput("the window has already ended", {"ends_at": ["in the past"]})
        op_id = str(uuid.uuid4())
        row = {"id": op_id, "lead_city": self.city, "owner": True,
               "coordinator": _actor(caller), "coordinator_org": caller["org_id"],
               **self._plan_columns(checked), "status": "draft", "revision": 1,
               "created_at": now, "updated_at": now, "trace_id": self.db.trace_id}
        self.s.execute(operations.insert().values(**row))
        log.info("operation planned", operation_id=op_id, name=checked["name"])
        return self._view(self._get(op_id))

    def revise(self, caller: dict, op_id: str, patch: dict) -> dict:
        row = self._owned(op_id, for_update=True)
        if row.status not in domain.REVISABLE:
            raise Conflict(f"an operation that is {row.status} can no longer be changed",
                           {"status": [f"changes need one of: {', '.join(domain.REVISABLE)}"]})
        current = self._plan_input(row)
        merged = {**current, **patch}
        checked = domain.check_plan(merged, self.city, self.locator)
        removed = set(row.partners) - set(checked["partners"])
        if removed and row.status != "draft":
            raise Conflict("partners already invited cannot be removed; cancel and plan again",
                           {"partners": [f"still needed: {', '.join(sorted(removed))}"]})
        if checked["ends_at"] <= self.clock.now():
            raise InvalidInput("the window has already ended", {"ends_at": ["in the past"]})
        own_teams = self._teams(op_id, self.city)
        domain.check_teams(own_teams, checked["checkpoints"])
        self._refuse_conflicts(op_id, own_teams, checked["starts_at"], checked["ends_at"])
        now = self.clock.now()
        self.s.execute(update(operations).where(operations.c.id == op_id).values(
            **self._plan_columns(checked), revision=row.revision + 1, updated_at=now))
        if row.status != "draft":
            for city in set(checked["partners"]) - set(row.partners):
                self._invite(op_id, city)
            self._publish(op_id, "revised")
        log.info("operation revised", operation_id=op_id, revision=row.revision + 1,
                 by=_actor(caller))
        return self._view(self._get(op_id))

    def transition(self, caller: dict, op_id: str, action: str, now: datetime | None = None
                   ) -> dict:
        row = self._owned(op_id, for_update=True)
        target = domain.next_status(action, row.status)
        now = now or self.clock.now()
        if action == "invite":
            for city in row.partners:
                self._invite(op_id, city)
        if action == "start" and now < row.starts_at - timedelta(hours=1):
            raise Conflict("the operation starts at "
                           f"{iso_utc(row.starts_at)}; start it at most an hour early",
                           {"starts_at": [iso_utc(row.starts_at)]})
        self.s.execute(update(operations).where(operations.c.id == op_id).values(
            status=target, updated_at=now))
        if target != row.status and (action != "cancel" or row.status != "draft"):
            self._publish(op_id, domain.CHANGE_OF[action])
        log.info("operation moved", operation_id=op_id, action=action, status=target,
                 by=_actor(caller))
        return self._view(self._get(op_id))

    def tick(self, now: datetime) -> list[dict]:
        """Start confirmed operations whose window opened and end active ones whose window
        closed (the lead city's timer); each operation once, whoever else ticks."""
        due = self.s.execute(select(operations.c.id, operations.c.status).where(
            operations.c.owner.is_(True),
            or_(and_(operations.c.status == "confirmed", operations.c.starts_at <= now),
                and_(operations.c.status == "active", operations.c.ends_at <= now)),
        ).with_for_update(skip_locked=True)).all()
        moved = []
        for op_id, status in due:
            action = "start" if status == "confirmed" else "complete"
            self.transition(SYSTEM, str(op_id), action, now)
            moved.append({"operation_id": str(op_id), "action": action})
        return moved

    # teams and answers ---------------------------------------------------------------------
    def commit_teams(self, caller: dict, op_id: str, new_teams: list[dict]) -> dict:
        """The lead city's own teams (they replace its earlier list)."""
        row = self._owned(op_id, for_update=True)
        if row.status not in domain.REVISABLE:
            raise Conflict(f"teams cannot be committed to an operation that is {row.status}",
                           {"status": [row.status]})
        self._store_own_teams(row, new_teams)
        return self._view(self._get(op_id))

    def answer(self, caller: dict, op_id: str, answer: dict) -> dict:
        """A partner bureau's answer to the lead city's invitation, with its teams."""
        row = self._get(op_id, for_update=True)
        if row.owner:
            raise Conflict(f"{self.city} leads this operation; only partners answer",
                           {"operation": ["own operation"]})
        if row.status not in ("invited", "confirmed"):
            raise Conflict(f"an invitation to an operation that is {row.status} cannot be "
                           "answered", {"status": [row.status]})
        now = self.clock.now()
        if answer["decision"] == "accept":
            self._store_own_teams(row, answer["teams"])
        else:
            self.s.execute(delete(teams).where(teams.c.operation_id == op_id,
                                               teams.c.city == self.city))
        status = "accepted" if answer["decision"] == "accept" else "declined"
        self._set_invitation(op_id, self.city, status, answer.get("note"), _actor(caller), now,
                             row.revision)
        self.db.emit("jointops.invitation_answered", op_id, {
            "operation_id": op_id, "lead_city": row.lead_city, "city": self.city,
            "decision": answer["decision"], "teams": answer["teams"],
            "note": answer.get("note"), "answered_by": _actor(caller), "answered_at": now,
            "revision": row.revision})
        log.info("invitation answered", operation_id=op_id, decision=answer["decision"],
                 teams=len(answer["teams"]))
        return self._view(self._get(op_id))

    def _store_own_teams(self, row, new_teams: list[dict]) -> None:
        domain.check_teams(new_teams, row.checkpoints)
        stored = [{**t, "team_key": domain.team_key(t["name"])} for t in new_teams]
        self._refuse_conflicts(str(row.id), stored, row.starts_at, row.ends_at)
        self._replace_teams(str(row.id), self.city, new_teams, self.clock.now())

    def _refuse_conflicts(self, op_id: str, own: list[dict], starts: datetime,
                          ends: datetime) -> None:
        """A team of this city holds one operation at a time: refuse one committed to another
        operation whose window overlaps (serialised per team, so two commits cannot race)."""
        keys = sorted({t["team_key"] for t in own})
        if not keys:
            return
        self.s.execute(text(
            "SELECT pg_advisory_xact_lock(hashtextextended('jointops-team:' || :city || ':' "
            "|| k, 0)) FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k"),
            {"city": self.city, "keys": keys})
        clashes = self._clashes(op_id, keys, starts, ends)
        if clashes:
            raise Conflict("a team is already committed to an operation at the same time", {
                "teams": [f"{c.name}: {c.op_name} ({c.id}), {iso_utc(c.starts_at)} – "
                          f"{iso_utc(c.ends_at)}" for c in clashes]})

    def _clashes(self, op_id: str, keys: list[str], starts: datetime, ends: datetime) -> list:
        """This city's teams among `keys` committed to another operation at the same time."""
        if not keys:
            return []
        return self.s.execute(
            select(teams.c.name, operations.c.id, operations.c.name.label("op_name"),
                   operations.c.starts_at, operations.c.ends_at)
            .join(operations, operations.c.id == teams.c.operation_id)
            .where(teams.c.city == self.city, teams.c.team_key.in_(keys),
                   operations.c.id != op_id,
                   operations.c.status.in_(domain.HOLDS_TEAMS),
                   operations.c.starts_at < ends, operations.c.ends_at > starts)).all()

    def _replace_teams(self, op_id: str, city: str, new_teams: list[dict], now) -> None:
        self.s.execute(delete(teams).where(teams.c.operation_id == op_id, teams.c.city == city))
        if new_teams:
            self.s.execute(teams.insert(), [{
                "operation_id": op_id, "city": city, "team_key": domain.team_key(t["name"]),
                "name": t["name"], "checkpoint": t["checkpoint"], "people": t["people"],
                "vehicles": t.get("vehicles", 0), "leader": t.get("leader"),
                "contact": t.get("contact"), "committed_at": now} for t in new_teams])

    # reports ----------------------------------------------------------------------------------
    def file_report(self, caller: dict, op_id: str, body: dict) -> dict:
        row = self._get(op_id)
        if row.status not in domain.LIVE:
            raise Conflict(f"reports are filed while the operation is active; it is {row.status}",
                           {"status": [row.status]})
        if not row.owner and self._invitation_status(op_id) != "accepted":
            raise Forbidden(f"{self.city} has not accepted this operation's invitation",
                            {"operation": ["not a participant"]})
        now = self.clock.now()
        cp = next((c for c in row.checkpoints if c["code"] == body["checkpoint"]), None)
        if cp is None:
            raise InvalidInput("no such checkpoint in this operation",
                               {"checkpoint": [body["checkpoint"]]})
        period_from = body.get("period_from") or datetime.fromisoformat(cp["starts_at"])
        period_to = body.get("period_to") or min(now, row.ends_at)
        errors: dict = {}
        if period_to < period_from:
            errors["period_to"] = ["before period_from"]
        if period_from < row.starts_at - OCCURRED_SLACK or period_to > row.ends_at + OCCURRED_SLACK:
            errors["period_from"] = ["outside the operation's window"]
        found, v_errors = [], {}
        for i, v in enumerate(body["violations"]):
            lon, lat = to_wgs84(v["location"]["lon"], v["location"]["lat"], v["location"]["crs"])
            city = self.locator.city_at(lon, lat)
            problems = []
            if city is None:
                problems.append("the place lies outside the five cities")
            plate = v.get("plate")
            if plate is not None:
                try:
                    plate = normalise_plate(plate)
                except ValueError as exc:
                    problems.append(str(exc))
            if not (row.starts_at - OCCURRED_SLACK <= v["occurred_at"]
                    <= min(row.ends_at + OCCURRED_SLACK, now + FUTURE_TOLERANCE)):
                problems.append("occurred_at lies outside the operation's window, or ahead")
            if problems:
                v_errors[str(i)] = problems
                continue
            found.append({**v, "plate": plate, "violation_id": str(uuid.uuid4()), "city": city,
                          "location": {"lon": round(lon, 7), "lat": round(lat, 7)}})
        if v_errors:
            errors["violations"] = v_errors
        if errors:
            raise InvalidInput("the report is not valid", errors)
        report = {"report_id": str(uuid.uuid4()), "operation_id": op_id,
                  "lead_city": row.lead_city, "city": self.city, "checkpoint": cp["code"],
                  "team": body.get("team"), "period_from": period_from, "period_to": period_to,
                  "vehicles_checked": body["vehicles_checked"], "violations": found,
                  "note": body.get("note"), "filed_by": _actor(caller), "filed_at": now}
        self._store_report(report)
        # The reporting city's leads service turns each violation into a lead; the bridge
        # carries the report to the lead city.
        self.db.emit("jointops.report_filed", op_id, report)
        log.info("checkpoint report filed", operation_id=op_id, checkpoint=cp["code"],
                 violations=len(found))
        return self._report_view(report["report_id"])

    def _store_report(self, report: dict) -> bool:
        inserted = self.s.execute(pg_insert(reports).values(
            id=str(report["report_id"]), operation_id=str(report["operation_id"]),
            city=report["city"], checkpoint=report["checkpoint"], team=report.get("team"),
            period_from=report["period_from"], period_to=report["period_to"],
            vehicles_checked=report["vehicles_checked"], note=report.get("note"),
            filed_by=report["filed_by"], filed_at=report["filed_at"],
        ).on_conflict_do_nothing().returning(reports.c.id)).first()
        if inserted is None:
            return False
        now = self.clock.now()
        if report["violations"]:
            self.s.execute(pg_insert(violations).on_conflict_do_nothing(), [{
                "id": str(v["violation_id"]), "report_id": str(report["report_id"]), "seq": i,
                "operation_id": str(report["operation_id"]), "reported_by": report["city"],
                "checkpoint": report["checkpoint"], "plate": v.get("plate"),
                "category": v["category"], "lon": v["location"]["lon"],
                "lat": v["location"]["lat"], "city": v["city"], "address": v.get("address"),
                "description": v["description"], "occurred_at": v["occurred_at"],
                "evidence": jsonable(v.get("evidence") or []), "state": "pending",
                "updated_at": now} for i, v in enumerate(report["violations"])])
        return True

    # what partners and the lead city send (through the bridge) ------------------------------
    def on_published(self, event: Event) -> Refusal | None:
        """A partner's copy follows the lead city's plan (older revisions are ignored)."""
        d = event.data
        op_id = str(d["operation_id"])
        if d["lead_city"] != event.city or self.city not in d["partners"]:
            return Refusal("not_ours", f"{event.city} published operation {op_id} led by "
                                       f"{d['lead_city']} for {d['partners']}, not {self.city}")
        existing = self.s.execute(select(operations.c.revision, operations.c.status,
                                         operations.c.owner, operations.c.lead_city)
                                  .where(operations.c.id == op_id).with_for_update()).first()
        if existing is not None and existing.owner:
            return Refusal("not_ours", f"{event.city} published operation {op_id}, which "
                                       f"{self.city} leads")
        if existing is not None and existing.lead_city != event.city:
            return Refusal("not_ours", f"{event.city} published operation {op_id}, which "
                                       f"{existing.lead_city} leads")
        now = self.clock.now()
        columns = {"name": d["name"], "kind": d["kind"], "partners": d["partners"],
                   "starts_at": d["starts_at"], "ends_at": d["ends_at"], "area": d["area"],
                   "area_spec": d["area_spec"], "categories": d["categories"],
                   "checkpoints": jsonable(d["checkpoints"]), "briefing": d.get("briefing"),
                   "status": d["status"], "revision": d["revision"], "coordinator":
                   d["coordinator"], "updated_at": now}
        if existing is None:
            self.s.execute(operations.insert().values(
                id=op_id, lead_city=d["lead_city"], owner=False, coordinator_org=None,
                created_at=now, trace_id=event.trace_id, **columns))
        elif (d["revision"], _STATUS_RANK[d["status"]]) >= (existing.revision,
                                                              _STATUS_RANK[existing.status]):
            self.s.execute(update(operations).where(operations.c.id == op_id).values(**columns))
        else:
            log.info("older plan ignored", operation_id=op_id, revision=d["revision"])
            return None
        self._invite(op_id, self.city)
        log.info("operation received", operation_id=op_id, change=d["change"],
                 revision=d["revision"])
        return None

    def on_answered(self, event: Event) -> Refusal | None:
        d = event.data
        op_id = str(d["operation_id"])
        refusal = self._refuse_unless_partner(op_id, d["city"], event.city, lock=True)
        if refusal:
            return refusal
        status = self.s.execute(select(operations.c.status).where(
            operations.c.id == op_id)).scalar()
        if status not in ("invited", "confirmed"):
            return Refusal("closed", f"{d['city']} answered operation {op_id}, which is "
                                     f"{status}: answers close when it starts")
        earlier = self.s.execute(select(invitations.c.answered_at).where(
            invitations.c.operation_id == op_id, invitations.c.city == d["city"])).scalar()
        if earlier is not None and earlier > d["answered_at"]:
            log.info("an older answer ignored", operation_id=op_id, city=d["city"])
            return None
        status = "accepted" if d["decision"] == "accept" else "declined"
        self._set_invitation(op_id, d["city"], status, d.get("note"), d["answered_by"],
                             d["answered_at"], d["revision"])
        self._replace_teams(op_id, d["city"], d["teams"], d["answered_at"])
        self.s.execute(update(operations).where(operations.c.id == op_id)
                       .values(updated_at=self.clock.now()))
        return None

    def on_partner_report(self, event: Event) -> Refusal | None:
        d = event.data
        refusal = self._refuse_unless_partner(str(d["operation_id"]), d["city"], event.city)
        if refusal is None:
            self._store_report(d)
        return refusal

    def on_violation_updated(self, event: Event) -> Refusal | None:
        d = event.data
        refusal = self._refuse_unless_partner(str(d["operation_id"]), d["reported_by"],
                                              event.city)
        if refusal is not None:
            return refusal
        found = self._advance(str(d["violation_id"]), d["state"], lead_id=d["lead_id"],
                              handled_by=d["handled_by"], case_no=d["case_no"], notify=False,
                              operation_id=str(d["operation_id"]), reported_by=d["reported_by"])
        if not found:
            # its report (another queue) has not been applied yet: retried with backoff, then
            # parked with this error if the report never comes
            raise ViolationNotYetKnown(f"violation {d['violation_id']} of {d['reported_by']} "
                                       f"in operation {d['operation_id']} is not known (yet)")
        return None

    def on_alert_attached(self, event: Event) -> Refusal | None:
        d = event.data
        refusal = self._refuse_unless_partner(str(d["operation_id"]), d["city"], event.city)
        if refusal is None:
            self._attach(str(d["operation_id"]), d["city"], d)
        return refusal

    def _refuse_unless_partner(self, op_id: str, city: str, sender: str,
                               lock: bool = False) -> Refusal | None:
        """A partner speaks only for itself, and only about an operation we lead and invited it
        to; anything else is parked with the reason."""
        q = select(operations.c.partners).where(operations.c.id == op_id,
                                                operations.c.owner.is_(True))
        row = self.s.execute(q.with_for_update() if lock else q).first()
        if row is None:
            return Refusal("not_ours", f"{self.city} leads no operation {op_id}")
        if city != sender or city not in row.partners:
            return Refusal("not_a_partner", f"{sender} spoke for {city}, which is not a "
                                            f"partner of operation {op_id}")
        return None

    # transport alerts on the feed --------------------------------------------------------------
    def on_transport_alert(self, event: Event) -> None:
        d = event.data
        if d["raised_by"] != self.city:
            return
        at, lon, lat = d["at"], d["location"]["lon"], d["location"]["lat"]
        ops = self.s.execute(select(operations.c.id, operations.c.owner, operations.c.area,
                                    operations.c.lead_city).where(
            operations.c.status == "active", operations.c.starts_at <= at,
            operations.c.ends_at >= at)).all()
        point = to_utm(lon, lat)
        for op in ops:
            if domain.area_geometry(op.area).distance(Point(*point)) > 0:
                continue
            alert = {"alert_id": str(d["alert_id"]), "kind": d["kind"], "plate": d["plate"],
                     "location": {"lon": lon, "lat": lat}, "at": at,
                     "permit_id": d.get("permit_id")}
            if self._attach(str(op.id), self.city, alert) and not op.owner:
                self.db.emit("jointops.alert_attached", str(op.id), {
                    "operation_id": str(op.id), "lead_city": op.lead_city, "city": self.city,
                    **alert})

    def _attach(self, op_id: str, city: str, alert: dict) -> bool:
        return self.s.execute(pg_insert(feed_alerts).values(
            operation_id=op_id, alert_id=str(alert["alert_id"]), city=city, kind=alert["kind"],
            plate=alert["plate"], lon=alert["location"]["lon"], lat=alert["location"]["lat"],
            at=alert["at"], permit_id=alert.get("permit_id"),
        ).on_conflict_do_nothing().returning(feed_alerts.c.alert_id)).first() is not None

    # following the leads our reports caused ------------------------------------------------------
    def follow(self, event: Event) -> None:
        """A leads or cases event here, or a partner's about a lead we handed over: move the
        violation it concerns (if any) and tell the lead city."""
        d, t = event.data, event.type
        local = event.city == self.city
        if t in ("lead.submitted", "lead.handed_over") and local:
            if d["source_org"] != SOURCE_ORG or d.get("origin_lead_id"):
                return
            state = "routed" if t == "lead.submitted" else "handed_over"
            handled_by = d["city"] if t == "lead.submitted" else d["to_city"]
            self._advance(d["source_ref"], state, lead_id=str(d["lead_id"]),
                          handled_by=handled_by, own=True)
            return
        lead_id = d.get("lead_id") if local else d.get("origin_lead_id")
        if lead_id is None or (local and d.get("origin_lead_id")):
            return
        row = self.s.execute(select(violations.c.id).where(
            violations.c.lead_id == str(lead_id), violations.c.reported_by == self.city)).first()
        if row is None:
            return  # not a lead of a joint operation
        state = FOLLOWED[(t, local)]
        self._advance(str(row.id), state, case_no=d.get("case_no"), handled_by=event.city,
                      own=True)

    def _advance(self, violation_id: str, state: str, lead_id=None, handled_by=None,
                 case_no=None, own: bool = False, notify: bool = True,
                 operation_id: str | None = None, reported_by: str | None = None) -> bool:
        """Move a violation forward; False when no such violation (of that operation and
        reporter, when given) is known here."""
        try:
            violation_id = str(uuid.UUID(str(violation_id)))
        except ValueError:
            return False
        conditions = [violations.c.id == violation_id]
        if own:
            conditions.append(violations.c.reported_by == self.city)
        if operation_id is not None:
            conditions.append(violations.c.operation_id == operation_id)
        if reported_by is not None:
            conditions.append(violations.c.reported_by == reported_by)
        row = self.s.execute(select(violations, operations.c.lead_city, operations.c.owner)
                             .join(operations, operations.c.id == violations.c.operation_id)
                             .where(*conditions).with_for_update(of=violations)).first()
        if row is None:
            return False
        values = {"updated_at": self.clock.now()}
        if lead_id and row.lead_id is None:
            values["lead_id"] = str(lead_id)
        if handled_by:
            values["handled_by"] = handled_by
        if case_no:
            values["case_no"] = case_no
        if domain.advances(row.state, state):
            values["state"] = state
        elif len(values) == 1:
            return True
        self.s.execute(update(violations).where(violations.c.id == violation_id).values(**values))
        if notify and not row.owner:
            m = {**row._mapping, **values}
            self.db.emit("jointops.violation_updated", violation_id, {
                "operation_id": str(row.operation_id), "lead_city": row.lead_city,
                "violation_id": violation_id, "reported_by": row.reported_by,
                "state": m["state"], "lead_id": m["lead_id"] and str(m["lead_id"]),
                "handled_by": m["handled_by"], "case_no": m["case_no"],
                "at": values["updated_at"]})
        return True

    # views -------------------------------------------------------------------------------------
    def view(self, op_id: str) -> dict:
        return self._view(self._get(op_id))

    def list(self, query: dict) -> dict:
        conditions = []
        if query.get("status"):
            conditions.append(operations.c.status == query["status"])
        rows, cursor = page(self.s, operations, query, conditions, at=operations.c.created_at)
        return {"items": [self._view(r) for r in rows], "next_cursor": cursor}

    def feed(self, op_id: str, positions) -> dict:
        """Reports, attached alerts and, while active, trucks heading for a checkpoint
        (`positions(bbox, since, until)` asks the transport service)."""
        row = self._get(op_id)
        report_ids = self.s.execute(select(reports.c.id).where(reports.c.operation_id == op_id)
                                    .order_by(reports.c.filed_at.desc())).scalars().all()
        alerts = self.s.execute(select(feed_alerts).where(feed_alerts.c.operation_id == op_id)
                                .order_by(feed_alerts.c.at.desc())).all()
        approaching, note = [], None
        if row.status in domain.LIVE:
            now = self.clock.now()
            bbox = list(domain.area_geometry(row.area).buffer(domain.APPROACH_RADIUS_M)
                        .bounds)
            bbox = _wgs84_bbox(bbox)
            try:
                trucks = positions(bbox, iso_utc(now - APPROACH_LOOKBACK), iso_utc(now))
                approaching = domain.approaching(trucks, row.checkpoints)
            except Exception as exc:  # the feed stays useful without the transport service
                note = f"trucks heading for checkpoints unavailable: {type(exc).__name__}"
                log.warning("approaching trucks unavailable", error=str(exc))
        return {"operation_id": op_id, "status": row.status,
                "reports": [self._report_view(str(r)) for r in report_ids],
                "alerts": [{"alert_id": str(a.alert_id), "city": a.city, "kind": a.kind,
                            "plate": a.plate, "location": {"lon": a.lon, "lat": a.lat},
                            "at": iso_utc(a.at), "permit_id": a.permit_id} for a in alerts],
                "approaching": approaching, **({"note": note} if note else {})}

    def after_action(self, op_id: str) -> dict:
        row = self._get(op_id)
        if not row.owner:
            raise Conflict(f"the after-action report is kept by the lead city, {row.lead_city}",
                           {"operation": [f"ask {row.lead_city}"]})
        if row.status not in ("active", "completed", "reported"):
            raise Conflict(f"an operation that is {row.status} has nothing to report yet",
                           {"status": [row.status]})
        op = self._plan_dict(row)
        rs = [r._asdict() for r in self.s.execute(select(reports).where(
            reports.c.operation_id == op_id)).all()]
        vs = [self._violation_view(v) for v in self.s.execute(
            select(violations).join(reports, reports.c.id == violations.c.report_id)
            .where(violations.c.operation_id == op_id)
            .order_by(reports.c.filed_at, reports.c.id, violations.c.seq)).all()]
        return jsonable(domain.after_action(op, rs, vs))

    def _view(self, row) -> dict:
        plan = self._plan_dict(row)
        all_teams = self._teams(str(row.id))
        by_cp = domain.staffing(row.checkpoints, all_teams)
        figures = {r.checkpoint: r for r in self.s.execute(
            select(reports.c.checkpoint, func.count().label("n"),
                   func.coalesce(func.sum(reports.c.vehicles_checked), 0).label("vehicles"))
            .where(reports.c.operation_id == str(row.id)).group_by(reports.c.checkpoint))}
        found = dict(self.s.execute(
            select(violations.c.checkpoint, func.count()).where(
                violations.c.operation_id == str(row.id)).group_by(violations.c.checkpoint))
            .all())
        checkpoints = []
        for cp in row.checkpoints:
            cp_teams = by_cp.get(cp["code"], [])
            checkpoints.append({**cp, "teams": cp_teams, "teams_committed": len(cp_teams),
                                "short": len(cp_teams) < cp["teams_needed"],
                                "vehicles_checked": int(figures[cp["code"]].vehicles)
                                if cp["code"] in figures else 0,
                                "violations": found.get(cp["code"], 0)})
        invites = [{"city": i.city, "status": i.status, "note": i.note,
                    "answered_by": i.answered_by, "answered_at": iso_utc(i.answered_at),
                    "revision_seen": i.revision_seen} for i in self.s.execute(
            select(invitations).where(invitations.c.operation_id == str(row.id))
            .order_by(invitations.c.city))]
        short = domain.short_checkpoints(row.checkpoints, all_teams)
        warnings = []
        if short and row.status in ("draft", "invited", "confirmed"):
            warnings.append(f"checkpoints short of teams: {', '.join(short)}")
        pending = [i["city"] for i in invites if i["status"] == "pending"]
        if pending and row.status in ("invited", "confirmed"):
            warnings.append(f"no answer yet from: {', '.join(pending)}")
        own = sorted({t["team_key"] for t in all_teams if t["city"] == self.city})
        if row.status in domain.HOLDS_TEAMS - {"completed", "reported"}:
            for c in self._clashes(str(row.id), own, row.starts_at, row.ends_at):
                warnings.append(f"team {c.name} is also committed to {c.op_name} ({c.id}) "
                                "at the same time")
        stale = [i["city"] for i in invites if i["status"] != "pending"
                 and (i["revision_seen"] or 0) < row.revision]
        if stale and row.owner and row.status in ("invited", "confirmed"):
            warnings.append(f"answered an earlier revision of the plan: {', '.join(stale)}")
        return jsonable({**plan, "owner": row.owner, "checkpoints": checkpoints,
                         "invitations": invites, "short_checkpoints": short,
                         "warnings": warnings, "created_at": row.created_at,
                         "updated_at": row.updated_at})

    def _report_view(self, report_id: str) -> dict:
        r = self.s.execute(select(reports).where(reports.c.id == report_id)).first()
        vs = self.s.execute(select(violations).where(violations.c.report_id == report_id)
                            .order_by(violations.c.seq)).all()
        return jsonable({"report_id": str(r.id), "city": r.city, "checkpoint": r.checkpoint,
                         "team": r.team, "period_from": r.period_from,
                         "period_to": r.period_to, "vehicles_checked": r.vehicles_checked,
                         "violations": [self._violation_view(v) for v in vs],
                         "note": r.note, "filed_by": r.filed_by, "filed_at": r.filed_at})

    @staticmethod
    def _violation_view(v) -> dict:
        return {"violation_id": str(v.id), "report_id": str(v.report_id),
                "reported_by": v.reported_by, "checkpoint": v.checkpoint, "plate": v.plate,
                "category": v.category, "location": {"lon": v.lon, "lat": v.lat},
                "city": v.city, "occurred_at": iso_utc(v.occurred_at), "state": v.state,
                "lead_id": v.lead_id and str(v.lead_id), "handled_by": v.handled_by,
                "case_no": v.case_no}

    # helpers ----------------------------------------------------------------------------------
    def _publish(self, op_id: str, change: str) -> None:
        row = self._get(op_id)
        if not row.partners:
            return
        self.db.emit("jointops.operation_published", op_id, {
            **self._plan_dict(row), "change": change,
            "short_checkpoints": domain.short_checkpoints(row.checkpoints,
                                                          self._teams(op_id))})

    def _invite(self, op_id: str, city: str) -> None:
        self.s.execute(pg_insert(invitations).values(
            operation_id=op_id, city=city, status="pending").on_conflict_do_nothing())

    def _set_invitation(self, op_id, city, status, note, by, at, revision) -> None:
        self.s.execute(pg_insert(invitations).values(
            operation_id=op_id, city=city, status=status, note=note, answered_by=by,
            answered_at=at, revision_seen=revision,
        ).on_conflict_do_update(index_elements=["operation_id", "city"], set_={
            "status": status, "note": note, "answered_by": by, "answered_at": at,
            "revision_seen": revision}))

    def _invitation_status(self, op_id: str) -> str | None:
        return self.s.execute(select(invitations.c.status).where(
            invitations.c.operation_id == op_id, invitations.c.city == self.city)).scalar()

    def _teams(self, op_id: str, city: str | None = None) -> list[dict]:
        q = select(teams).where(teams.c.operation_id == op_id)
        if city:
            q = q.where(teams.c.city == city)
        return [{"city": t.city, "name": t.name, "team_key": t.team_key,
                 "checkpoint": t.checkpoint, "people": t.people, "vehicles": t.vehicles,
                 "leader": t.leader, "contact": t.contact}
                for t in self.s.execute(q.order_by(teams.c.city, teams.c.id))]

    def _get(self, op_id: str, for_update: bool = False):
        try:
            op_id = str(uuid.UUID(str(op_id)))
        except ValueError:
            raise NotFound(f"no operation {op_id}") from None
        q = select(operations).where(operations.c.id == op_id)
        row = self.s.execute(q.with_for_update() if for_update else q).first()
        if row is None:
            raise NotFound(f"no operation {op_id}")
        return row

    def _owned(self, op_id: str, for_update: bool = False):
        row = self._get(op_id, for_update)
        if not row.owner:
            raise Forbidden(f"{row.lead_city} leads this operation; its coordinator changes it",
                            {"operation": [f"led by {row.lead_city}"]})
        return row

    @staticmethod
    def _plan_columns(checked: dict) -> dict:
        return {"name": checked["name"], "kind": checked["kind"],
                "partners": checked["partners"], "starts_at": checked["starts_at"],
                "ends_at": checked["ends_at"], "area": checked["area"],
                "area_spec": jsonable(checked["area_spec"]),
                "categories": checked["categories"],
                "checkpoints": jsonable(checked["checkpoints"]),
                "briefing": checked["briefing"]}

    @staticmethod
    def _plan_dict(row) -> dict:
        return {"operation_id": str(row.id), "name": row.name, "kind": row.kind,
                "lead_city": row.lead_city, "coordinator": row.coordinator,
                "partners": list(row.partners), "starts_at": row.starts_at,
                "ends_at": row.ends_at, "area": row.area, "area_spec": row.area_spec,
                "categories": list(row.categories),
                "checkpoints": [{**c, "starts_at": datetime.fromisoformat(c["starts_at"]),
                                 "ends_at": datetime.fromisoformat(c["ends_at"])}
                                for c in row.checkpoints],
                "briefing": row.briefing, "status": row.status, "revision": row.revision}

    @staticmethod
    def _plan_input(row) -> dict:
        """The stored plan in the shape of the input schema (a revision patches it)."""
        spec = row.area_spec
        if "border" in spec:
            b = spec["border"]
            area = {"polygon": None, "border": {"cities": b["cities"], "buffer_m": b["buffer_m"],
                                                "from_point": b.get("from"),
                                                "to_point": b.get("to")}}
        else:
            area = {"polygon": spec["polygon"], "border": None}
        return {"name": row.name, "kind": row.kind, "partners": list(row.partners),
                "starts_at": row.starts_at, "ends_at": row.ends_at, "area": area,
                "categories": list(row.categories), "briefing": row.briefing,
                "checkpoints": [{"code": c["code"], "name": c["name"],
                                 "location": {**c["location"], "crs": "WGS84"},
                                 "starts_at": None if c.get("follows_window")
                                 else datetime.fromisoformat(c["starts_at"]),
                                 "ends_at": None if c.get("follows_window")
                                 else datetime.fromisoformat(c["ends_at"]),
                                 "teams_needed": c["teams_needed"]} for c in row.checkpoints]}


class ViolationNotYetKnown(Exception):
    """A partner's update about a violation whose report has not been applied here yet."""


SYSTEM = {"org_id": "system:jointops", "org_name": "联合整治计时 Operation timer",
          "roles": ["coordinator"]}
_STATUS_RANK = {s: i for i, s in enumerate(
    ("draft", "invited", "confirmed", "active", "completed", "reported", "cancelled"))}
# (event type, raised here?) → the violation's state
FOLLOWED = {("lead.accepted", True): "accepted", ("lead.rejected", True): "rejected",
            ("case.opened", True): "case_opened", ("case.closed", True): "case_closed",
            ("lead.submitted", False): "received", ("lead.accepted", False): "accepted",
            ("lead.rejected", False): "rejected", ("case.opened", False): "case_opened",
            ("case.closed", False): "case_closed"}


def _wgs84_bbox(utm_bounds: list[float]) -> list[float]:
    return list(unproject_geometry(box(*utm_bounds)).bounds)

"""The joint operations service (联合整治): entrypoints only; rules live in `domain.py`, storage
in `store.py`."""

from __future__ import annotations

from nameko.extensions import DependencyProvider

from contracts.envelope import Event, EventValidationError
from contracts.errors import InvalidInput
from contracts.http import jointops as J
from services.common.batching import consume_batch
from services.common.clock import Clock
from services.common.config import setting
from services.common.db import Database
from services.common.entrypoints import Refusal, event_handler, rpc
from services.common.geo import default_city_locator
from services.common.inputs import load, require_role
from services.common.logging import get_logger
from services.common.observability import Observable
from services.common.rpc import ServiceRpc, call_within
from services.common.timers import timer
from services.jointops import domain, models
from services.jointops.store import OperationStore

log = get_logger(__name__)
FOLLOW_QUEUE = "jointops.follow"  # leads and cases events about leads our reports caused
ACTIONS = tuple(domain.TRANSITIONS)


class Locator(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return default_city_locator()


class JointOpsService(Observable):
    name = "jointops"

    db = Database(models.metadata)
    clock = Clock()
    locator = Locator()
    transport = ServiceRpc("transport")

    def _store(self) -> OperationStore:
        return OperationStore(self.db, self.clock, setting("CITY"), self.locator)

    # plans (the lead city's coordinator) ------------------------------------------------------
    @rpc
    def create(self, caller: dict, body: dict) -> dict:
        require_role(caller, J.PLAN_ROLES, "plan joint operations")
        return self._store().create(caller, load(J.PlanInSchema, body))

    @rpc
    def revise(self, caller: dict, operation_id: str, body: dict) -> dict:
        require_role(caller, J.PLAN_ROLES, "change joint operations")
        patch = load(J.PlanPatchSchema, body)
        if not patch:
            raise InvalidInput("nothing to change", {"body": ["give at least one field"]})
        return self._store().revise(caller, operation_id, patch)

    @rpc
    def act(self, caller: dict, operation_id: str, action: str) -> dict:
        """invite, confirm, start, complete, report (after action) or cancel."""
        if action not in ACTIONS:
            raise InvalidInput(f"unknown action {action}", {"action": list(ACTIONS)})
        require_role(caller, J.PLAN_ROLES, f"{action} joint operations")
        return self._store().transition(caller, operation_id, action)

    @rpc
    def commit_teams(self, caller: dict, operation_id: str, body: dict) -> dict:
        require_role(caller, J.PLAN_ROLES, "commit the lead city's teams")
        return self._store().commit_teams(caller, operation_id,
                                          load(J.TeamsInSchema, body)["teams"])

    # partners ------------------------------------------------------------------------------
    @rpc
    def answer(self, caller: dict, operation_id: str, body: dict) -> dict:
        require_role(caller, J.ANSWER_ROLES, "answer invitations")
        return self._store().answer(caller, operation_id, load(J.AnswerInSchema, body))

    # live -----------------------------------------------------------------------------------
    @rpc
    def file_report(self, caller: dict, operation_id: str, body: dict) -> dict:
        require_role(caller, J.REPORT_ROLES, "file checkpoint reports")
        return self._store().file_report(caller, operation_id, load(J.ReportInSchema, body))

    @rpc
    def feed(self, caller: dict, operation_id: str) -> dict:
        require_role(caller, J.READ_ROLES, "follow joint operations")
        return self._store().feed(operation_id, self._positions)

    def _positions(self, bbox, since, until):
        """The transport service's latest positions, or `TimeoutError` after half the RPC
        timeout (the feed then says the trucks are unavailable)."""
        return call_within(self.transport.latest_positions, bbox, since, until,
                           timeout=float(setting("RPC_TIMEOUT", 10)) / 2)

    # reading -----------------------------------------------------------------------------------
    @rpc
    def get(self, caller: dict, operation_id: str) -> dict:
        require_role(caller, J.READ_ROLES, "see joint operations")
        return self._store().view(operation_id)

    @rpc
    def list(self, caller: dict, query: dict) -> dict:
        require_role(caller, J.READ_ROLES, "see joint operations")
        return self._store().list(load(J.OperationListQuerySchema, query))

    @rpc
    def after_action(self, caller: dict, operation_id: str, query: dict) -> dict:
        require_role(caller, J.READ_ROLES, "read after-action reports")
        fmt = load(J.ReportFormatQuerySchema, query)["format"]
        report = self._store().after_action(operation_id)
        if fmt == "csv":
            return {"format": "csv", "body": domain.after_action_csv(report)}
        if fmt == "text":
            return {"format": "text", "body": report["summary"] + "\n"}
        return report

    # time -------------------------------------------------------------------------------------
    @timer("JOINTOPS_TICK_SECONDS", 30.0)
    def tick(self) -> None:
        self._store().tick(self.clock.now())

    @rpc
    def tick_at(self, at: str) -> list[dict]:
        """Tests and the demo only (`CLOCK_CONTROL`): the start/end tick as of another instant."""
        return self._store().tick(self.clock.instant(at, "an operations tick"))

    @rpc
    def set_clock(self, at: str | None = None, mode: str = "frozen") -> dict:
        """Tests and the demo only (`CLOCK_CONTROL`): freeze or shift this service's clock."""
        return self.clock.set(at, mode)

    # what partners send through the bridge ------------------------------------------------------
    @event_handler("bridge", "jointops.operation_published")
    def on_published(self, event: Event) -> Refusal | None:
        return self._store().on_published(event)

    @event_handler("bridge", "jointops.invitation_answered")
    def on_answered(self, event: Event) -> Refusal | None:
        return self._store().on_answered(event)

    @event_handler("bridge", "jointops.report_filed")
    def on_partner_report(self, event: Event) -> Refusal | None:
        return self._store().on_partner_report(event)

    @event_handler("bridge", "jointops.violation_updated")
    def on_violation_updated(self, event: Event) -> Refusal | None:
        return self._store().on_violation_updated(event)

    @event_handler("bridge", "jointops.alert_attached")
    def on_alert_attached(self, event: Event) -> Refusal | None:
        return self._store().on_alert_attached(event)

    # this city's transport alerts and the leads our reports caused ------------------------------
    @event_handler("transport", "transport.alert_raised")
    def on_transport_alert(self, event: Event) -> None:
        self._store().on_transport_alert(event)

    @consume_batch(FOLLOW_QUEUE, max_batch=100, max_wait=0.05)
    def follow(self, bodies: list[dict]) -> list[Refusal | None]:
        outcomes: list[Refusal | None] = [None] * len(bodies)
        events = []
        for i, body in enumerate(bodies):
            try:
                events.append(Event.from_wire(body))
            except EventValidationError as exc:
                outcomes[i] = Refusal("invalid", f"{exc}: {exc.errors}")
        fresh = self.db.first_deliveries([(e.id, e.type) for e in events], "follow")
        store = self._store()
        # by the lead they concern (each lead's events keep their order): violation rows are
        # locked in one order by every replica, so two batches cannot deadlock
        for event in sorted(events, key=lambda e: str(
                e.data.get("lead_id") if e.city == setting("CITY")
                else e.data.get("origin_lead_id"))):
            if event.id in fresh:
                fresh.discard(event.id)
                store.follow(event)
        return outcomes

"""The leads service: entrypoints only; rules live in `domain.py`, storage in `store.py`."""

from __future__ import annotations

from contracts.envelope import Event
from contracts.errors import InvalidInput, OutsideJurisdiction
from contracts.http.leads import DecisionSchema, LeadListQuerySchema, LeadSubmissionSchema
from services.common.clock import Clock
from services.common.config import setting
from services.common.db import Database
from services.common.entrypoints import event_handler, rpc
from services.common.inputs import load, require_role
from services.common.logging import get_logger
from services.common.observability import Observable
from services.common.timers import timer
from services.leads import domain, models
from services.leads.store import LeadStore, RouterProvider

log = get_logger(__name__)


class LeadsService(Observable):
    name = "leads"

    db = Database(models.metadata)
    router = RouterProvider()
    clock = Clock()

    def _store(self) -> LeadStore:
        return LeadStore(self.db, self.router, setting("CITY"))

    @rpc
    def submit(self, caller: dict, body: dict) -> dict:
        """Validate, deduplicate, route and store a lead; `created` is False for a repeat."""
        require_role(caller, domain.SUBMIT_ROLES, "submit leads")
        lead = load(LeadSubmissionSchema, body)
        return self._store().submit(caller, lead)

    @rpc
    def get(self, caller: dict, lead_id: str) -> dict:
        return self._store().view(caller, lead_id)

    @rpc
    def list(self, caller: dict, query: dict) -> dict:
        return self._store().list(caller, load(LeadListQuerySchema, query))

    @rpc
    def decide(self, caller: dict, lead_id: str, body: dict) -> dict:
        require_role(caller, domain.DECIDE_ROLES, "decide on leads")
        decision = load(DecisionSchema, body)
        domain.check_decision(decision["decision"], decision["reason"])
        return self._store().decide(caller, lead_id, decision["decision"], decision["reason"])

    @event_handler("bridge", "lead.handed_over")
    def on_lead_handed_over(self, event: Event) -> None:
        """A partner city handed us a lead located here: it becomes ours to decide on."""
        self._store().receive_handover(event)

    # what partners report back on leads we handed over (re-published by our bridge) ----------
    @event_handler("bridge", "lead.submitted")
    def on_partner_received(self, event: Event) -> None:
        self._store().partner_report(event, "received", partner_lead_id=str(event.data["lead_id"]))

    @event_handler("bridge", "lead.accepted")
    def on_partner_accepted(self, event: Event) -> None:
        self._store().partner_report(event, "accepted", partner_lead_id=str(event.data["lead_id"]))

    @event_handler("bridge", "lead.rejected")
    def on_partner_rejected(self, event: Event) -> None:
        self._store().partner_report(event, "rejected", partner_lead_id=str(event.data["lead_id"]))

    @event_handler("bridge", "case.opened")
    def on_partner_case_opened(self, event: Event) -> None:
        self._store().partner_report(event, "case_opened", case_no=event.data["case_no"])

    @event_handler("bridge", "case.closed")
    def on_partner_case_closed(self, event: Event) -> None:
        self._store().partner_report(event, "closed", case_no=event.data["case_no"])

    @event_handler("bridge", "lead.handover_overdue")
    def on_partner_overdue(self, event: Event) -> None:
        self._store().partner_overdue(event)

    @event_handler("transport", "transport.alert_raised")
    def on_transport_alert(self, event: Event) -> None:
        """A muck-truck alert raised by this city's transport service becomes a lead through the
        normal submit path (dedup, routing, handover to the city where it happened)."""
        lead = domain.lead_from_transport_alert(event.data, setting("CITY"))
        if lead is not None:
            self._submit_found(domain.TRANSPORT_CALLER, [lead])

    @event_handler("jointops", "jointops.report_filed")
    def on_jointops_report(self, event: Event) -> None:
        """Each violation of a checkpoint report filed here becomes a lead through the normal
        path (routed here or handed over to the city where it happened). Officers found each
        offence themselves, by plate: no merging into a nearby lead."""
        if event.city == setting("CITY"):
            self._submit_found(domain.JOINTOPS_CALLER, domain.leads_from_report(event.data),
                               deduplicate=False)

    def _submit_found(self, caller: dict, found: list[dict], deduplicate: bool = True) -> None:
        """Leads another service of this city found (a truck alert, a checkpoint's violations),
        each through the normal submit path; one that cannot be a lead is logged, not retried."""
        store = self._store()
        for lead in found:
            try:
                store.submit(caller, load(LeadSubmissionSchema, lead), deduplicate=deduplicate)
            except (InvalidInput, OutsideJurisdiction) as exc:
                log.warning("not turned into a lead", source=caller["org_id"],
                            source_ref=lead["source_ref"], error=str(exc))

    # handovers we received and have not decided on in time -------------------------------
    @timer("HANDOVER_SCAN_SECONDS", 30.0)
    def scan_handovers(self) -> None:
        self._scan_handovers(self.clock.now())

    @rpc
    def scan_handovers_at(self, at: str) -> int:
        """Tests and the demo only (`CLOCK_CONTROL`): the scan as of another instant."""
        return self._scan_handovers(self.clock.instant(at, "a handover scan"))

    def _scan_handovers(self, now) -> int:
        return self._store().scan_overdue_handovers(
            now, float(setting("HANDOVER_REMIND_MINUTES", 240)),
            float(setting("HANDOVER_ESCALATE_MINUTES", 480)))

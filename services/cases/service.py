"""The cases service: entrypoints only; rules live in `domain.py` and `chain.py`, storage in
`store.py` and `record.py`."""

from __future__ import annotations

from contracts.envelope import Event
from contracts.errors import InvalidInput
from contracts.http import cases as C
from services.cases import models
from services.cases.store import CaseRules, CaseStore
from services.common.clock import Clock
from services.common.config import setting
from services.common.db import Database
from services.common.entrypoints import event_handler, rpc
from services.common.inputs import load, require_role
from services.common.observability import Observable
from services.common.timers import timer

# action → (input schema, roles allowed, what the roles may do)
ACTIONS = {
    "accept": (C.AcceptSchema, C.SQUAD_ROLES, "accept cases"),
    "feedback": (C.FeedbackSchema, C.SQUAD_ROLES, "report rectifications"),
    "evaluate": (C.EvaluationSchema, C.EVALUATE_ROLES, "evaluate rectifications"),
    "reassign": (C.ReassignSchema, C.REASSIGN_ROLES, "reassign cases"),
    "transfer": (C.TransferSchema, C.SQUAD_ROLES, "transfer cases"),
    "close": (C.CloseSchema, C.CLOSE_ROLES, "close cases"),
    "hold": (C.HoldInSchema, C.HOLD_ROLES, "put cases on hold"),
    "resume": (C.ResumeSchema, C.HOLD_ROLES, "resume cases"),
}


class CasesService(Observable):
    name = "cases"

    db = Database(models.metadata)
    clock = Clock()
    rules = CaseRules()

    def _store(self) -> CaseStore:
        return CaseStore(self.db, self.clock, self.rules, setting("CITY"))

    # queries and commands (the gateway calls these) -----------------------------------------
    @rpc
    def list(self, caller: dict, query: dict) -> dict:
        require_role(caller, C.READ_ROLES, "see cases")
        return self._store().list(caller, load(C.CaseListQuerySchema, query))

    @rpc
    def get(self, caller: dict, case_id: str) -> dict:
        require_role(caller, C.READ_ROLES, "see cases")
        return self._store().view(caller, case_id)

    @rpc
    def act(self, caller: dict, case_id: str, action: str, body: dict) -> dict:
        """One step of a case: accept, feedback, evaluate, reassign, transfer, close, hold,
        resume."""
        if action not in ACTIONS:
            raise InvalidInput(f"unknown action {action}", {"action": sorted(ACTIONS)})
        schema, roles, what = ACTIONS[action]
        require_role(caller, roles, what)
        return self._store().act(caller, case_id, action, load(schema, body))

    @rpc
    def record(self, caller: dict, case_id: str) -> dict:
        require_role(caller, C.READ_ROLES, "see case records")
        return self._store().record_of(case_id)

    @rpc
    def squads(self, caller: dict) -> dict:
        require_role(caller, C.READ_ROLES, "see squads")
        return self._store().squad_list()

    @rpc
    def set_clock(self, at: str | None = None, mode: str = "frozen") -> dict:
        """Tests and the demo only (`CLOCK_CONTROL`): freeze or shift this service's clock."""
        return self.clock.set(at, mode)

    # events ----------------------------------------------------------------------------------
    @event_handler("leads", "lead.accepted")
    def on_lead_accepted(self, event: Event) -> None:
        """An accepted lead opens its case (once: the inbox drops redeliveries, the unique lead
        id a replay under another event id)."""
        self._store().open_from_lead(event)

    @event_handler("supervision", "supervision.deadline_set")
    def on_deadline_set(self, event: Event) -> None:
        self._store().record_supervision_step(event)

    @event_handler("supervision", "supervision.notice_issued")
    def on_notice_issued(self, event: Event) -> None:
        self._store().record_supervision_step(event)

    @event_handler("supervision", "supervision.deadline_closed")
    def on_deadline_closed(self, event: Event) -> None:
        self._store().record_supervision_step(event)

    @event_handler("supervision", "supervision.order_answered")
    def on_order_answered(self, event: Event) -> None:
        self._store().record_supervision_step(event)

    @event_handler("supervision", "supervision.order_evaluated")
    def on_order_evaluated(self, event: Event) -> None:
        self._store().record_supervision_step(event)

    # the record's head, published at a fixed interval ---------------------------------------
    @timer("ANCHOR_INTERVAL_SECONDS", 300.0)
    def anchor(self) -> None:
        self._store().anchor()

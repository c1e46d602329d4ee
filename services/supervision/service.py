"""The supervision service: entrypoints only; rules live in `domain.py` (and the working calendar
in `services/common/workcal.py`), storage in `store.py`."""

from __future__ import annotations

from contracts.envelope import Event
from contracts.http import supervision as S
from services.common.clock import Clock
from services.common.config import setting
from services.common.db import Database
from services.common.entrypoints import event_handler, rpc
from services.common.inputs import load, require_role
from services.common.observability import Observable
from services.common.timers import timer
from services.supervision import models
from services.supervision.domain import to_csv
from services.supervision.store import SupervisionRules, SupervisionStore


class SupervisionService(Observable):
    name = "supervision"

    db = Database(models.metadata)
    clock = Clock()
    rules = SupervisionRules()

    def _store(self) -> SupervisionStore:
        return SupervisionStore(self.db, self.clock, self.rules)

    # the timer: issue what fell due ---------------------------------------------------------
    @timer("SUPERVISION_TICK_SECONDS", 1.0)
    def tick(self) -> None:
        self._store().scan(self.clock.now())

    @rpc
    def scan(self, at: str, case_id: str | None = None) -> int:
        """Tests and the demo only (`CLOCK_CONTROL`): run a scan as of `at` ("time shifted"),
        for one case when `case_id` is given."""
        return self._store().scan(self.clock.instant(at, "a deadline scan"), case_id)

    @rpc
    def set_clock(self, at: str | None = None, mode: str = "frozen") -> dict:
        """Tests and the demo only (`CLOCK_CONTROL`): freeze or shift this service's clock."""
        return self.clock.set(at, mode)

    # queries and commands (the gateway calls these) -----------------------------------------
    @rpc
    def list_notices(self, caller: dict, query: dict) -> dict:
        require_role(caller, S.READ_ROLES, "see notices")
        return self._store().list_notices(load(S.NoticeListQuerySchema, query))

    @rpc
    def get_notice(self, caller: dict, notice_id) -> dict:
        require_role(caller, S.READ_ROLES, "see notices")
        return self._store().notice(notice_id)

    @rpc
    def answer_order(self, caller: dict, notice_id, body: dict) -> dict:
        require_role(caller, S.ANSWER_ROLES, "answer supervision orders")
        return self._store().answer(caller, notice_id, load(S.OrderFeedbackSchema, body))

    @rpc
    def evaluate_order(self, caller: dict, notice_id, body: dict) -> dict:
        require_role(caller, S.EVALUATE_ROLES, "evaluate answers to supervision orders")
        return self._store().evaluate(caller, notice_id, load(S.OrderEvaluationSchema, body))

    @rpc
    def case_loop(self, caller: dict, case_id: str) -> dict:
        require_role(caller, S.READ_ROLES, "see supervision of cases")
        return self._store().loop(case_id)

    @rpc
    def assessment(self, caller: dict, query: dict) -> dict:
        """The two-way assessment (双向考核); with `format=csv`, `{"csv": "..."}`."""
        require_role(caller, S.READ_ROLES, "see the assessment")
        q = load(S.AssessmentQuerySchema, query)
        report = self._store().assessment(q, setting("CITY"))
        if q["format"] == "csv":
            return {"csv": to_csv(report["rows"], report["totals"]),
                    "filename": f"assessment-{report['city']}-{report['period']['key']}-"
                                f"{report['by']}.csv"}
        return report

    # case events: deadlines follow the case -------------------------------------------------
    # handovers left undecided: the supervision ladder before there is a case -----------------
    @event_handler("leads", "lead.handover_overdue")
    def on_handover_overdue(self, event: Event) -> None:
        self._store().order_for_handover(event, self.clock.now())

    @event_handler("leads", "lead.accepted")
    def on_lead_accepted(self, event: Event) -> None:
        self._store().close_handover_order(event, "accepted", self.clock.now())

    @event_handler("leads", "lead.rejected")
    def on_lead_rejected(self, event: Event) -> None:
        self._store().close_handover_order(event, "rejected", self.clock.now())

    @rpc
    def list_handover_orders(self, caller: dict, query: dict) -> dict:
        require_role(caller, S.READ_ROLES, "see supervision orders")
        return self._store().list_handover_orders(load(S.HandoverOrderQuerySchema, query))

    @event_handler("cases", "case.opened")
    def on_case_opened(self, event: Event) -> None:
        self._store().follow(event)

    @event_handler("cases", "case.assigned")
    def on_case_assigned(self, event: Event) -> None:
        self._store().follow(event)

    @event_handler("cases", "case.accepted")
    def on_case_accepted(self, event: Event) -> None:
        self._store().follow(event)

    @event_handler("cases", "case.rectified")
    def on_case_rectified(self, event: Event) -> None:
        self._store().follow(event)

    @event_handler("cases", "case.evaluated")
    def on_case_evaluated(self, event: Event) -> None:
        self._store().follow(event)

    @event_handler("cases", "case.held")
    def on_case_held(self, event: Event) -> None:
        self._store().follow(event)

    @event_handler("cases", "case.resumed")
    def on_case_resumed(self, event: Event) -> None:
        self._store().follow(event)

    @event_handler("cases", "case.closed")
    def on_case_closed(self, event: Event) -> None:
        self._store().follow(event)

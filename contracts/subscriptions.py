"""Who consumes what. The broker topology is declared from this list at deploy time, so no event
is published before its queues exist (nameko publishes with mandatory=False)."""

from contracts.registry import registry

# A partner city's lead handed over to us arrives from the bridge as `lead.handed_over`.
registry.subscribe("leads", "on_lead_handed_over", "bridge", "lead.handed_over")
# What partners report back on leads we handed over to them.
registry.subscribe("leads", "on_partner_received", "bridge", "lead.submitted")
registry.subscribe("leads", "on_partner_accepted", "bridge", "lead.accepted")
registry.subscribe("leads", "on_partner_rejected", "bridge", "lead.rejected")
registry.subscribe("leads", "on_partner_case_opened", "bridge", "case.opened")
registry.subscribe("leads", "on_partner_case_closed", "bridge", "case.closed")
registry.subscribe("leads", "on_partner_overdue", "bridge", "lead.handover_overdue")

# The bridge sends what concerns a partner city (see services/bridge/domain.py); one queue, read
# in batches.
for _type in ("lead.handed_over", "lead.submitted", "lead.accepted", "lead.rejected",
              "lead.handover_overdue"):
    registry.subscribe("bridge", "send", "leads", _type, shared_queue="bridge.send")
for _type in ("case.opened", "case.closed", "evidence.anchored"):
    registry.subscribe("bridge", "send", "cases", _type, shared_queue="bridge.send")
# Transport (渣土运输): permits go to the cities they allow, alerts to the permit's issuer.
for _type in ("transport.permit_issued", "transport.alert_raised"):
    registry.subscribe("bridge", "send", "transport", _type, shared_queue="bridge.send")
registry.subscribe("transport", "on_permit_issued", "bridge", "transport.permit_issued")
registry.subscribe("transport", "on_partner_alert", "bridge", "transport.alert_raised")
# A muck-truck alert raised in this city becomes a lead here.
registry.subscribe("leads", "on_transport_alert", "transport", "transport.alert_raised")

# Cases (案件指派): an accepted lead opens a case; supervision steps go into the case record.
registry.subscribe("cases", "on_lead_accepted", "leads", "lead.accepted")
registry.subscribe("cases", "on_deadline_set", "supervision", "supervision.deadline_set")
registry.subscribe("cases", "on_notice_issued", "supervision", "supervision.notice_issued")
registry.subscribe("cases", "on_deadline_closed", "supervision", "supervision.deadline_closed")
registry.subscribe("cases", "on_order_answered", "supervision", "supervision.order_answered")
registry.subscribe("cases", "on_order_evaluated", "supervision", "supervision.order_evaluated")

# Supervision (限时督办) follows every case step: deadlines open, pause, move and close; a
# handover left undecided past the escalation limit gets a supervision order until decided.
registry.subscribe("supervision", "on_handover_overdue", "leads", "lead.handover_overdue")
registry.subscribe("supervision", "on_lead_accepted", "leads", "lead.accepted")
registry.subscribe("supervision", "on_lead_rejected", "leads", "lead.rejected")
registry.subscribe("supervision", "on_case_opened", "cases", "case.opened")
registry.subscribe("supervision", "on_case_assigned", "cases", "case.assigned")
registry.subscribe("supervision", "on_case_accepted", "cases", "case.accepted")
registry.subscribe("supervision", "on_case_rectified", "cases", "case.rectified")
registry.subscribe("supervision", "on_case_evaluated", "cases", "case.evaluated")
registry.subscribe("supervision", "on_case_held", "cases", "case.held")
registry.subscribe("supervision", "on_case_resumed", "cases", "case.resumed")
registry.subscribe("supervision", "on_case_closed", "cases", "case.closed")

# Joint operations (联合整治): the lead city's plan goes to its partners; answers, reports, what
# became of each violation and alerts seen in the area go back to the lead city.
JOINTOPS_FROM_PARTNERS = {
    "jointops.operation_published": "on_published",
    "jointops.invitation_answered": "on_answered",
    "jointops.report_filed": "on_partner_report",
    "jointops.violation_updated": "on_violation_updated",
    "jointops.alert_attached": "on_alert_attached",
}
for _type, _method in JOINTOPS_FROM_PARTNERS.items():
    registry.subscribe("bridge", "send", "jointops", _type, shared_queue="bridge.send")
    registry.subscribe("jointops", _method, "bridge", _type)
registry.subscribe("jointops", "on_transport_alert", "transport", "transport.alert_raised")
# Each violation a checkpoint reports becomes a lead in the reporting city's leads service (which
# routes it, or hands it over to the city where it happened) ...
registry.subscribe("leads", "on_jointops_report", "jointops", "jointops.report_filed")
# ... and the reporting city's jointops follows that lead to its case: here, or in the partner
# city it was handed to (one queue, read in batches).
for _producer, _type in (("leads", "lead.submitted"), ("leads", "lead.handed_over"),
                         ("leads", "lead.accepted"), ("leads", "lead.rejected"),
                         ("cases", "case.opened"), ("cases", "case.closed"),
                         ("bridge", "lead.submitted"), ("bridge", "lead.accepted"),
                         ("bridge", "lead.rejected"), ("bridge", "case.opened"),
                         ("bridge", "case.closed")):
    registry.subscribe("jointops", "follow", _producer, _type, shared_queue="jointops.follow")

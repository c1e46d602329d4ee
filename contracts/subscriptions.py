"""Who consumes what. The broker topology is declared from this list at deploy time, so no event
is published before its queues exist (nameko publishes with mandatory=False)."""

from contracts.registry import registry

# A partner city's lead handed over to us arrives from the bridge as `lead.handed_over`.
registry.subscribe("leads", "on_lead_handed_over", "bridge", "lead.handed_over")
# What partners report back on leads we handed over to them.
registry.subscribe("leads", "on_partner_received", "bridge", "lead.submitted")
registry.subscribe("leads", "on_partner_accepted", "bridge", "lead.accepted")
registry.subscribe("leads", "on_partner_rejected", "bridge", "lead.rejected")

# The bridge sends what concerns a partner city (see services/bridge/domain.py).
registry.subscribe("bridge", "send_lead_handed_over", "leads", "lead.handed_over")
registry.subscribe("bridge", "send_lead_received", "leads", "lead.submitted")
registry.subscribe("bridge", "send_lead_accepted", "leads", "lead.accepted")
registry.subscribe("bridge", "send_lead_rejected", "leads", "lead.rejected")

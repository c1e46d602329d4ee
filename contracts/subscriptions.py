"""Who consumes what. The broker topology is declared from this list at deploy time, so no event
is published before its queues exist (nameko publishes with mandatory=False)."""

from contracts.registry import registry

# A partner city's lead handed over to us arrives from the bridge as `lead.handed_over`.
registry.subscribe("leads", "on_lead_handed_over", "bridge", "lead.handed_over")

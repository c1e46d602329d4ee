"""`/api/v1/bridge/...`: the state of the links to the partner cities."""

from __future__ import annotations

from contracts.bridge import PartnerListSchema
from services.common.rpc import ServiceRpc
from services.gateway.api import operation, rpc_call

BRIDGE_ROLES = frozenset({"bureau", "supervisor", "admin"})


class BridgeResource:
    bridge = ServiceRpc("bridge")

    @operation("GET", "/api/v1/bridge/partners", "Partner cities and their links 协作城市链路",
               roles=BRIDGE_ROLES, responses={200: PartnerListSchema}, tag="bridge",
               description="Per partner: the shovel's state, the backlog waiting to go, the "
                           "last delivery each way, how many of its messages were refused and "
                           "why, the keys trusted for it and the event types it may send.")
    def bridge_partners(self, ctx):
        return 200, {"items": rpc_call(self.bridge.partners)}

"""`/api/v1/transport/...`: construction-waste transport (渣土运输) registry, positions, alerts,
trips."""

from __future__ import annotations

from contracts.http import transport as T
from services.common.rpc import ServiceRpc
from services.gateway.api import operation, rpc_call

TAG = "transport"


class TransportResource:
    transport = ServiceRpc("transport")

    @operation("POST", "/api/v1/transport/companies", "Register a transport company 运输企业",
               roles=T.ADMIN_ROLES, body=T.CompanySchema, responses={201: T.CompanySchema},
               tag=TAG)
    def add_company(self, ctx):
        return 201, rpc_call(self.transport.add_company, ctx.caller, ctx.raw_body)

    @operation("POST", "/api/v1/transport/vehicles", "Register a muck truck 渣土车登记",
               roles=T.ADMIN_ROLES, body=T.VehicleSchema, responses={201: T.VehicleViewSchema},
               tag=TAG, description="The plate as printed (苏E·12345, 沪A12345) is normalised.")
    def register_vehicle(self, ctx):
        return 201, rpc_call(self.transport.register_vehicle, ctx.caller, ctx.raw_body)

    @operation("POST", "/api/v1/transport/sites", "Register a construction or disposal site "
               "工地/消纳场", roles=T.ADMIN_ROLES, body=T.SiteSchema,
               responses={201: T.SiteSchema}, tag=TAG)
    def register_site(self, ctx):
        return 201, rpc_call(self.transport.register_site, ctx.caller, ctx.raw_body)

    @operation("POST", "/api/v1/transport/permits", "Issue a permit with its e-manifest "
               "核准/电子联单", roles=T.ADMIN_ROLES, body=T.PermitSchema,
               responses={201: T.PermitViewSchema}, tag=TAG,
               description="Replicated through the bridge to every city in `may_enter`.")
    def issue_permit(self, ctx):
        return 201, rpc_call(self.transport.issue_permit, ctx.caller, ctx.raw_body)

    @operation("GET", "/api/v1/transport/companies", "Transport companies 运输企业列表",
               roles=T.READ_ROLES, responses={200: T.CompanyListSchema}, tag=TAG)
    def list_companies(self, ctx):
        return 200, rpc_call(self.transport.list_companies, ctx.caller)

    @operation("POST", "/api/v1/transport/permits/{permit_id}/revoke", "Revoke a permit 撤销核准",
               roles=T.ADMIN_ROLES, body=T.RevokeSchema, responses={200: T.PermitViewSchema},
               tag=TAG, description="Only the issuing city; the revocation reaches every city "
                                    "the permit allowed, and the truck then drives without a "
                                    "permit (`no_permit`).")
    def revoke_permit(self, ctx, permit_id):
        return 200, rpc_call(self.transport.revoke_permit, ctx.caller, permit_id, ctx.raw_body)

    @operation("GET", "/api/v1/transport/permits/{permit_id}", "A permit 核准详情",
               roles=T.READ_ROLES, responses={200: T.PermitViewSchema}, tag=TAG)
    def get_permit(self, ctx, permit_id):
        return 200, rpc_call(self.transport.get_permit, ctx.caller, permit_id)

    @operation("POST", "/api/v1/transport/positions", "Send GPS positions 上报定位",
               roles=T.INGEST_ROLES, body=T.PositionBatchSchema,
               responses={200: T.IngestResultSchema}, tag=TAG,
               description="WGS84 or GCJ02. Repeated points change nothing; late points are "
                           "stored, never evaluated; bad points are refused one by one with the "
                           "reason, good ones in the same batch kept.")
    def ingest_positions(self, ctx):
        return 200, rpc_call(self.transport.ingest, ctx.caller, ctx.raw_body)

    @operation("GET", "/api/v1/transport/vehicles/{plate}/track", "A vehicle's track 轨迹",
               roles=T.READ_ROLES, query=T.TrackQuerySchema, responses={200: T.TrackSchema},
               tag=TAG)
    def vehicle_track(self, ctx, plate):
        return 200, rpc_call(self.transport.track, ctx.caller, plate,
                             ctx.request.args.to_dict())

    @operation("GET", "/api/v1/transport/alerts", "Transport alerts 渣土车告警",
               roles=T.READ_ROLES, query=T.AlertListQuerySchema,
               responses={200: T.AlertListSchema}, tag=TAG)
    def list_transport_alerts(self, ctx):
        return 200, rpc_call(self.transport.list_alerts, ctx.caller,
                             ctx.request.args.to_dict())

    @operation("GET", "/api/v1/transport/trips", "Trips per vehicle or permit 运输趟次",
               roles=T.READ_ROLES, query=T.TripListQuerySchema,
               responses={200: T.TripListSchema}, tag=TAG)
    def list_trips(self, ctx):
        return 200, rpc_call(self.transport.list_trips, ctx.caller, ctx.request.args.to_dict())

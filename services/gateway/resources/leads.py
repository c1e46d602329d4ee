"""`/api/v1/leads` and `/api/v1/categories`."""

from __future__ import annotations

from contracts.http import leads as L
from contracts.http.common import CategoryListSchema
from contracts.reference import CATEGORIES
from services.common.rpc import ServiceRpc
from services.gateway.api import operation, rpc_call


class LeadsResource:
    leads = ServiceRpc("leads")

    @operation("GET", "/api/v1/categories", "Lead categories 线索类别",
               responses={200: CategoryListSchema}, tag="reference")
    def categories(self, ctx):
        return 200, {"items": [
            {"code": c.code, "name_zh": c.name_zh, "name_en": c.name_en,
             "typical_sources": list(c.typical_sources)} for c in CATEGORIES.values()
        ]}

    @operation("POST", "/api/v1/leads", "Submit a lead 提交线索", roles=L.SUBMIT_ROLES,
               body=L.LeadSubmissionSchema, responses={201: L.LeadCreatedSchema,
                                                       200: L.LeadCreatedSchema},
               idempotent=True,
               description="Validated, deduplicated (same category within 50 m and 30 min of "
                           "an open lead is merged), routed by location to the city and squad "
                           "zone. The same source_ref from the same organisation answers 200 "
                           "with the lead already stored.")
    def submit_lead(self, ctx):
        result = rpc_call(self.leads.submit, ctx.caller, ctx.raw_body)
        return (201 if result["created"] else 200), result["lead"]

    @operation("GET", "/api/v1/leads", "List leads 线索列表", roles=L.SUBMIT_ROLES |
               L.CITY_WIDE_ROLES, query=L.LeadListQuerySchema, responses={200: L.LeadListSchema})
    def list_leads(self, ctx):
        return 200, rpc_call(self.leads.list, ctx.caller, ctx.request.args.to_dict())

    @operation("GET", "/api/v1/leads/{lead_id}", "A lead with its history 线索详情",
               roles=L.SUBMIT_ROLES | L.CITY_WIDE_ROLES, responses={200: L.LeadSchema})
    def get_lead(self, ctx, lead_id):
        return 200, rpc_call(self.leads.get, ctx.caller, lead_id)

    @operation("POST", "/api/v1/leads/{lead_id}/decision", "Accept or reject a lead 受理或退回",
               roles=L.DECIDE_ROLES, body=L.DecisionSchema, responses={200: L.LeadSchema},
               idempotent=True)
    def decide_lead(self, ctx, lead_id):
        return 200, rpc_call(self.leads.decide, ctx.caller, lead_id, ctx.raw_body)

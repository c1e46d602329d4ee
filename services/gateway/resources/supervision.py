"""`/api/v1/supervision/...` (限时督办): notices and orders, the loop of a case, the assessment."""

from __future__ import annotations

from werkzeug.wrappers import Response

from contracts.http import supervision as S
from services.common.rpc import ServiceRpc
from services.gateway.api import operation, rpc_call


class SupervisionResource:
    supervision = ServiceRpc("supervision")

    @operation("GET", "/api/v1/supervision/notices",
               "Reminder notices and supervision orders 提示单与督办单", roles=S.READ_ROLES,
               query=S.NoticeListQuerySchema, responses={200: S.NoticeListSchema},
               tag="supervision", description="Newest first; paginated with next_cursor.")
    def list_notices(self, ctx):
        return 200, rpc_call(self.supervision.list_notices, ctx.caller,
                             ctx.request.args.to_dict())

    @operation("GET", "/api/v1/supervision/handover-orders",
               "Supervision orders on undecided handovers 移交线索督办单", roles=S.READ_ROLES,
               query=S.HandoverOrderQuerySchema, responses={200: S.HandoverOrderListSchema},
               tag="supervision",
               description="A lead a partner city handed over and this city left undecided past "
                           "the escalation limit: open until the bureau accepts or rejects it.")
    def list_handover_orders(self, ctx):
        return 200, rpc_call(self.supervision.list_handover_orders, ctx.caller,
                             ctx.request.args.to_dict())

    @operation("GET", "/api/v1/supervision/notices/{notice_id}", "A notice or order",
               roles=S.READ_ROLES, responses={200: S.NoticeSchema}, tag="supervision")
    def get_notice(self, ctx, notice_id):
        return 200, rpc_call(self.supervision.get_notice, ctx.caller, notice_id)

    @operation("POST", "/api/v1/supervision/notices/{notice_id}/feedback",
               "Answer a supervision order 督办反馈", roles=S.ANSWER_ROLES,
               body=S.OrderFeedbackSchema, responses={200: S.NoticeSchema}, idempotent=True,
               tag="supervision")
    def answer_order(self, ctx, notice_id):
        return 200, rpc_call(self.supervision.answer_order, ctx.caller, notice_id, ctx.raw_body)

    @operation("POST", "/api/v1/supervision/notices/{notice_id}/evaluation",
               "Evaluate the answer to an order 督办评估", roles=S.EVALUATE_ROLES,
               body=S.OrderEvaluationSchema, responses={200: S.NoticeSchema}, idempotent=True,
               tag="supervision", description="satisfactory closes the order; unsatisfactory "
                                              "(with a comment) reopens it.")
    def evaluate_order(self, ctx, notice_id):
        return 200, rpc_call(self.supervision.evaluate_order, ctx.caller, notice_id,
                             ctx.raw_body)

    @operation("GET", "/api/v1/supervision/cases/{case_id}",
               "The five-step loop of a case 闭环: assignment, deadline, feedback, evaluation, "
               "review", roles=S.READ_ROLES, responses={200: S.CaseLoopSchema},
               tag="supervision")
    def case_loop(self, ctx, case_id):
        return 200, rpc_call(self.supervision.case_loop, ctx.caller, case_id)

    @operation("GET", "/api/v1/supervision/assessment",
               "Two-way assessment 双向考核: monthly, quarterly, yearly figures",
               roles=S.READ_ROLES, query=S.AssessmentQuerySchema,
               responses={200: S.AssessmentSchema}, tag="supervision", csv=True,
               description="Per squad, town or partner bureau: cases opened and closed, on-time "
                           "rate, average and p90 handling time in working hours, overdue "
                           "deadlines, reopened after a failed evaluation, reminders, orders "
                           "and escalations issued. `format=csv` answers text/csv.")
    def assessment(self, ctx):
        report = rpc_call(self.supervision.assessment, ctx.caller, ctx.request.args.to_dict())
        if ctx.query["format"] == "csv":
            return 200, Response(report["csv"], content_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition":
                                          f'attachment; filename="{report["filename"]}"'})
        return 200, report

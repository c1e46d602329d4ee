"""`/api/v1/jointops/...` (联合整治): plan a joint operation, invite partner bureaus, commit teams,
run it, file checkpoint reports, follow its feed, read the after-action report."""

from __future__ import annotations

from werkzeug.wrappers import Response

from contracts.http import jointops as J
from services.common.rpc import ServiceRpc
from services.gateway.api import operation, rpc_call

TAG = "jointops"
ITEM = "/api/v1/jointops/{operation_id}"
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "text": "text/plain; charset=utf-8"}


class JointOpsResource:
    jointops = ServiceRpc("jointops")

    @operation("POST", "/api/v1/jointops", "Plan a joint operation 制定联合整治方案",
               roles=J.PLAN_ROLES, body=J.PlanInSchema,
               responses={201: J.OperationViewSchema}, idempotent=True, tag=TAG,
               description="A draft led by this city. The area is a GeoJSON polygon or a stretch "
                           "of the border two cities share with a buffer in metres; every "
                           "checkpoint lies inside it, within the operation's window.")
    def plan_operation(self, ctx):
        return 201, rpc_call(self.jointops.create, ctx.caller, ctx.raw_body)

    @operation("GET", "/api/v1/jointops", "Joint operations 联合整治列表", roles=J.READ_ROLES,
               query=J.OperationListQuerySchema, responses={200: J.OperationListSchema}, tag=TAG,
               description="Those this city leads and those it was invited to; newest first.")
    def list_operations(self, ctx):
        return 200, rpc_call(self.jointops.list, ctx.caller, ctx.request.args.to_dict())

    @operation("GET", ITEM, "A joint operation: plan, invitations, teams, staffing 行动详情",
               roles=J.READ_ROLES, responses={200: J.OperationViewSchema}, tag=TAG,
               description="Checkpoints short of teams are flagged (`short`, `warnings`).")
    def get_operation(self, ctx, operation_id):
        return 200, rpc_call(self.jointops.get, ctx.caller, operation_id)

    @operation("PATCH", ITEM, "Change the plan 修改方案", roles=J.PLAN_ROLES,
               body=J.PlanPatchSchema, responses={200: J.OperationViewSchema}, tag=TAG,
               description="Draft, invited or confirmed only; after the invitation the new "
                           "revision is sent to the partners again.")
    def revise_operation(self, ctx, operation_id):
        return 200, rpc_call(self.jointops.revise, ctx.caller, operation_id, ctx.raw_body)

    def _act(self, ctx, operation_id, action):
        return 200, rpc_call(self.jointops.act, ctx.caller, operation_id, action)

    @operation("POST", ITEM + "/invite", "Invite the partner bureaus 发出邀请",
               roles=J.PLAN_ROLES, responses={200: J.OperationViewSchema}, tag=TAG,
               description="draft → invited; the plan goes to every partner through the bridge.")
    def invite_partners(self, ctx, operation_id):
        return self._act(ctx, operation_id, "invite")

    @operation("POST", ITEM + "/confirm", "Confirm the operation 确认行动", roles=J.PLAN_ROLES,
               responses={200: J.OperationViewSchema}, tag=TAG,
               description="invited → confirmed; unanswered invitations and checkpoints short "
                           "of teams are listed in `warnings`.")
    def confirm_operation(self, ctx, operation_id):
        return self._act(ctx, operation_id, "confirm")

    @operation("POST", ITEM + "/start", "Start the operation 行动开始", roles=J.PLAN_ROLES,
               responses={200: J.OperationViewSchema}, tag=TAG,
               description="confirmed → active (also done by the service when the window "
                           "opens).")
    def start_operation(self, ctx, operation_id):
        return self._act(ctx, operation_id, "start")

    @operation("POST", ITEM + "/complete", "End the operation 行动结束", roles=J.PLAN_ROLES,
               responses={200: J.OperationViewSchema}, tag=TAG,
               description="active → completed (also done when the window closes).")
    def complete_operation(self, ctx, operation_id):
        return self._act(ctx, operation_id, "complete")

    @operation("POST", ITEM + "/cancel", "Cancel the operation 取消行动", roles=J.PLAN_ROLES,
               responses={200: J.OperationViewSchema}, tag=TAG,
               description="Any time before it is completed; the partners are told and their "
                           "teams are free again.")
    def cancel_operation(self, ctx, operation_id):
        return self._act(ctx, operation_id, "cancel")

    @operation("PUT", ITEM + "/teams", "Commit the lead city's teams 本市力量部署",
               roles=J.PLAN_ROLES, body=J.TeamsInSchema, responses={200: J.OperationViewSchema},
               tag=TAG, description="Replaces this city's list. A team already committed to an "
                                    "operation whose window overlaps is refused (409).")
    def commit_teams(self, ctx, operation_id):
        return 200, rpc_call(self.jointops.commit_teams, ctx.caller, operation_id,
                             ctx.raw_body)

    @operation("POST", ITEM + "/answer", "Answer an invitation 答复邀请",
               roles=J.ANSWER_ROLES, body=J.AnswerInSchema,
               responses={200: J.OperationViewSchema}, tag=TAG,
               description="A partner bureau accepts with the teams it commits to checkpoints, "
                           "or declines; a later answer replaces the earlier one. The answer "
                           "goes to the lead city through the bridge.")
    def answer_invitation(self, ctx, operation_id):
        return 200, rpc_call(self.jointops.answer, ctx.caller, operation_id, ctx.raw_body)

    @operation("POST", ITEM + "/reports", "File a checkpoint report 检查点上报",
               roles=J.REPORT_ROLES, body=J.ReportInSchema, responses={201: J.ReportViewSchema},
               idempotent=True, tag=TAG,
               description="While the operation is active: vehicles checked and each "
                           "violation found. Every violation becomes a lead in the city where "
                           "it happened (routed there, or handed over), and is followed to its "
                           "case.")
    def file_report(self, ctx, operation_id):
        return 201, rpc_call(self.jointops.file_report, ctx.caller, operation_id, ctx.raw_body)

    @operation("GET", ITEM + "/feed", "The live feed 行动动态", roles=J.READ_ROLES,
               responses={200: J.FeedSchema}, tag=TAG,
               description="Checkpoint reports, transport alerts inside the area, and trucks "
                           "heading towards a checkpoint.")
    def operation_feed(self, ctx, operation_id):
        return 200, rpc_call(self.jointops.feed, ctx.caller, operation_id)

    @operation("GET", ITEM + "/report", "The after-action report 行动总结", roles=J.READ_ROLES,
               query=J.ReportFormatQuerySchema, responses={200: J.AfterActionSchema}, tag=TAG,
               csv=True, description="Kept by the lead city: per city, per checkpoint, per "
                                     "category and totals, leads and cases opened and their "
                                     "state now. `format=csv` answers text/csv, `format=text` "
                                     "a short summary.")
    def after_action(self, ctx, operation_id):
        report = rpc_call(self.jointops.after_action, ctx.caller, operation_id,
                          ctx.request.args.to_dict())
        if ctx.query["format"] in CONTENT_TYPES:
            return 200, Response(report["body"], content_type=CONTENT_TYPES[ctx.query["format"]])
        return 200, report

    @operation("POST", ITEM + "/report", "Mark the operation reported 提交总结",
               roles=J.PLAN_ROLES, responses={200: J.OperationViewSchema}, tag=TAG,
               description="completed → reported; the partners are told.")
    def mark_reported(self, ctx, operation_id):
        return self._act(ctx, operation_id, "report")

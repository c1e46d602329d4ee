"""`/api/v1/cases` (案件): list, get, the steps of a case, its tamper-evident record; squads."""

from __future__ import annotations

from contracts.http import cases as C
from services.common.rpc import ServiceRpc
from services.gateway.api import operation, rpc_call

STEP = "{step} a case. The whole step (case, history, record entry, event) commits at once."


class CasesResource:
    cases = ServiceRpc("cases")

    @operation("GET", "/api/v1/cases", "List cases 案件列表", roles=C.READ_ROLES,
               query=C.CaseListQuerySchema, responses={200: C.CaseListSchema}, tag="cases",
               description="Newest first; filter by status, squad, category, origin city, "
                           "lead, opening time; paginated with next_cursor.")
    def list_cases(self, ctx):
        return 200, rpc_call(self.cases.list, ctx.caller, ctx.request.args.to_dict())

    @operation("GET", "/api/v1/cases/{case_id}", "A case with its history 案件详情",
               roles=C.READ_ROLES, responses={200: C.CaseSchema}, tag="cases")
    def get_case(self, ctx, case_id):
        return 200, rpc_call(self.cases.get, ctx.caller, case_id)

    @operation("GET", "/api/v1/cases/{case_id}/record",
               "The case's entries in the tamper-evident record, with proofs 全过程记录",
               roles=C.READ_ROLES, responses={200: C.RecordSchema}, tag="cases",
               description="Every case and supervision step is an entry of this city's hash "
                           "chain. Each entry carries the canonical bytes that were hashed, "
                           "the recomputed hash and whether it links to the entry before; "
                           "`anchor` is the latest head published as evidence.anchored.")
    def case_record(self, ctx, case_id):
        return 200, rpc_call(self.cases.record, ctx.caller, case_id)

    @operation("POST", "/api/v1/cases/{case_id}/accept", "The squad accepts the case 签收",
               roles=C.SQUAD_ROLES, body=C.AcceptSchema, responses={200: C.CaseSchema},
               idempotent=True, tag="cases", description=STEP.format(step="Accept"))
    def accept_case(self, ctx, case_id):
        return self._step(ctx, case_id, "accept")

    @operation("POST", "/api/v1/cases/{case_id}/feedback",
               "Report the rectification with evidence 整改反馈", roles=C.SQUAD_ROLES,
               body=C.FeedbackSchema, responses={200: C.CaseSchema}, idempotent=True,
               tag="cases", description="With `finding`, the answer carries the "
                                        "discretionary-penalty suggestion (or 首违免罚).")
    def case_feedback(self, ctx, case_id):
        return self._step(ctx, case_id, "feedback")

    @operation("POST", "/api/v1/cases/{case_id}/evaluate",
               "Evaluate the rectification 结果评估", roles=C.EVALUATE_ROLES,
               body=C.EvaluationSchema, responses={200: C.CaseSchema}, idempotent=True,
               tag="cases", description="pass closes the case; fail (with a comment) sends it "
                                        "back to the squad for a new round with a new deadline.")
    def evaluate_case(self, ctx, case_id):
        return self._step(ctx, case_id, "evaluate")

    @operation("POST", "/api/v1/cases/{case_id}/reassign", "Reassign to another squad 改派",
               roles=C.REASSIGN_ROLES, body=C.ReassignSchema, responses={200: C.CaseSchema},
               idempotent=True, tag="cases",
               description="Without `squad`, the balancer picks the least-loaded other squad.")
    def reassign_case(self, ctx, case_id):
        return self._step(ctx, case_id, "reassign")

    @operation("POST", "/api/v1/cases/{case_id}/transfer",
               "Transfer to another squad with a reason 移交", roles=C.SQUAD_ROLES,
               body=C.TransferSchema, responses={200: C.CaseSchema}, idempotent=True,
               tag="cases", description=STEP.format(step="Transfer"))
    def transfer_case(self, ctx, case_id):
        return self._step(ctx, case_id, "transfer")

    @operation("POST", "/api/v1/cases/{case_id}/close", "Close a case 结案", roles=C.CLOSE_ROLES,
               body=C.CloseSchema, responses={200: C.CaseSchema}, idempotent=True,
               tag="cases", description="on_the_spot (squad, 当场处置): accepted, fixed and "
                                        "checked in one step, with evidence; administrative "
                                        "(bureau): with a reason.")
    def close_case(self, ctx, case_id):
        return self._step(ctx, case_id, "close")

    @operation("POST", "/api/v1/cases/{case_id}/hold",
               "The case waits on another party 挂起", roles=C.HOLD_ROLES,
               body=C.HoldInSchema, responses={200: C.CaseSchema}, idempotent=True,
               tag="cases", description="Deadlines pause only where the category's policy "
                                        "says so (pause_on_hold).")
    def hold_case(self, ctx, case_id):
        return self._step(ctx, case_id, "hold")

    @operation("POST", "/api/v1/cases/{case_id}/resume", "The wait is over 恢复",
               roles=C.HOLD_ROLES, body=C.ResumeSchema, responses={200: C.CaseSchema},
               idempotent=True, tag="cases", description=STEP.format(step="Resume"))
    def resume_case(self, ctx, case_id):
        return self._step(ctx, case_id, "resume")

    @operation("GET", "/api/v1/squads", "Squads, what they take and their open cases 执法中队",
               roles=C.READ_ROLES, responses={200: C.SquadListSchema}, tag="cases")
    def list_squads(self, ctx):
        return 200, rpc_call(self.cases.squads, ctx.caller)

    def _step(self, ctx, case_id, action):
        return 200, rpc_call(self.cases.act, ctx.caller, case_id, action, ctx.raw_body)

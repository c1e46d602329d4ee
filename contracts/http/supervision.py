"""HTTP (and RPC) schemas of supervision (限时督办): notices, orders, the loop of a case and the
two-way assessment (双向考核)."""

from marshmallow import Schema, fields, validate

from contracts.events.supervision import DEADLINE_KINDS, NOTICE_KINDS
from contracts.fields import CityCode, EvidenceSchema

READ_ROLES = frozenset({"squad", "supervisor", "bureau"})
ANSWER_ROLES = frozenset({"squad"})
EVALUATE_ROLES = frozenset({"supervisor"})

NOTICE_STATUSES = ("issued", "open", "answered", "closed")
PERIODS = ("month", "quarter", "year")
GROUPS = ("squad", "town", "partner")


class NoticeListQuerySchema(Schema):
    kind = fields.String(validate=validate.OneOf(NOTICE_KINDS))
    status = fields.String(validate=validate.OneOf(NOTICE_STATUSES))
    squad = fields.String(validate=validate.Length(max=100))
    case_id = fields.UUID()
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String(validate=validate.Length(max=300))


class HandoverOrderQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf(["open", "closed"]))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String(validate=validate.Length(max=300))


class HandoverOrderSchema(Schema):
    id = fields.Integer(required=True)
    lead_id = fields.UUID(required=True, metadata={"description": "the lead in this city"})
    origin_city = CityCode(required=True)
    origin_lead_id = fields.UUID(required=True)
    category = fields.String()
    squad = fields.String(allow_none=True)
    title = fields.String()
    recipient = fields.String()
    received_at = fields.DateTime()
    issued_at = fields.DateTime()
    status = fields.String(validate=validate.OneOf(["open", "closed"]))
    closed_at = fields.DateTime(allow_none=True)
    outcome = fields.String(allow_none=True, validate=validate.OneOf(["accepted", "rejected"]))


class HandoverOrderListSchema(Schema):
    items = fields.List(fields.Nested(HandoverOrderSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class AnswerSchema(Schema):
    at = fields.DateTime()
    actor = fields.String()
    text = fields.String()
    evidence = fields.List(fields.Nested(EvidenceSchema))


class OrderEvaluationOutSchema(Schema):
    at = fields.DateTime()
    actor = fields.String()
    result = fields.String()
    comment = fields.String(allow_none=True)


class NoticeSchema(Schema):
    id = fields.Integer(required=True)
    case_id = fields.UUID(required=True)
    case_no = fields.String(required=True)
    deadline_id = fields.Integer(required=True)
    deadline_kind = fields.String(validate=validate.OneOf(DEADLINE_KINDS))
    kind = fields.String(required=True, validate=validate.OneOf(NOTICE_KINDS))
    level = fields.Integer(required=True,
                           metadata={"description": "0 reminder, 1 order, 2+ escalation levels"})
    title = fields.String(required=True, metadata={"example": "督办单 Supervision order"})
    recipient = fields.String()
    squad = fields.String(allow_none=True)
    town = fields.String(allow_none=True)
    status = fields.String(validate=validate.OneOf(NOTICE_STATUSES))
    issued_at = fields.DateTime()
    due_at = fields.DateTime()
    answers = fields.List(fields.Nested(AnswerSchema))
    evaluations = fields.List(fields.Nested(OrderEvaluationOutSchema))


class NoticeListSchema(Schema):
    items = fields.List(fields.Nested(NoticeSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class OrderFeedbackSchema(Schema):
    """The squad's answer to a supervision order (督办反馈)."""

    text = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    evidence = fields.List(fields.Nested(EvidenceSchema), load_default=list,
                           validate=validate.Length(max=20))


class OrderEvaluationSchema(Schema):
    result = fields.String(required=True,
                           validate=validate.OneOf(["satisfactory", "unsatisfactory"]))
    comment = fields.String(load_default=None, allow_none=True,
                            validate=validate.Length(max=2000),
                            metadata={"description": "required when unsatisfactory"})


class DeadlineSchema(Schema):
    id = fields.Integer()
    kind = fields.String(validate=validate.OneOf(DEADLINE_KINDS))
    seq = fields.Integer()
    squad = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "pending, met or cancelled"})
    started_at = fields.DateTime()
    limit = fields.String()
    limit_hours = fields.Float()
    remind_at = fields.DateTime(allow_none=True)
    due_at = fields.DateTime(allow_none=True)
    paused = fields.Boolean()
    ended_at = fields.DateTime(allow_none=True)
    late = fields.Boolean(allow_none=True)
    next_step = fields.String(allow_none=True)
    next_at = fields.DateTime(allow_none=True)


class LoopStepSchema(Schema):
    step = fields.String(required=True)
    title = fields.String(required=True)
    items = fields.List(fields.Dict(), required=True)


class CaseLoopSchema(Schema):
    """The five-step closed loop of one case: 平台交办 → 限期整改 → 平台反馈 → 结果评估 →
    定期调度."""

    case_id = fields.UUID(required=True)
    case_no = fields.String(required=True)
    status = fields.String()
    squad = fields.String(allow_none=True)
    policy = fields.Dict()
    loop = fields.List(fields.Nested(LoopStepSchema), required=True)
    deadlines = fields.List(fields.Nested(DeadlineSchema))
    notices = fields.List(fields.Nested(NoticeSchema))


class AssessmentQuerySchema(Schema):
    period = fields.String(load_default="month", validate=validate.OneOf(PERIODS))
    at = fields.String(load_default=None, validate=validate.Regexp(r"^\d{4}(-(\d{2}|Q[1-4]))?$"),
                       metadata={"description": "2026-11 (month), 2026-Q4 (quarter), 2026 "
                                                "(year); default: the current one"})
    by = fields.String(load_default="squad", validate=validate.OneOf(GROUPS))
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))


class AssessmentRowSchema(Schema):
    group = fields.String(required=True)
    cases_opened = fields.Integer(required=True)
    cases_closed = fields.Integer(required=True)
    on_time = fields.Integer(required=True)
    on_time_rate = fields.Float(allow_none=True)
    avg_handling_hours = fields.Float(allow_none=True)
    p90_handling_hours = fields.Float(allow_none=True)
    overdue = fields.Integer(required=True)
    reopened = fields.Integer(required=True)
    reminders = fields.Integer(required=True)
    orders = fields.Integer(required=True)
    escalations = fields.Integer(required=True)


class PeriodSchema(Schema):
    kind = fields.String(validate=validate.OneOf(PERIODS))
    key = fields.String()
    start = fields.DateTime()
    end = fields.DateTime()


class AssessmentSchema(Schema):
    city = CityCode(required=True)
    period = fields.Nested(PeriodSchema, required=True)
    by = fields.String(required=True, validate=validate.OneOf(GROUPS))
    generated_at = fields.DateTime()
    rows = fields.List(fields.Nested(AssessmentRowSchema), required=True)
    totals = fields.Nested(AssessmentRowSchema)
    definitions = fields.Dict(keys=fields.String(), values=fields.String())

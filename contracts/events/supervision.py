"""Events of the supervision service (限时督办): deadlines, reminders and supervision orders."""

from marshmallow import Schema, fields, validate

from contracts.fields import CityCode, EvidenceSchema
from contracts.registry import registry

DEADLINE_KINDS = ("response", "disposal")
NOTICE_KINDS = ("reminder", "order", "escalation")


class SupervisionEvent(Schema):
    case_id = fields.UUID(required=True)
    case_no = fields.String(required=True)
    squad = fields.String(allow_none=True, required=True)
    origin_city = CityCode(allow_none=True, load_default=None)


@registry.event("supervision.deadline_set", 1, "supervision",
                "A deadline of a case step was set, or moved (paused or resumed while the case "
                "waited on another party).")
class DeadlineSet(SupervisionEvent):
    deadline_id = fields.Integer(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(DEADLINE_KINDS))
    seq = fields.Integer(required=True)
    started_at = fields.AwareDateTime(required=True)
    limit = fields.String(required=True, metadata={"example": "2 working_days"})
    limit_hours = fields.Float(required=True)
    due_at = fields.AwareDateTime(allow_none=True, required=True,
                                  metadata={"description": "null while the clock is paused"})
    remind_at = fields.AwareDateTime(allow_none=True, required=True)
    reason = fields.String(required=True,
                           validate=validate.OneOf(["set", "paused", "resumed", "rescheduled"]))


@registry.event("supervision.notice_issued", 1, "supervision",
                "A reminder notice (提示单), a supervision order (督办单) or an escalation "
                "(升级督办) was issued for a deadline; each exactly once.")
class NoticeIssued(SupervisionEvent):
    notice_id = fields.Integer(required=True)
    deadline_id = fields.Integer(required=True)
    deadline_kind = fields.String(required=True, validate=validate.OneOf(DEADLINE_KINDS))
    kind = fields.String(required=True, validate=validate.OneOf(NOTICE_KINDS))
    level = fields.Integer(required=True)
    title = fields.String(required=True)
    recipient = fields.String(required=True)
    town = fields.String(allow_none=True, load_default=None)
    issued_at = fields.AwareDateTime(required=True)
    due_at = fields.AwareDateTime(allow_none=True, required=True)


@registry.event("supervision.deadline_closed", 1, "supervision",
                "A deadline ended: met by the step it waited for, or cancelled (reassigned, "
                "closed administratively); `late` when that was after the due time.")
class DeadlineClosed(SupervisionEvent):
    deadline_id = fields.Integer(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(DEADLINE_KINDS))
    seq = fields.Integer(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(["met", "cancelled"]))
    ended_at = fields.AwareDateTime(required=True)
    due_at = fields.AwareDateTime(allow_none=True, required=True)
    late = fields.Boolean(required=True)
    working_hours = fields.Float(required=True)


@registry.event("supervision.order_answered", 1, "supervision",
                "The squad answered a supervision order (反馈) with what it did and evidence.")
class OrderAnswered(SupervisionEvent):
    notice_id = fields.Integer(required=True)
    actor = fields.String(required=True)
    at = fields.AwareDateTime(required=True)
    text = fields.String(required=True)
    evidence = fields.List(fields.Nested(EvidenceSchema), load_default=list)


@registry.event("supervision.order_evaluated", 1, "supervision",
                "A supervisor evaluated the answer to a supervision order: satisfactory closes "
                "the order, unsatisfactory reopens it.")
class OrderEvaluated(SupervisionEvent):
    notice_id = fields.Integer(required=True)
    actor = fields.String(required=True)
    at = fields.AwareDateTime(required=True)
    result = fields.String(required=True,
                           validate=validate.OneOf(["satisfactory", "unsatisfactory"]))
    comment = fields.String(allow_none=True, load_default=None)

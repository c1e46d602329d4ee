"""Events of the cases service (案件指派), and the evidence anchor of its tamper-evident record.

Every case event carries the case's identity at the top (for the bridge, which reports status
back to a handed-over lead's origin city) and `case`, a snapshot of the case after the step:
its assignments, disposal rounds and holds. Consumers rebuild what they need from the latest
snapshot (`case.version` orders them), so they do not depend on the order in which events of
different types arrive.
"""

from marshmallow import Schema, fields, validate

from contracts.fields import Category, CityCode, EvidenceSchema
from contracts.registry import registry

CASE_STATUSES = ("unassigned", "assigned", "in_progress", "rectified", "closed")
CLOSE_MODES = ("evaluated", "on_the_spot", "administrative")
ASSIGNMENT_KINDS = ("auto", "reassigned", "transferred")


class AssignmentSchema(Schema):
    """One assignment of the case to a squad (平台交办)."""

    n = fields.Integer(required=True, validate=validate.Range(min=1))
    squad = fields.String(required=True, validate=validate.Length(min=1, max=100))
    town = fields.String(allow_none=True, load_default=None)
    kind = fields.String(required=True, validate=validate.OneOf(ASSIGNMENT_KINDS))
    at = fields.AwareDateTime(required=True)
    accepted_at = fields.AwareDateTime(allow_none=True, load_default=None)


class RoundSchema(Schema):
    """One disposal round (限期整改): from the squad's acceptance, or a failed evaluation, to the
    feedback and its evaluation."""

    round = fields.Integer(required=True, validate=validate.Range(min=1))
    squad = fields.String(required=True)
    started_at = fields.AwareDateTime(required=True)
    rectified_at = fields.AwareDateTime(allow_none=True, load_default=None)
    evaluated_at = fields.AwareDateTime(allow_none=True, load_default=None)
    passed = fields.Boolean(allow_none=True, load_default=None)
    cancelled_at = fields.AwareDateTime(allow_none=True, load_default=None)


class HoldSchema(Schema):
    """The case waits on another party (e.g. another department) from `since` to `until`."""

    since = fields.AwareDateTime(required=True)
    until = fields.AwareDateTime(allow_none=True, load_default=None)
    party = fields.String(required=True, validate=validate.Length(min=1, max=200))


class CaseSnapshotSchema(Schema):
    case_id = fields.UUID(required=True)
    case_no = fields.String(required=True)
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    city = CityCode(required=True)
    category = Category(required=True)
    status = fields.String(required=True, validate=validate.OneOf(CASE_STATUSES))
    squad = fields.String(allow_none=True, required=True)
    town = fields.String(allow_none=True, load_default=None)
    lead_id = fields.UUID(required=True)
    origin_city = CityCode(allow_none=True, load_default=None)
    origin_lead_id = fields.UUID(allow_none=True, load_default=None)
    opened_at = fields.AwareDateTime(required=True)
    closed_at = fields.AwareDateTime(allow_none=True, load_default=None)
    close_mode = fields.String(allow_none=True, load_default=None,
                               validate=validate.OneOf(CLOSE_MODES))
    assignments = fields.List(fields.Nested(AssignmentSchema), required=True)
    rounds = fields.List(fields.Nested(RoundSchema), required=True)
    holds = fields.List(fields.Nested(HoldSchema), required=True)


class CaseEvent(Schema):
    """What every case event says."""

    case_id = fields.UUID(required=True)
    case_no = fields.String(required=True, metadata={"example": "TC-2026-000123"})
    lead_id = fields.UUID(required=True)
    city = CityCode(required=True)
    category = Category(required=True)
    status = fields.String(required=True, validate=validate.OneOf(CASE_STATUSES))
    squad = fields.String(allow_none=True, required=True)
    origin_city = CityCode(allow_none=True, load_default=None)
    origin_lead_id = fields.UUID(allow_none=True, load_default=None)
    actor = fields.String(required=True)
    at = fields.AwareDateTime(required=True)
    case = fields.Nested(CaseSnapshotSchema, required=True)


@registry.event("case.opened", 1, "cases",
                "An accepted lead opened a case (one per lead), assigned to a squad when one can "
                "take it.")
class CaseOpened(CaseEvent):
    assignment_reason = fields.String(required=True)


@registry.event("case.assigned", 1, "cases",
                "The case was reassigned (bureau, supervisor) or transferred (squad) to another "
                "squad, with a reason.")
class CaseAssigned(CaseEvent):
    kind = fields.String(required=True, validate=validate.OneOf(["reassigned", "transferred"]))
    from_squad = fields.String(allow_none=True, required=True)
    reason = fields.String(required=True)


@registry.event("case.accepted", 1, "cases",
                "The assigned squad accepted the case; its disposal deadline starts.")
class CaseAccepted(CaseEvent):
    note = fields.String(allow_none=True, load_default=None)


class PenaltySchema(Schema):
    """The discretionary-penalty suggestion (行政处罚自由裁量基准 / 首违免罚) for a finding."""

    decision = fields.String(required=True,
                             validate=validate.OneOf(["no_penalty", "penalty", "no_finding"]))
    rule_id = fields.String(allow_none=True, load_default=None)
    min_yuan = fields.Integer(allow_none=True, load_default=None)
    max_yuan = fields.Integer(allow_none=True, load_default=None)
    suggested_yuan = fields.Integer(allow_none=True, load_default=None)
    explanation = fields.String(required=True)
    rules_version = fields.String(required=True)


@registry.event("case.rectified", 1, "cases",
                "The squad reported the rectification with evidence (平台反馈).")
class CaseRectified(CaseEvent):
    round = fields.Integer(required=True)
    summary = fields.String(required=True)
    evidence = fields.List(fields.Nested(EvidenceSchema), required=True)
    penalty = fields.Nested(PenaltySchema, allow_none=True, load_default=None)


@registry.event("case.evaluated", 1, "cases",
                "A supervisor evaluated the rectification (结果评估): pass closes the case, fail "
                "sends it back for a new round with a new deadline.")
class CaseEvaluated(CaseEvent):
    round = fields.Integer(required=True)
    result = fields.String(required=True, validate=validate.OneOf(["pass", "fail"]))
    comment = fields.String(allow_none=True, load_default=None)


@registry.event("case.held", 1, "cases",
                "The case waits on another party; deadlines pause where the policy says so.")
class CaseHeld(CaseEvent):
    party = fields.String(required=True)
    reason = fields.String(required=True)


@registry.event("case.resumed", 1, "cases", "The case no longer waits on another party.")
class CaseResumed(CaseEvent):
    note = fields.String(allow_none=True, load_default=None)


@registry.event("case.closed", 1, "cases",
                "The case is closed: after a passed evaluation, on the spot (当场处置) with "
                "evidence, or administratively with a reason.")
class CaseClosed(CaseEvent):
    mode = fields.String(required=True, validate=validate.OneOf(CLOSE_MODES))
    summary = fields.String(allow_none=True, load_default=None)
    evidence = fields.List(fields.Nested(EvidenceSchema), load_default=list)


@registry.event("evidence.anchored", 1, "cases",
                "The head of this city's tamper-evident case record (区块链+公证), published at a "
                "fixed interval when it moved; partner cities keep the anchors.")
class EvidenceAnchored(Schema):
    city = CityCode(required=True)
    seq = fields.Integer(required=True, validate=validate.Range(min=1))
    hash = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}$"))
    previous_seq = fields.Integer(required=True, validate=validate.Range(min=0))
    at = fields.AwareDateTime(required=True)
    algorithm = fields.String(required=True, metadata={
        "description": "sha256 over canonical JSON of {seq, prev_hash, case_id, kind, payload, "
                       "at} (sorted keys, no whitespace, UTF-8)"})

"""Events of the joint operations service (联合整治): plans, answers, checkpoint reports and what
became of each violation. The lead city's service owns a plan; partners hold copies and speak for
their own teams, reports and violations. Every one of these crosses the bridge."""

from marshmallow import Schema, fields, validate

from contracts.fields import Category, CityCode, EvidenceSchema, PointSchema
from contracts.reference import OPERATION_KIND_CODES
from contracts.registry import registry

OPERATION_STATUSES = ("draft", "invited", "confirmed", "active", "completed", "reported",
                      "cancelled")
PLAN_CHANGES = ("invited", "revised", "confirmed", "activated", "completed", "reported",
                "cancelled")
DECISIONS = ("accept", "decline")
# The organisation a violation's lead is submitted as (the leads service's `source_org`).
SOURCE_ORG = "联合整治 Joint operations"
# What became of a violation's lead: the lead's own steps, then its case's.
VIOLATION_STATES = ("pending", "routed", "handed_over", "received", "merged", "accepted",
                    "rejected", "case_opened", "case_closed")


class CheckpointSchema(Schema):
    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_-]{1,32}$"))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    location = fields.Nested(PointSchema, required=True)
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True)
    teams_needed = fields.Integer(required=True, validate=validate.Range(0, 50))


class TeamSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    checkpoint = fields.String(required=True, validate=validate.Length(min=1, max=32))
    people = fields.Integer(required=True, validate=validate.Range(1, 500))
    vehicles = fields.Integer(load_default=0, validate=validate.Range(0, 100))
    leader = fields.String(allow_none=True, load_default=None,
                           validate=validate.Length(max=200))
    contact = fields.String(allow_none=True, load_default=None,
                            validate=validate.Length(max=100))


class PlanSchema(Schema):
    """A plan as the lead city publishes it: everything a partner needs to take part."""

    operation_id = fields.UUID(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(OPERATION_KIND_CODES))
    lead_city = CityCode(required=True)
    coordinator = fields.String(required=True)
    partners = fields.List(CityCode(), required=True)
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True)
    area = fields.Dict(required=True, metadata={"description": "GeoJSON Polygon, WGS84"})
    area_spec = fields.Dict(required=True, metadata={
        "description": "what the coordinator gave: a polygon, or a shared border and buffer"})
    categories = fields.List(Category(), required=True)
    checkpoints = fields.List(fields.Nested(CheckpointSchema), required=True)
    briefing = fields.String(allow_none=True, load_default=None)
    status = fields.String(required=True, validate=validate.OneOf(OPERATION_STATUSES))
    revision = fields.Integer(required=True)


@registry.event(
    "jointops.operation_published", 1, "jointops",
    "The lead city's plan, sent to every partner bureau when they are invited and again on each "
    "change after that (a revision, confirmation, start, end, report or cancellation); the "
    "partners' copies follow it.")
class OperationPublished(PlanSchema):
    change = fields.String(required=True, validate=validate.OneOf(PLAN_CHANGES))
    short_checkpoints = fields.List(fields.String(), load_default=list, metadata={
        "description": "checkpoints with fewer teams committed than needed"})


@registry.event(
    "jointops.invitation_answered", 1, "jointops",
    "A partner bureau answered an invitation: accept, with the teams it commits to checkpoints, "
    "or decline; a later answer replaces the earlier one. Goes to the lead city.")
class InvitationAnswered(Schema):
    operation_id = fields.UUID(required=True)
    lead_city = CityCode(required=True)
    city = CityCode(required=True)
    decision = fields.String(required=True, validate=validate.OneOf(DECISIONS))
    teams = fields.List(fields.Nested(TeamSchema), required=True)
    note = fields.String(allow_none=True, load_default=None)
    answered_by = fields.String(required=True)
    answered_at = fields.AwareDateTime(required=True)
    revision = fields.Integer(required=True, metadata={"description": "the plan revision seen"})


class ViolationSchema(Schema):
    violation_id = fields.UUID(required=True)
    plate = fields.String(allow_none=True, load_default=None)
    category = Category(required=True)
    location = fields.Nested(PointSchema, required=True)
    city = CityCode(allow_none=True, required=True,
                    metadata={"description": "where it happened (its lead goes there)"})
    address = fields.String(allow_none=True, load_default=None)
    description = fields.String(required=True)
    occurred_at = fields.AwareDateTime(required=True)
    evidence = fields.List(fields.Nested(EvidenceSchema), load_default=list)


@registry.event(
    "jointops.report_filed", 1, "jointops",
    "A checkpoint report of an active operation: vehicles checked and each violation found. The "
    "reporting city's leads service turns every violation into a lead; the lead city collects "
    "the report.")
class ReportFiled(Schema):
    operation_id = fields.UUID(required=True)
    lead_city = CityCode(required=True)
    report_id = fields.UUID(required=True)
    city = CityCode(required=True)
    checkpoint = fields.String(required=True)
    team = fields.String(allow_none=True, load_default=None)
    period_from = fields.AwareDateTime(required=True)
    period_to = fields.AwareDateTime(required=True)
    vehicles_checked = fields.Integer(required=True)
    violations = fields.List(fields.Nested(ViolationSchema), required=True)
    note = fields.String(allow_none=True, load_default=None)
    filed_by = fields.String(required=True)
    filed_at = fields.AwareDateTime(required=True)


@registry.event(
    "jointops.violation_updated", 1, "jointops",
    "What became of a violation's lead, followed by the reporting city: routed or handed over, "
    "accepted or rejected, and its case opened and closed (case number). Goes to the lead city.")
class ViolationUpdated(Schema):
    operation_id = fields.UUID(required=True)
    lead_city = CityCode(required=True)
    violation_id = fields.UUID(required=True)
    reported_by = CityCode(required=True)
    state = fields.String(required=True, validate=validate.OneOf(VIOLATION_STATES))
    lead_id = fields.UUID(allow_none=True, required=True)
    handled_by = CityCode(allow_none=True, required=True,
                          metadata={"description": "the city holding the lead and its case"})
    case_no = fields.String(allow_none=True, required=True)
    at = fields.AwareDateTime(required=True)


@registry.event(
    "jointops.alert_attached", 1, "jointops",
    "A transport alert a partner city raised inside an active operation's area, attached to the "
    "operation's feed. Goes to the lead city.")
class AlertAttached(Schema):
    operation_id = fields.UUID(required=True)
    lead_city = CityCode(required=True)
    city = CityCode(required=True)
    alert_id = fields.UUID(required=True)
    kind = fields.String(required=True)
    plate = fields.String(required=True)
    location = fields.Nested(PointSchema, required=True)
    at = fields.AwareDateTime(required=True)
    permit_id = fields.String(allow_none=True, load_default=None)

"""HTTP (and RPC) schemas of joint operations (联合整治): plans, answers, teams, checkpoint reports,
the live feed and the after-action report."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from contracts.events.jointops import (
    DECISIONS,
    OPERATION_STATUSES,
    VIOLATION_STATES,
    CheckpointSchema,
    PlanSchema,
    TeamSchema,
)
from contracts.fields import Category, CityCode, EvidenceSchema, PointSchema
from contracts.http.leads import LocationInSchema
from contracts.reference import OPERATION_KIND_CODES

# Who may do what (the gateway documents and checks them; the service enforces them).
PLAN_ROLES = frozenset({"coordinator"})  # plan, revise, invite, confirm, start, end, report
ANSWER_ROLES = frozenset({"coordinator", "bureau"})  # a partner bureau answers, commits teams
REPORT_ROLES = frozenset({"coordinator", "bureau", "squad"})  # checkpoint reports
READ_ROLES = frozenset({"coordinator", "bureau", "squad", "supervisor"})

MAX_CHECKPOINTS = 50
MAX_VIOLATIONS_PER_REPORT = 200


class BorderAreaSchema(Schema):
    """A stretch of the border two cities share, with a buffer on both sides."""

    cities = fields.List(CityCode(), required=True, validate=validate.Length(equal=2))
    buffer_m = fields.Float(required=True, validate=validate.Range(100, 20_000))
    from_point = fields.Nested(PointSchema, data_key="from", load_default=None, allow_none=True,
                               metadata={"description": "with `to`: only the stretch between "
                                                        "the two points"})
    to_point = fields.Nested(PointSchema, data_key="to", load_default=None, allow_none=True)

    @validates_schema
    def _pair(self, data, **kwargs):
        if len(set(data.get("cities") or [])) != 2:
            raise ValidationError("two different cities", "cities")
        if (data.get("from_point") is None) != (data.get("to_point") is None):
            raise ValidationError("give both `from` and `to`, or neither", "to")


class AreaInSchema(Schema):
    polygon = fields.Dict(load_default=None, allow_none=True,
                          metadata={"description": "GeoJSON Polygon, WGS84"})
    border = fields.Nested(BorderAreaSchema, load_default=None, allow_none=True)

    @validates_schema
    def _one(self, data, **kwargs):
        if (data.get("polygon") is None) == (data.get("border") is None):
            raise ValidationError("give exactly one of `polygon` and `border`", "area")


class CheckpointInSchema(Schema):
    code = fields.String(required=True, validate=validate.Regexp(
        r"^[A-Za-z0-9_-]{1,32}$", error="letters, digits, - and _, at most 32"))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    location = fields.Nested(LocationInSchema, required=True)
    starts_at = fields.AwareDateTime(load_default=None, allow_none=True, format="iso",
                                     metadata={"description": "default: the operation's start"})
    ends_at = fields.AwareDateTime(load_default=None, allow_none=True, format="iso")
    teams_needed = fields.Integer(load_default=1, validate=validate.Range(0, 50))


class PlanInSchema(Schema):
    """POST /api/v1/jointops body (PATCH takes any subset of it)."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.OneOf(OPERATION_KIND_CODES))
    partners = fields.List(CityCode(), required=True, validate=validate.Length(min=1, max=4))
    starts_at = fields.AwareDateTime(required=True, format="iso")
    ends_at = fields.AwareDateTime(required=True, format="iso")
    area = fields.Nested(AreaInSchema, required=True)
    categories = fields.List(Category(), required=True, validate=validate.Length(min=1))
    checkpoints = fields.List(fields.Nested(CheckpointInSchema), required=True,
                              validate=validate.Length(min=1, max=MAX_CHECKPOINTS))
    briefing = fields.String(load_default=None, allow_none=True,
                             validate=validate.Length(max=8000))


class PlanPatchSchema(PlanInSchema):
    """Any subset of a plan's fields; each one given is whole and replaces what was there (an
    `area` or `checkpoints` given is checked as in a new plan)."""

    def __init__(self, *args, **kwargs):
        # partial at the top level only: nested areas and checkpoints stay complete
        kwargs["partial"] = tuple(PlanInSchema._declared_fields)
        super().__init__(*args, **kwargs)


class AnswerInSchema(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(DECISIONS))
    teams = fields.List(fields.Nested(TeamSchema), load_default=list,
                        validate=validate.Length(max=50))
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))

    @validates_schema
    def _declined_without_teams(self, data, **kwargs):
        if data["decision"] == "decline" and data["teams"]:
            raise ValidationError("a declined invitation commits no teams", "teams")


class TeamsInSchema(Schema):
    teams = fields.List(fields.Nested(TeamSchema), required=True,
                        validate=validate.Length(min=1, max=50))


class ViolationInSchema(Schema):
    plate = fields.String(load_default=None, allow_none=True,
                          validate=validate.Length(min=2, max=20))
    category = Category(required=True)
    location = fields.Nested(LocationInSchema, required=True)
    address = fields.String(load_default=None, allow_none=True,
                            validate=validate.Length(max=500))
    description = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    occurred_at = fields.AwareDateTime(required=True, format="iso")
    evidence = fields.List(fields.Nested(EvidenceSchema), load_default=list,
                           validate=validate.Length(max=20))


class ReportInSchema(Schema):
    checkpoint = fields.String(required=True, validate=validate.Length(min=1, max=32))
    team = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    period_from = fields.AwareDateTime(load_default=None, allow_none=True, format="iso")
    period_to = fields.AwareDateTime(load_default=None, allow_none=True, format="iso")
    vehicles_checked = fields.Integer(required=True, validate=validate.Range(0, 100_000))
    violations = fields.List(fields.Nested(ViolationInSchema), load_default=list,
                             validate=validate.Length(max=MAX_VIOLATIONS_PER_REPORT))
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class OperationListQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf(OPERATION_STATUSES))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String(validate=validate.Length(max=300))


class ReportFormatQuerySchema(Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv", "text"]))


# responses ------------------------------------------------------------------------------------
class InvitationViewSchema(Schema):
    city = CityCode(required=True)
    status = fields.String(required=True, validate=validate.OneOf(
        ["pending", "accepted", "declined"]))
    note = fields.String(allow_none=True)
    answered_by = fields.String(allow_none=True)
    answered_at = fields.DateTime(allow_none=True)
    revision_seen = fields.Integer(allow_none=True, metadata={
        "description": "the plan revision the answer was given on"})


class TeamViewSchema(TeamSchema):
    city = CityCode(required=True)


class CheckpointViewSchema(CheckpointSchema):
    teams = fields.List(fields.Nested(TeamViewSchema))
    teams_committed = fields.Integer()
    short = fields.Boolean(metadata={"description": "fewer teams committed than needed"})
    vehicles_checked = fields.Integer()
    violations = fields.Integer()


class OperationViewSchema(PlanSchema):
    owner = fields.Boolean(metadata={"description": "this city leads the operation"})
    checkpoints = fields.List(fields.Nested(CheckpointViewSchema))
    invitations = fields.List(fields.Nested(InvitationViewSchema))
    short_checkpoints = fields.List(fields.String())
    warnings = fields.List(fields.String())
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class OperationListSchema(Schema):
    items = fields.List(fields.Nested(OperationViewSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class ViolationViewSchema(Schema):
    violation_id = fields.UUID(required=True)
    report_id = fields.UUID()
    reported_by = CityCode()
    checkpoint = fields.String()
    plate = fields.String(allow_none=True)
    category = Category()
    location = fields.Nested(PointSchema)
    city = CityCode(allow_none=True)
    occurred_at = fields.DateTime()
    state = fields.String(validate=validate.OneOf(VIOLATION_STATES))
    lead_id = fields.UUID(allow_none=True)
    handled_by = CityCode(allow_none=True)
    case_no = fields.String(allow_none=True)


class ReportViewSchema(Schema):
    report_id = fields.UUID(required=True)
    city = CityCode()
    checkpoint = fields.String()
    team = fields.String(allow_none=True)
    period_from = fields.DateTime()
    period_to = fields.DateTime()
    vehicles_checked = fields.Integer()
    violations = fields.List(fields.Nested(ViolationViewSchema))
    filed_by = fields.String()
    filed_at = fields.DateTime()


class ApproachingTruckSchema(Schema):
    plate = fields.String()
    checkpoint = fields.String()
    distance_m = fields.Float()
    eta_minutes = fields.Float(allow_none=True)
    speed_kmh = fields.Float()
    heading = fields.Float(allow_none=True)
    seen_at = fields.DateTime()
    location = fields.Nested(PointSchema)


class FeedAlertSchema(Schema):
    alert_id = fields.UUID()
    city = CityCode()
    kind = fields.String()
    plate = fields.String()
    location = fields.Nested(PointSchema)
    at = fields.DateTime()
    permit_id = fields.String(allow_none=True)


class FeedSchema(Schema):
    operation_id = fields.UUID(required=True)
    status = fields.String()
    reports = fields.List(fields.Nested(ReportViewSchema))
    alerts = fields.List(fields.Nested(FeedAlertSchema))
    approaching = fields.List(fields.Nested(ApproachingTruckSchema), metadata={
        "description": "trucks seen in the last minutes heading towards a checkpoint (from "
                       "the positions this city ingests)"})


class AfterActionSchema(Schema):
    operation_id = fields.UUID(required=True)
    name = fields.String()
    kind = fields.String()
    status = fields.String()
    window = fields.Dict()
    totals = fields.Dict(metadata={"description": "reports, vehicles checked, violations, leads, "
                                                  "cases opened, cases closed"})
    by_city = fields.List(fields.Dict())
    by_checkpoint = fields.List(fields.Dict())
    by_category = fields.List(fields.Dict())
    violations = fields.List(fields.Nested(ViolationViewSchema))
    summary = fields.String(metadata={"description": "a short human-readable summary"})

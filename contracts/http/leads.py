"""HTTP (and RPC) schemas of the leads resource."""

from datetime import UTC, datetime, timedelta

from marshmallow import Schema, ValidationError, fields, validate, validates

from contracts.fields import CameraSchema, Category, CityCode, EvidenceSchema, PointSchema

# Who may do what with leads (the gateway documents and checks them; the service enforces them).
CITY_WIDE_ROLES = frozenset({"bureau", "squad", "supervisor"})  # see every lead of their city
SUBMIT_ROLES = frozenset({"source", "bureau", "squad"})
DECIDE_ROLES = CITY_WIDE_ROLES

LEAD_STATUSES = ("routed", "merged", "handed_over", "accepted", "rejected")
FUTURE_TOLERANCE = timedelta(minutes=5)


class LocationInSchema(PointSchema):
    crs = fields.String(
        load_default="WGS84", validate=validate.OneOf(["WGS84", "GCJ02"]),
        metadata={"description": "WGS84 (GPS) or GCJ02 (what Chinese map apps give)"},
    )


class LeadSubmissionSchema(Schema):
    """POST /api/v1/leads body."""

    source_ref = fields.String(
        required=True, validate=validate.Length(min=1, max=200),
        metadata={"description": "the source's own reference; a repeat answers the same lead"},
    )
    category = Category(required=True)
    description = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    location = fields.Nested(LocationInSchema, required=True)
    address = fields.String(load_default=None, allow_none=True,
                            validate=validate.Length(max=500))
    occurred_at = fields.AwareDateTime(required=True, format="iso")
    evidence = fields.List(fields.Nested(EvidenceSchema), load_default=list,
                           validate=validate.Length(max=20))
    camera = fields.Nested(CameraSchema, load_default=None, allow_none=True)

    @validates("occurred_at")
    def _not_in_future(self, value: datetime, **kwargs) -> None:
        if value > datetime.now(UTC) + FUTURE_TOLERANCE:
            raise ValidationError("lies in the future")


class LeadCreatedSchema(Schema):
    id = fields.UUID(required=True)
    status = fields.String(required=True, validate=validate.OneOf(LEAD_STATUSES))
    city = CityCode(required=True, metadata={"description": "jurisdiction: city holding the point"})
    squad = fields.String(allow_none=True)
    duplicate_of = fields.UUID(allow_none=True)
    to_city = CityCode(allow_none=True)


class HistoryEntrySchema(Schema):
    at = fields.DateTime(required=True)
    actor = fields.String(required=True)
    action = fields.String(required=True)
    status = fields.String(required=True)
    detail = fields.Dict()


class HandoverSchema(Schema):
    """Where a lead handed over to a partner city is, as the partner reported it."""

    to_city = CityCode(required=True)
    status = fields.String(required=True, validate=validate.OneOf(
        ["sent", "received", "accepted", "rejected", "case_opened", "closed"]))
    partner_lead_id = fields.UUID(allow_none=True)
    case_no = fields.String(allow_none=True)
    overdue_level = fields.Integer(metadata={
        "description": "the partner reported it waiting past its limit: 1 reminder, 2 escalated"})
    updated_at = fields.DateTime(allow_none=True)


class LeadSchema(LeadCreatedSchema):
    source_ref = fields.String()
    source_org = fields.String()
    category = Category()
    description = fields.String()
    location = fields.Nested(PointSchema, metadata={"description": "WGS84"})
    address = fields.String(allow_none=True)
    occurred_at = fields.DateTime()
    submitted_at = fields.DateTime()
    updated_at = fields.DateTime()
    evidence = fields.List(fields.Nested(EvidenceSchema))
    camera = fields.Nested(CameraSchema, allow_none=True)
    merged_count = fields.Integer()
    origin_city = CityCode(allow_none=True)
    origin_lead_id = fields.UUID(allow_none=True)
    decision_reason = fields.String(allow_none=True)
    trace_id = fields.String()
    history = fields.List(fields.Nested(HistoryEntrySchema))
    handover = fields.Nested(HandoverSchema, allow_none=True)


class LeadListQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf(LEAD_STATUSES))
    category = Category()
    submitted_from = fields.AwareDateTime(data_key="from", format="iso")
    submitted_to = fields.AwareDateTime(data_key="to", format="iso")
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String(validate=validate.Length(max=200))


class LeadListSchema(Schema):
    items = fields.List(fields.Nested(LeadSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class DecisionSchema(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(["accept", "reject"]))
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))

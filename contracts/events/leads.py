"""Events of the leads service (线索移交)."""

from marshmallow import Schema, fields, validate

from contracts.fields import CameraSchema, Category, CityCode, EvidenceSchema, PointSchema
from contracts.registry import registry


class LeadBody(Schema):
    """What a lead says, as it travels between services and cities."""

    category = Category(required=True)
    description = fields.String(required=True, validate=validate.Length(max=4000))
    location = fields.Nested(PointSchema, required=True)
    address = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=500))
    occurred_at = fields.AwareDateTime(required=True)
    evidence = fields.List(fields.Nested(EvidenceSchema), load_default=list)
    camera = fields.Nested(CameraSchema, allow_none=True, load_default=None)
    source_org = fields.String(required=True, validate=validate.Length(min=1, max=200))
    source_ref = fields.String(required=True, validate=validate.Length(min=1, max=200))


@registry.event("lead.submitted", 1, "leads", "A lead was accepted for routing in this city.")
class LeadSubmitted(LeadBody):
    lead_id = fields.UUID(required=True)
    city = CityCode(required=True)
    squad = fields.String(allow_none=True, required=True)
    status = fields.String(required=True, validate=validate.OneOf(["routed", "handed_over"]))
    origin_city = CityCode(allow_none=True, load_default=None)
    origin_lead_id = fields.UUID(allow_none=True, load_default=None)


@registry.event("lead.merged", 1, "leads", "A lead was merged into an open duplicate.")
class LeadMerged(Schema):
    lead_id = fields.UUID(required=True)
    duplicate_of = fields.UUID(required=True)
    category = Category(required=True)
    distance_m = fields.Float(required=True)
    source_org = fields.String(required=True)


@registry.event(
    "lead.handed_over",
    1,
    "leads",
    "A lead located in another of the five cities is handed to that city's bureau "
    "(the bridge carries it there).",
)
class LeadHandedOver(LeadBody):
    lead_id = fields.UUID(required=True)
    from_city = CityCode(required=True)
    to_city = CityCode(required=True)
    submitted_at = fields.AwareDateTime(required=True)


@registry.event("lead.accepted", 1, "leads", "The receiving bureau accepted a lead: open a case.")
class LeadAccepted(Schema):
    lead_id = fields.UUID(required=True)
    city = CityCode(required=True)
    squad = fields.String(allow_none=True, required=True)
    category = Category(required=True)
    location = fields.Nested(PointSchema, required=True)
    description = fields.String(required=True)
    occurred_at = fields.AwareDateTime(required=True)
    decided_by = fields.String(required=True)
    reason = fields.String(allow_none=True, load_default=None)
    origin_city = CityCode(allow_none=True, load_default=None)
    origin_lead_id = fields.UUID(allow_none=True, load_default=None)


@registry.event("lead.rejected", 1, "leads", "The receiving bureau rejected a lead, with a reason.")
class LeadRejected(Schema):
    lead_id = fields.UUID(required=True)
    city = CityCode(required=True)
    category = Category(required=True)
    decided_by = fields.String(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    origin_city = CityCode(allow_none=True, load_default=None)
    origin_lead_id = fields.UUID(allow_none=True, load_default=None)


@registry.event(
    "lead.handover_overdue",
    1,
    "leads",
    "A lead handed over to this city has waited for its decision past the response limit: a "
    "reminder (提示单, level 1), then an escalation to the supervision ladder (督办, level 2). It "
    "goes back to the city that handed the lead over.",
)
class LeadHandoverOverdue(Schema):
    lead_id = fields.UUID(required=True)
    city = CityCode(required=True)
    origin_city = CityCode(required=True)
    origin_lead_id = fields.UUID(required=True)
    category = Category(required=True)
    squad = fields.String(allow_none=True, required=True)
    level = fields.Integer(required=True, validate=validate.Range(1, 2))
    kind = fields.String(required=True, validate=validate.OneOf(["reminder", "escalation"]))
    received_at = fields.AwareDateTime(required=True)
    limit_minutes = fields.Integer(required=True)

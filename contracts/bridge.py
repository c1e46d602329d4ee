"""What crosses between cities: the signed envelope's shape and the default sharing policy."""

from marshmallow import Schema, fields, validate

from contracts.fields import CityCode

# Event types a partner may send us unless its configuration says otherwise (data-sharing policy).
DEFAULT_ALLOWED_TYPES: tuple[str, ...] = (
    "lead.handed_over",  # a lead located in our city
    "lead.submitted",  # our handed-over lead was received there
    "lead.accepted",
    "lead.rejected",
    "lead.handover_overdue",  # our handover waits too long for their decision
    "case.opened",  # ... and became a case there
    "case.closed",
    "evidence.anchored",  # the partner's record head, kept for cross-notarisation
    "transport.permit_issued",  # a partner's muck truck permitted into our city
    "transport.alert_raised",  # our truck's violation, or one in our city, seen by a partner
    "jointops.operation_published",  # a joint operation we are invited to, and its changes
    "jointops.invitation_answered",  # a partner's answer to our operation, with its teams
    "jointops.report_filed",  # a partner's checkpoint report in our operation
    "jointops.violation_updated",  # ... and what became of each violation it found
    "jointops.alert_attached",  # a partner's transport alert inside our operation's area
)


class SignedEnvelopeSchema(Schema):
    v = fields.Integer(required=True, strict=True, validate=validate.Equal(1))
    from_city = CityCode(required=True, data_key="from")
    to_city = CityCode(required=True, data_key="to")
    sent_at = fields.AwareDateTime(required=True, format="iso")
    kid = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{16}$"))
    event = fields.Dict(required=True)
    sig = fields.String(required=True, validate=validate.Length(min=80, max=100))


BUNDLE_MAX = 200  # events per signed bundle (one AMQP message through the shovel)


class SignedBundleSchema(Schema):
    """Up to 200 events for one partner, signed once (what the bridge sends since wire v2)."""

    v = fields.Integer(required=True, strict=True, validate=validate.Equal(2))
    from_city = CityCode(required=True, data_key="from")
    to_city = CityCode(required=True, data_key="to")
    sent_at = fields.AwareDateTime(required=True, format="iso")
    kid = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{16}$"))
    events = fields.List(fields.Dict(), required=True,
                         validate=validate.Length(min=1, max=BUNDLE_MAX))
    sig = fields.String(required=True, validate=validate.Length(min=80, max=100))


class PartnerStatusSchema(Schema):
    city = CityCode(required=True)
    link = fields.String(required=True, metadata={
        "description": "state of the shovel to the partner: running, starting, terminated, absent"})
    backlog = fields.Integer(allow_none=True, metadata={"description": "messages waiting to go"})
    last_sent_at = fields.DateTime(allow_none=True)
    last_received_at = fields.DateTime(allow_none=True)
    received = fields.Integer()
    refused = fields.Integer()
    last_refused_reason = fields.String(allow_none=True)
    keys = fields.List(fields.String(), metadata={"description": "key ids trusted for it"})
    allowed_types = fields.List(fields.String())


class PartnerListSchema(Schema):
    items = fields.List(fields.Nested(PartnerStatusSchema), required=True)

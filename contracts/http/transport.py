"""HTTP schemas of construction-waste transport tracking (渣土运输)."""

from marshmallow import Schema, fields, validate

from contracts.events.transport import ALERT_KINDS, SiteBody, TrackPoint
from contracts.fields import CityCode

# Who registers companies, vehicles, sites and permits, and reads alerts and tracks.
ADMIN_ROLES = frozenset({"bureau"})
READ_ROLES = frozenset({"bureau", "squad", "supervisor"})
# Device gateways push positions with an organisation key of role `device` (or the bureau).
INGEST_ROLES = frozenset({"device", "bureau"})


class CompanySchema(Schema):
    id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))


class CompanyViewSchema(CompanySchema):
    city = CityCode()
    vehicles = fields.Integer(metadata={"description": "vehicles registered to it"})


class CompanyListSchema(Schema):
    items = fields.List(fields.Nested(CompanyViewSchema), required=True)


class RevokeSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class VehicleSchema(Schema):
    plate = fields.String(required=True, validate=validate.Length(min=2, max=20),
                          metadata={"example": "苏E·12345"})
    company_id = fields.String(allow_none=True, load_default=None)


class VehicleViewSchema(Schema):
    plate = fields.String(required=True)
    plate_printed = fields.String(required=True)
    company_id = fields.String(allow_none=True)
    city = fields.String(required=True)


class SiteSchema(SiteBody):
    city = CityCode(load_default=None, allow_none=True)


class PermitSchema(Schema):
    id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    plate = fields.String(required=True, validate=validate.Length(min=2, max=20))
    origin_site = fields.String(required=True)
    disposal_site = fields.String(required=True)
    corridor = fields.List(fields.List(fields.Float(), validate=validate.Length(equal=2)),
                           required=True, validate=validate.Length(min=2),
                           metadata={"description": "the route, [[lon, lat], ...] WGS84"})
    width_m = fields.Float(required=True, validate=validate.Range(min=1, max=2000))
    windows = fields.List(fields.String(), required=True, validate=validate.Length(min=1),
                          metadata={"example": ["22:00-05:00"],
                                    "description": "allowed hours, local time; may cross "
                                                   "midnight"})
    valid_from = fields.Date(required=True)
    valid_to = fields.Date(required=True)
    may_enter = fields.List(CityCode(), load_default=list)


class PermitViewSchema(Schema):
    id = fields.String(required=True)
    plate = fields.String(required=True)
    origin = fields.Nested(SiteBody)
    disposal = fields.Nested(SiteBody)
    corridor = fields.List(fields.List(fields.Float()))
    width_m = fields.Float()
    windows = fields.List(fields.String())
    valid_from = fields.Date()
    valid_to = fields.Date()
    issuing_city = fields.String()
    may_enter = fields.List(fields.String())
    status = fields.String(metadata={"description": "active or revoked"})
    revoked_at = fields.DateTime(allow_none=True)
    revoke_reason = fields.String(allow_none=True)


class PositionSchema(Schema):
    plate = fields.String(required=True)
    ts = fields.String(required=True, metadata={"description": "ISO 8601 with offset"})
    lon = fields.Float(required=True)
    lat = fields.Float(required=True)
    crs = fields.String(load_default="WGS84", validate=validate.OneOf(["WGS84", "GCJ02"]))
    speed_kmh = fields.Float(load_default=0.0)
    heading = fields.Float(allow_none=True, load_default=None)


class PositionBatchSchema(Schema):
    positions = fields.List(fields.Raw(), required=True,
                            validate=validate.Length(min=1, max=5000),
                            metadata={"description": "PositionSchema items; bad ones are "
                                                     "refused one by one"})


class RefusedSchema(Schema):
    index = fields.Integer(required=True)
    reason = fields.String(required=True)


class IngestResultSchema(Schema):
    accepted = fields.Integer(required=True)
    stored = fields.Integer(required=True, metadata={"description": "new points (not repeats)"})
    refused = fields.List(fields.Nested(RefusedSchema), required=True)
    alerts = fields.Integer(required=True)


class TrackQuerySchema(Schema):
    from_ = fields.AwareDateTime(data_key="from", required=True)
    to = fields.AwareDateTime(required=True)


class TrackSchema(Schema):
    plate = fields.String(required=True)
    points = fields.List(fields.Nested(TrackPoint), required=True)


class AlertSchema(Schema):
    id = fields.String(required=True)
    kind = fields.String(validate=validate.OneOf(ALERT_KINDS))
    plate = fields.String()
    permit_id = fields.String(allow_none=True)
    permit_city = fields.String(allow_none=True)
    city = fields.String(allow_none=True)
    at = fields.String()
    started_at = fields.String()
    lon = fields.Float()
    lat = fields.Float()
    detail = fields.Dict()
    evidence = fields.List(fields.Dict())


class AlertListQuerySchema(Schema):
    plate = fields.String(load_default=None)
    kind = fields.String(load_default=None, validate=validate.OneOf(ALERT_KINDS))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class AlertListSchema(Schema):
    items = fields.List(fields.Nested(AlertSchema), required=True)


class TripSchema(Schema):
    id = fields.String(required=True)
    plate = fields.String()
    permit_id = fields.String(allow_none=True)
    origin_site = fields.String(allow_none=True)
    end_site = fields.String(allow_none=True)
    status = fields.String()
    started_at = fields.String()
    ended_at = fields.String(allow_none=True)


class TripListQuerySchema(Schema):
    plate = fields.String(load_default=None)
    permit_id = fields.String(load_default=None)
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class TripListSchema(Schema):
    items = fields.List(fields.Nested(TripSchema), required=True)

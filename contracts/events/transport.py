"""Events of the transport service (渣土运输: permits, alerts)."""

from marshmallow import Schema, fields, validate

from contracts.fields import CityCode, PointSchema
from contracts.registry import registry

ALERT_KINDS = ("no_permit", "unknown_vehicle", "out_of_hours", "route_deviation",
               "unapproved_stop", "manifest_mismatch", "city_crossing")


class SiteBody(Schema):
    id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    name = fields.String(required=True, validate=validate.Length(max=200))
    kind = fields.String(required=True, validate=validate.OneOf(["construction", "disposal"]))
    polygon = fields.Dict(required=True, metadata={"description": "GeoJSON Polygon, WGS84"})


class TrackPoint(Schema):
    ts = fields.AwareDateTime(required=True)
    lon = fields.Float(required=True)
    lat = fields.Float(required=True)
    speed_kmh = fields.Float(required=True)


@registry.event(
    "transport.permit_issued", 1, "transport",
    "A transport permit with its e-manifest (核准 + 电子联单) was issued; the bridge carries it to "
    "every city the permit may enter, so their transport services know the truck. Sent again, "
    "with `status` revoked, when the issuing city revokes it.")
class PermitIssued(Schema):
    permit_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    plate = fields.String(required=True, validate=validate.Length(min=1, max=16))
    origin = fields.Nested(SiteBody, required=True)
    disposal = fields.Nested(SiteBody, required=True)
    corridor = fields.List(fields.List(fields.Float()), required=True,
                           validate=validate.Length(min=2))
    width_m = fields.Float(required=True)
    windows = fields.List(fields.String(), required=True)
    valid_from = fields.Date(required=True)
    valid_to = fields.Date(required=True)
    issuing_city = CityCode(required=True)
    may_enter = fields.List(CityCode(), required=True)
    status = fields.String(load_default="active",
                           validate=validate.OneOf(["active", "revoked"]))


@registry.event(
    "transport.alert_raised", 1, "transport",
    "A muck truck breached its permit (once per episode), with the evidence track segment; it "
    "becomes a lead in the city where it happened, and the bridge tells the permit's issuing city.")
class AlertRaised(Schema):
    alert_id = fields.UUID(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(ALERT_KINDS))
    plate = fields.String(required=True)
    permit_id = fields.String(allow_none=True, required=True)
    permit_city = CityCode(allow_none=True, required=True)
    city = CityCode(allow_none=True, required=True)
    raised_by = CityCode(required=True)
    at = fields.AwareDateTime(required=True)
    started_at = fields.AwareDateTime(required=True)
    location = fields.Nested(PointSchema, required=True)
    detail = fields.Dict(required=True)
    evidence = fields.List(fields.Nested(TrackPoint), required=True)

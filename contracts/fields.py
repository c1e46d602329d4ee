"""Field types shared by event and HTTP schemas."""

from marshmallow import Schema, fields, validate

from contracts.reference import CATEGORY_CODES, CITY_CODES

Category = lambda **kw: fields.String(validate=validate.OneOf(CATEGORY_CODES), **kw)  # noqa: E731
CityCode = lambda **kw: fields.String(validate=validate.OneOf(CITY_CODES), **kw)  # noqa: E731


class PointSchema(Schema):
    """A WGS84 point (longitude, latitude in degrees)."""

    lon = fields.Float(required=True, validate=validate.Range(-180, 180), allow_nan=False)
    lat = fields.Float(required=True, validate=validate.Range(-90, 90), allow_nan=False)


class EvidenceSchema(Schema):
    uri = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    sha256 = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}$"))


class CameraSchema(Schema):
    camera_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    model = fields.String(required=True, validate=validate.Length(min=1, max=100))
    confidence = fields.Float(required=True, validate=validate.Range(0, 1), allow_nan=False)

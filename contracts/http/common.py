"""Schemas shared by every HTTP resource: problem details and pagination."""

from marshmallow import Schema, fields


class ProblemSchema(Schema):
    """RFC 9457 problem details."""

    type = fields.String(metadata={"example": "https://liandong.example/problems/invalid-input"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    instance = fields.String()
    errors = fields.Dict(
        keys=fields.String(), values=fields.Raw(),
        metadata={"description": "field-level validation errors: field → messages"},
    )
    trace_id = fields.String()


class CategorySchema(Schema):
    code = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)
    typical_sources = fields.List(fields.String())


class CategoryListSchema(Schema):
    items = fields.List(fields.Nested(CategorySchema), required=True)

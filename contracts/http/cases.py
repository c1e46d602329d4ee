"""HTTP (and RPC) schemas of the cases resource (案件) and its tamper-evident record."""

from marshmallow import Schema, fields, validate

from contracts.events.cases import (
    CASE_STATUSES,
    CLOSE_MODES,
    AssignmentSchema,
    HoldSchema,
    PenaltySchema,
    RoundSchema,
)
from contracts.fields import Category, CityCode, EvidenceSchema, PointSchema
from contracts.http.leads import HistoryEntrySchema

# Who may do what with cases (the gateway documents and checks them; the service enforces them).
READ_ROLES = frozenset({"squad", "supervisor", "bureau"})  # every case of their city
SQUAD_ROLES = frozenset({"squad"})  # accept, feedback, transfer
EVALUATE_ROLES = frozenset({"supervisor"})
REASSIGN_ROLES = frozenset({"bureau", "supervisor"})
CLOSE_ROLES = frozenset({"squad", "bureau"})  # on the spot: squad; administrative: bureau
HOLD_ROLES = frozenset({"squad", "bureau"})

SEVERITIES = ("minor", "ordinary", "serious")  # 轻微 / 一般 / 严重


class CaseListQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf(CASE_STATUSES))
    squad = fields.String(validate=validate.Length(max=100))
    category = Category()
    origin_city = CityCode()
    lead_id = fields.UUID()
    opened_from = fields.AwareDateTime(data_key="from", format="iso")
    opened_to = fields.AwareDateTime(data_key="to", format="iso")
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String(validate=validate.Length(max=300))


class FeedbackInSchema(Schema):
    summary = fields.String(required=True)
    evidence = fields.List(fields.Nested(EvidenceSchema))
    finding = fields.Dict(allow_none=True)
    at = fields.DateTime()
    round = fields.Integer()


class HeldSchema(Schema):
    party = fields.String()
    since = fields.DateTime()
    reason = fields.String()


class CaseSchema(Schema):
    id = fields.UUID(required=True)
    case_no = fields.String(required=True, metadata={"example": "TC-2026-000123"})
    city = CityCode(required=True)
    status = fields.String(required=True, validate=validate.OneOf(CASE_STATUSES))
    category = Category(required=True)
    description = fields.String()
    location = fields.Nested(PointSchema)
    squad = fields.String(allow_none=True)
    town = fields.String(allow_none=True)
    zone_squad = fields.String(allow_none=True,
                               metadata={"description": "the squad zone that holds the place"})
    lead_id = fields.UUID()
    origin_city = CityCode(allow_none=True)
    origin_lead_id = fields.UUID(allow_none=True)
    version = fields.Integer()
    round = fields.Integer()
    opened_at = fields.DateTime()
    updated_at = fields.DateTime()
    closed_at = fields.DateTime(allow_none=True)
    close_mode = fields.String(allow_none=True, validate=validate.OneOf(CLOSE_MODES))
    held = fields.Nested(HeldSchema, allow_none=True)
    assignments = fields.List(fields.Nested(AssignmentSchema))
    rounds = fields.List(fields.Nested(RoundSchema))
    holds = fields.List(fields.Nested(HoldSchema))
    feedback = fields.Nested(FeedbackInSchema, allow_none=True)
    penalty = fields.Nested(PenaltySchema, allow_none=True)
    trace_id = fields.String()
    history = fields.List(fields.Nested(HistoryEntrySchema))


class CaseListSchema(Schema):
    items = fields.List(fields.Nested(CaseSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class AcceptSchema(Schema):
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class FindingSchema(Schema):
    """What the squad found, for the discretionary-penalty suggestion."""

    severity = fields.String(required=True, validate=validate.OneOf(SEVERITIES),
                             metadata={"description": "minor 轻微 / ordinary 一般 / serious 严重"})
    first_offence = fields.Boolean(required=True, metadata={"description": "首次违法"})
    corrected = fields.Boolean(load_default=True,
                               metadata={"description": "corrected in time (及时改正)"})
    party = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class FeedbackSchema(Schema):
    """The squad's feedback on the rectification (平台反馈), with evidence."""

    summary = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    evidence = fields.List(fields.Nested(EvidenceSchema), required=True,
                           validate=validate.Length(min=1, max=20))
    finding = fields.Nested(FindingSchema, load_default=None, allow_none=True)


class EvaluationSchema(Schema):
    result = fields.String(required=True, validate=validate.OneOf(["pass", "fail"]))
    comment = fields.String(load_default=None, allow_none=True,
                            validate=validate.Length(max=2000),
                            metadata={"description": "required when the result is fail"})


class ReassignSchema(Schema):
    squad = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100),
                          metadata={"description": "omit to let the balancer choose another"})
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class TransferSchema(Schema):
    squad = fields.String(required=True, validate=validate.Length(min=1, max=100))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class CloseSchema(Schema):
    mode = fields.String(required=True, validate=validate.OneOf(["on_the_spot", "administrative"]),
                         metadata={"description": "on_the_spot (当场处置, squad, evidence "
                                                  "required) or administrative (bureau)"})
    summary = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    evidence = fields.List(fields.Nested(EvidenceSchema), load_default=list,
                           validate=validate.Length(max=20))
    finding = fields.Nested(FindingSchema, load_default=None, allow_none=True)


class HoldInSchema(Schema):
    party = fields.String(required=True, validate=validate.Length(min=1, max=200),
                          metadata={"description": "who the case waits on"})
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class ResumeSchema(Schema):
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class ProofSchema(Schema):
    canonical = fields.String(required=True,
                              metadata={"description": "the exact bytes hashed (UTF-8)"})
    recomputed = fields.String(required=True)
    valid = fields.Boolean(required=True, metadata={"description": "recomputed == hash"})
    prev_link = fields.Boolean(required=True,
                               metadata={"description": "prev_hash equals the hash of entry "
                                                        "seq - 1"})


class RecordEntrySchema(Schema):
    seq = fields.Integer(required=True)
    case_id = fields.UUID(allow_none=True)
    kind = fields.String(required=True)
    at = fields.String(required=True)
    payload = fields.Dict(required=True)
    prev_hash = fields.String(required=True)
    hash = fields.String(required=True)
    proof = fields.Nested(ProofSchema, required=True)


class ChainPointSchema(Schema):
    seq = fields.Integer(required=True)
    hash = fields.String(required=True)
    at = fields.String(allow_none=True)


class RecordSchema(Schema):
    case_id = fields.UUID(required=True)
    case_no = fields.String(required=True)
    city = CityCode(required=True)
    algorithm = fields.String(required=True)
    entries = fields.List(fields.Nested(RecordEntrySchema), required=True)
    head = fields.Nested(ChainPointSchema, required=True)
    anchor = fields.Nested(ChainPointSchema, allow_none=True,
                           metadata={"description": "the latest evidence.anchored published"})


class SquadSchema(Schema):
    code = fields.String(required=True)
    name_zh = fields.String()
    name_en = fields.String()
    town_zh = fields.String()
    town_en = fields.String()
    categories = fields.List(fields.String())
    covers = fields.List(fields.String(), metadata={"description": "zones it also works"})
    active = fields.Boolean()
    open_cases = fields.Integer()
    demo = fields.Boolean()


class SquadListSchema(Schema):
    items = fields.List(fields.Nested(SquadSchema), required=True)

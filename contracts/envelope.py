"""The one envelope every event travels in (CloudEvents-shaped).

    {id, type, version, source, city, time, subject, trace_id, data}

`data` is validated by the schema registered for (type, version) in `contracts.registry`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from contracts.reference import CITY_CODES


class EventValidationError(ValueError):
    """An event (envelope or data) does not match its contract."""

    def __init__(self, message: str, errors: dict | None = None):
        super().__init__(message)
        self.errors = errors or {}

    def __str__(self) -> str:  # pragma: no cover - formatting only
        base = super().__str__()
        return f"{base}: {self.errors}" if self.errors else base


class EnvelopeSchema(Schema):
    id = fields.UUID(required=True)
    type = fields.String(required=True, validate=validate.Regexp(r"^[a-z_]+(\.[a-z_]+)+$"))
    version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    source = fields.String(required=True, validate=validate.Regexp(r"^[a-z_]+/[a-z_]+$"))
    city = fields.String(required=True, validate=validate.OneOf(CITY_CODES))
    time = fields.AwareDateTime(required=True, format="iso")
    subject = fields.String(required=True, validate=validate.Length(min=1, max=200))
    trace_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    data = fields.Dict(required=True)


_ENVELOPE = EnvelopeSchema()


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Event:
    """A validated event. `data` holds the deserialised payload of its (type, version) schema."""

    type: str
    version: int
    source: str
    city: str
    subject: str
    data: dict[str, Any]
    trace_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=utcnow)

    @property
    def source_service(self) -> str:
        return self.source.split("/", 1)[1]

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready envelope; `data` is dumped through its schema."""
        from contracts.registry import load_all

        registry = load_all()
        return {
            "id": str(self.id),
            "type": self.type,
            "version": self.version,
            "source": self.source,
            "city": self.city,
            "time": self.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "subject": self.subject,
            "trace_id": self.trace_id,
            "data": registry.dump_data(self.type, self.version, self.data),
        }

    @classmethod
    def from_wire(cls, body: Any) -> Event:
        """Validate an envelope and its data; raise EventValidationError when either is wrong."""
        from contracts.registry import load_all

        registry = load_all()
        if not isinstance(body, dict):
            raise EventValidationError("event body is not a JSON object")
        try:
            env = _ENVELOPE.load(body)
        except ValidationError as exc:
            raise EventValidationError("invalid envelope", exc.messages) from exc
        data = registry.load_data(env["type"], env["version"], env["data"])
        return cls(
            id=str(env["id"]),
            type=env["type"],
            version=env["version"],
            source=env["source"],
            city=env["city"],
            time=env["time"],
            subject=env["subject"],
            trace_id=env["trace_id"],
            data=data,
        )

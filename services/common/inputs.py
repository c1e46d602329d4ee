"""What every entrypoint does with its input and its caller: load through a contract schema,
check the caller's roles, read an instant, write times and JSON the same way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from marshmallow import Schema, ValidationError

from contracts.errors import Forbidden, InvalidInput
from contracts.registry import schema_instance


def load(schema_cls: type[Schema], payload) -> dict:
    """Deserialise `payload` through the schema; field errors become `InvalidInput`."""
    try:
        return schema_instance(schema_cls).load(payload if payload is not None else {})
    except ValidationError as exc:
        raise InvalidInput("the request does not match the schema", exc.messages) from exc


def require_role(caller: dict, allowed: frozenset[str], action: str) -> None:
    if not allowed & set(caller["roles"]):
        raise Forbidden(
            f"role {'/'.join(sorted(caller['roles'])) or 'none'} may not {action}",
            {"roles": [f"needs one of: {', '.join(sorted(allowed))}"]},
        )


def parse_instant(at) -> datetime:
    """An ISO 8601 instant with an offset (`Z` accepted), or `InvalidInput`."""
    try:
        instant = datetime.fromisoformat(str(at).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput("not an ISO 8601 instant", {"at": [str(at)]}) from None
    if instant.tzinfo is None:
        raise InvalidInput("the instant needs an offset", {"at": [str(at)]})
    return instant


def iso_utc(value: datetime | None) -> str | None:
    """UTC, ISO 8601 with `Z`, as every API of the platform writes times."""
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def jsonable(value):
    """Lists and dicts with datetimes and UUIDs as strings (for JSONB columns)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value

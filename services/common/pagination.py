"""Opaque list cursors: the sort key of the last item seen, base64url JSON (cases, supervision)."""

from __future__ import annotations

import base64
import json
from typing import Any

from contracts.errors import InvalidInput


def encode_cursor(*values: Any) -> str:
    raw = json.dumps([v.isoformat() if hasattr(v, "isoformat") else v for v in values]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list:
    """The values of a cursor this API issued, or a 422 (`InvalidInput`)."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != size:
            raise ValueError("wrong shape")
        return values
    except (ValueError, TypeError) as exc:
        raise InvalidInput("invalid cursor", {"cursor": ["not a cursor this API issued"]}) from exc

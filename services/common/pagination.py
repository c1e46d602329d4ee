"""Opaque list cursors and keyset pages, newest first: the sort key of the last item seen,
base64url JSON (leads, cases, supervision, joint operations)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select

from contracts.errors import InvalidInput

NOT_A_CURSOR = {"cursor": ["not a cursor this API issued"]}


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
        raise InvalidInput("invalid cursor", NOT_A_CURSOR) from exc


def decode_time_cursor(cursor: str) -> tuple[datetime, str]:
    """(instant, UUID) of the last row a page showed, or `InvalidInput`."""
    at, row_id = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(at), str(uuid.UUID(row_id))
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidInput("invalid cursor", NOT_A_CURSOR) from exc


def page(session, table, query: dict, conditions=(), at=None) -> tuple[list, str | None]:
    """One page of `table` under `conditions`, newest first after the query's `cursor`, at most
    its `limit` rows: by (`at`, id) when `at` is a time column (UUID ids), else by integer id.
    Returns the rows and the cursor of the next page (None on the last)."""
    ident, conditions = table.c.id, list(conditions)
    if query.get("cursor") and at is not None:
        when, last_id = decode_time_cursor(query["cursor"])
        conditions.append(or_(at < when, and_(at == when, ident < last_id)))
    elif query.get("cursor"):
        (last_id,) = decode_cursor(query["cursor"], 1)
        if not isinstance(last_id, int):
            raise InvalidInput("invalid cursor", NOT_A_CURSOR)
        conditions.append(ident < last_id)
    order = (ident.desc(),) if at is None else (at.desc(), ident.desc())
    limit = query["limit"]
    rows = session.execute(select(table).where(*conditions).order_by(*order)
                           .limit(limit + 1)).all()
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    next_cursor = (encode_cursor(last.id) if at is None
                   else encode_cursor(last._mapping[at.name], str(last.id)))
    return rows[:limit], next_cursor

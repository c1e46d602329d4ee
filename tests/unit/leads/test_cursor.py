"""Unit tests for the list cursor of leads, cases and joint operations (opaque, URL-safe,
validated): services.common.pagination."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from contracts.errors import InvalidInput
from services.common.pagination import decode_time_cursor as _decode_cursor
from services.common.pagination import encode_cursor as _encode_cursor


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("at", [
    datetime(2026, 5, 1, 9, 30, 15, 123456, tzinfo=UTC),
    datetime(2026, 5, 1, 17, 30, tzinfo=timezone(timedelta(hours=8))),
    datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
])
def test_cursor_round_trip(at):
    lead_id = str(uuid.uuid4())
    cursor = _encode_cursor(at, lead_id)
    assert isinstance(cursor, str)
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor  # URL-safe, unpadded
    decoded_at, decoded_id = _decode_cursor(cursor)
    assert decoded_at == at
    assert decoded_at.utcoffset() == at.utcoffset()
    assert decoded_id == lead_id


def test_cursor_is_opaque_not_the_plain_values():
    lead_id = str(uuid.uuid4())
    cursor = _encode_cursor(datetime(2026, 5, 1, tzinfo=UTC), lead_id)
    assert lead_id not in cursor


def test_uppercase_lead_id_is_normalised():
    lead_id = uuid.uuid4()
    cursor = _b64(json.dumps(["2026-05-01T00:00:00+00:00", str(lead_id).upper()]).encode())
    assert _decode_cursor(cursor)[1] == str(lead_id)


@pytest.mark.parametrize("cursor", [
    "",
    "not-a-cursor",
    "!!!!",
    "%%%",
    _b64(b"\xff\xfe\xfd"),  # not UTF-8
    _b64(b"{not json"),
    _b64(b"5"),  # not a pair
    _b64(b"[]"),
    _b64(b'["2026-05-01T00:00:00+00:00"]'),
    _b64(b'["2026-05-01T00:00:00+00:00", "x", "y"]'),
    _b64(b'["yesterday", "6f1c1d3e-3b57-4f45-9d8f-3a1f1f8d2c11"]'),
    _b64(b'[null, "6f1c1d3e-3b57-4f45-9d8f-3a1f1f8d2c11"]'),
    _b64(b'["2026-05-01T00:00:00+00:00", "not-a-uuid"]'),
    _b64(b'["2026-05-01T00:00:00+00:00", null]'),
    _b64(b'{"at": 1, "id": 2}'),
])
def test_garbage_cursor_is_invalid_input(cursor):
    with pytest.raises(InvalidInput) as info:
        _decode_cursor(cursor)
    assert "cursor" in info.value.errors


@pytest.mark.parametrize("lead_id", [5, ["x"], {"a": 1}])
def test_cursor_with_non_string_lead_id_is_invalid_input(lead_id):
    cursor = _b64(json.dumps(["2026-05-01T00:00:00+00:00", lead_id]).encode())
    with pytest.raises(InvalidInput):
        _decode_cursor(cursor)

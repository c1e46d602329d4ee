"""Key bundles: what a city exports of its bridge keys, and how a partner imports them."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from contracts.bridge import DEFAULT_ALLOWED_TYPES
from contracts.reference import CITY_CODES
from services.bridge import signing
from services.bridge.models import partner_keys, partners


def ensure_key(directory: Path, city: str) -> signing.SigningKey:
    keys = signing.load_keys(directory, city)
    if keys:
        return keys[0]
    key = signing.generate_key()
    signing.save_key(key, directory, city)
    return key


def export_bundle(directory: Path, city: str) -> dict:
    """The public half of every key the city holds, newest first."""
    keys = signing.load_keys(directory, city)
    if not keys:
        raise SystemExit(f"no bridge key for {city}: run `liandong bridge keygen --city {city}`")
    return {"city": city, "keys": [{"kid": k.kid, "public_key": k.public_b64} for k in keys]}


def import_bundle(conn, bundle: dict, allowed_types: list[str] | None = None) -> list[str]:
    """Trust a partner's keys (adding to those already trusted: two may be valid during a
    changeover) and set the event types it may send. Returns the key ids now trusted."""
    city = bundle.get("city")
    if city not in CITY_CODES:
        raise ValueError(f"bundle names no known city: {city!r}")
    added = []
    for key in bundle.get("keys", []):
        public = signing.load_public(key["public_key"])  # raises on a malformed key
        if signing.key_id(signing.public_raw(public)) != key["kid"]:
            raise ValueError(f"key id {key['kid']} does not match its public key")
        conn.execute(pg_insert(partner_keys).values(
            partner=city, kid=key["kid"], public_key=key["public_key"]).on_conflict_do_update(
            index_elements=["partner", "kid"], set_={"revoked_at": None}))
        added.append(key["kid"])
    types = sorted(allowed_types or DEFAULT_ALLOWED_TYPES)
    conn.execute(pg_insert(partners).values(city=city, allowed_types=types).on_conflict_do_update(
        index_elements=["city"], set_={"allowed_types": types, "updated_at": func.now()}))
    return added


def revoke_key(conn, partner: str, kid: str) -> int:
    return conn.execute(update(partner_keys).where(
        partner_keys.c.partner == partner, partner_keys.c.kid == kid,
        partner_keys.c.revoked_at.is_(None)).values(revoked_at=func.now())).rowcount

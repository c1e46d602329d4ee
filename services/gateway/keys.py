"""API keys: made, hashed and looked up. A key is shown once; only its HMAC is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from services.gateway.models import api_keys, organisations


def new_key(city: str) -> str:
    return f"ld_{city}_{secrets.token_urlsafe(32)}"


def hash_key(key: str, pepper: str) -> str:
    return hmac.new(pepper.encode(), key.encode(), hashlib.sha256).hexdigest()


def create_key(conn: Connection, city: str, org_name: str, roles: list[str],
               pepper: str) -> tuple[dict, str]:
    """Create (or reuse, by name) the organisation and give it a new key; returns (org, key)."""
    org = conn.execute(select(organisations).where(organisations.c.name == org_name)).first()
    if org is None:
        org_id = str(uuid.uuid4())
        conn.execute(insert(organisations).values(id=org_id, name=org_name, roles=sorted(roles)))
        org_roles = sorted(roles)
    else:
        org_id, org_roles = str(org.id), list(org.roles)
        if sorted(roles) != sorted(org_roles):
            from sqlalchemy import update

            org_roles = sorted(set(org_roles) | set(roles))
            conn.execute(update(organisations).where(organisations.c.id == org_id)
                         .values(roles=org_roles))
    key = new_key(city)
    conn.execute(insert(api_keys).values(
        id=str(uuid.uuid4()), org_id=org_id, prefix=key[: len(city) + 8],
        key_hash=hash_key(key, pepper)))
    return {"id": org_id, "name": org_name, "roles": org_roles}, key


class KeyCache:
    """Identity by key hash, cached briefly: a revoked key stops working within `ttl` seconds."""

    def __init__(self, ttl: float = 10.0):
        self.ttl = ttl
        self._entries: dict[str, tuple[float, dict | None]] = {}

    def get(self, key_hash: str):
        entry = self._entries.get(key_hash)
        if entry and entry[0] > time.monotonic():
            return entry[1], True
        return None, False

    def put(self, key_hash: str, identity: dict | None) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[key_hash] = (time.monotonic() + self.ttl, identity)


def lookup(conn, key_hash: str, city: str) -> dict | None:
    row = conn.execute(
        select(organisations.c.id, organisations.c.name, organisations.c.roles)
        .join(api_keys, api_keys.c.org_id == organisations.c.id)
        .where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    return {"org_id": str(row.id), "org_name": row.name, "roles": list(row.roles), "city": city}

"""Ed25519 keys, the canonical form and the signed envelopes that cross between cities.

A bundle (wire version 2, what the bridge sends): up to `BUNDLE_MAX` events for one partner,
signed once, one AMQP message through the shovel.

    {"v": 2, "from": "taicang", "to": "jiading", "sent_at": "2026-...Z", "kid": "3f2a...",
     "events": [{<an event's envelope>}, ...], "sig": "<base64 Ed25519 signature>"}

A single envelope (wire version 1, still accepted): `"event": {...}` instead of `"events"`.

The signature covers the canonical JSON (sorted keys, no spaces, UTF-8) of every field but `sig`,
so the time and the destination are signed with the events.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from contracts.bridge import BUNDLE_MAX  # noqa: F401  (re-exported: the bundle's size limit)

WIRE_VERSION = 1
BUNDLE_VERSION = 2


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def public_raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey

    @property
    def public_b64(self) -> str:
        return base64.b64encode(public_raw(self.private.public_key())).decode()


def generate_key() -> SigningKey:
    private = Ed25519PrivateKey.generate()
    return SigningKey(key_id(public_raw(private.public_key())), private)


def save_key(key: SigningKey, directory: Path, city: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{city}.{key.kid}.pem"
    path.write_bytes(key.private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    path.chmod(0o600)
    return path


def load_keys(directory: Path, city: str) -> list[SigningKey]:
    """The city's keys, newest first (the first one signs; the others may still be trusted by
    partners during a changeover)."""
    keys = []
    for path in sorted(directory.glob(f"{city}.*.pem"), key=lambda p: p.stat().st_mtime,
                       reverse=True):
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 key")
        keys.append(SigningKey(key_id(public_raw(private.public_key())), private))
    return keys


def load_public(b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(b64, validate=True))


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sign(key: SigningKey, sender: str, destination: str, event: dict,
         sent_at: str | None = None) -> dict:
    return _signed(key, {"v": WIRE_VERSION, "from": sender, "to": destination,
                         "sent_at": sent_at or iso_now(), "kid": key.kid, "event": event})


def sign_bundle(key: SigningKey, sender: str, destination: str, events: list[dict],
                sent_at: str | None = None) -> dict:
    return _signed(key, {"v": BUNDLE_VERSION, "from": sender, "to": destination,
                         "sent_at": sent_at or iso_now(), "kid": key.kid, "events": events})


def _signed(key: SigningKey, unsigned: dict) -> dict:
    """`unsigned` with `sig`: Ed25519 over the canonical JSON of all its fields."""
    return {**unsigned, "sig": base64.b64encode(key.private.sign(canonical(unsigned))).decode()}


def verify_signature(envelope: dict, public: Ed25519PublicKey) -> bool:
    unsigned = {k: v for k, v in envelope.items() if k != "sig"}
    try:
        public.verify(base64.b64decode(envelope["sig"], validate=True), canonical(unsigned))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True

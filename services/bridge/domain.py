"""Bridge rules without I/O: where a local event must go, and whether a partner's envelope is
accepted (every check, in order, with the reason it is refused)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from marshmallow import ValidationError

from contracts.bridge import SignedBundleSchema, SignedEnvelopeSchema
from contracts.envelope import Event, EventValidationError
from contracts.reference import CITY_CODES
from contracts.registry import schema_instance
from services.bridge import signing
from services.bridge.signing import verify_signature

# Local events whose data names the city they concern: the handover goes to `to_city`; status
# updates about a lead that came from a partner go back to its `origin_city`.
TO_FIELD = {"lead.handed_over": "to_city"}
BACK_TO_ORIGIN = {"lead.submitted", "lead.accepted", "lead.rejected", "lead.handover_overdue",
                  "case.opened", "case.closed"}
TO_EVERY_PARTNER = {"evidence.anchored"}
# Joint operations: the plan goes to its partners, everything else back to the lead city.
TO_LEAD_CITY = {"jointops.invitation_answered", "jointops.report_filed",
                "jointops.violation_updated", "jointops.alert_attached"}


def destinations(event: Event, own_city: str, partners: set[str]) -> list[str]:
    """Partner cities a local event must reach (never ourselves, never an unknown city)."""
    if event.city != own_city:
        return []  # only what happened here is ours to send; partners speak for themselves
    if event.type in TO_FIELD:
        targets = [event.data.get(TO_FIELD[event.type])]
    elif event.type in BACK_TO_ORIGIN:
        targets = [event.data.get("origin_city")]
    elif event.type in TO_EVERY_PARTNER:
        targets = sorted(partners)
    elif event.type == "transport.permit_issued":
        targets = list(event.data.get("may_enter") or [])
    elif event.type == "transport.alert_raised":
        # the permit's issuing city, and the city where it happened (e.g. the city a truck
        # entered, seen by a third city's transport service)
        targets = list(dict.fromkeys([event.data.get("permit_city"), event.data.get("city")]))
    elif event.type == "jointops.operation_published":
        targets = list(event.data.get("partners") or [])
    elif event.type in TO_LEAD_CITY:
        targets = [event.data.get("lead_city")]
    else:
        targets = []
    return [t for t in targets if t and t != own_city and t in partners]


@dataclass
class Partner:
    city: str
    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)  # kid → key (valid ones)
    allowed_types: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Verdict:
    event: Event | None = None
    sender: str = "?"
    reason: str | None = None  # None: accepted
    detail: str = ""
    body: dict | None = None  # the event exactly as received (one of a message's events)

    @property
    def accepted(self) -> bool:
        return self.reason is None


def _refuse(reason: str, detail: str, sender: str = "?") -> Verdict:
    return Verdict(reason=reason, detail=detail, sender=sender)


def verify(envelope: dict, own_city: str, partners: dict[str, Partner], now: datetime,
           window: timedelta) -> Verdict:
    """Check a partner's single signed envelope (wire v1). Order matters: nothing of an envelope
    is trusted (not even the event inside) before the signature over all of it is verified."""
    whole, verdicts = verify_message(envelope, own_city, partners, now, window)
    return whole or verdicts[0]


def verify_message(body: dict, own_city: str, partners: dict[str, Partner], now: datetime,
                   window: timedelta) -> tuple[Verdict | None, list[Verdict]]:
    """Check what a partner's shovel delivered: a bundle (v2) or a single envelope (v1).
    Returns the refusal of the whole message (sender, key, signature, destination, window), or
    None and one verdict per event it carries (contract, impersonation, partner policy)."""
    bundle = body.get("v") == signing.BUNDLE_VERSION
    try:
        wire = schema_instance(SignedBundleSchema if bundle else SignedEnvelopeSchema).load(body)
    except ValidationError as exc:
        claimed = body.get("from") if isinstance(body.get("from"), str) else "?"
        return _refuse("invalid", f"not a signed envelope: {exc.messages}", claimed), []
    sender = wire["from_city"]
    partner = partners.get(sender)
    if partner is None or sender == own_city:
        return _refuse("unknown_sender", f"{sender} is not a partner of {own_city}", sender), []
    key = partner.keys.get(wire["kid"])
    if key is None:
        return _refuse("unknown_key", f"key {wire['kid']} is not a valid key of {sender}",
                       sender), []
    if not verify_signature(body, key):
        return _refuse("bad_signature", "the signature does not match the envelope",
                       sender), []
    if wire["to_city"] != own_city:
        return _refuse("wrong_destination", f"addressed to {wire['to_city']}, not {own_city}",
                       sender), []
    skew = now - wire["sent_at"]
    if abs(skew) > window:
        return _refuse("stale", f"sent at {wire['sent_at'].isoformat()}, {skew} from now "
                                f"(window ±{window})", sender), []
    events = wire["events"] if bundle else [wire["event"]]
    return None, [_check_event(e, sender, partner) for e in events]


def _check_event(body: dict, sender: str, partner: Partner) -> Verdict:
    try:
        event = Event.from_wire(body)
    except EventValidationError as exc:
        return Verdict(reason="invalid_event", detail=f"{exc}: {exc.errors}", sender=sender,
                       body=body)
    if event.city != sender or not event.source.startswith(f"{sender}/"):
        return Verdict(reason="impersonation", detail=f"{sender} sent an event of "
                                                      f"{event.source}", sender=sender, body=body)
    if event.type not in partner.allowed_types:
        return Verdict(reason="type_not_allowed", detail=f"{sender} may not send {event.type}",
                       sender=sender, body=body)
    return Verdict(event=event, sender=sender, body=body)


def valid_city(city: str) -> bool:
    return city in CITY_CODES

"""The bridge service: signs what concerns a partner city and queues it for the partner's
shovel; verifies what partners send and re-publishes it locally on `bridge.events`.

Both directions consume in batches (`services.common.batching`): one transaction, one inbox
claim and one set of inserts for up to 200 messages, each message still acked or parked on its
own once the batch committed.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from contracts.envelope import Event, EventValidationError
from services.bridge import domain, links, models, signing
from services.bridge.store import (
    PartnerDirectory,
    Signer,
    partner_rows,
    record_anchors,
    record_received,
    record_refused,
    record_sent,
)
from services.common import topology
from services.common.batching import consume_batch
from services.common.config import setting
from services.common.confirms import BatchPublisher, OutgoingMessage
from services.common.db import Database
from services.common.entrypoints import Refusal, rpc
from services.common.logging import get_logger
from services.common.metrics import BRIDGE_IN, BRIDGE_OUT
from services.common.observability import Observable
from services.common.outbox import outgoing

log = get_logger(__name__)
SEND_QUEUE = "bridge.send"  # local events that may concern a partner (contracts/subscriptions)


class BridgeService(Observable):
    name = "bridge"

    db = Database(models.metadata)
    directory = PartnerDirectory()
    signer = Signer()

    # outbound: local events that concern a partner ---------------------------------------
    @consume_batch(SEND_QUEUE)
    def send(self, bodies: list[dict]) -> list[Refusal | None]:
        city = setting("CITY")
        partners = set(self.directory.partners())
        outcomes: list[Refusal | None] = [None] * len(bodies)
        events: list[tuple[int, Event]] = []
        for i, body in enumerate(bodies):
            try:
                events.append((i, Event.from_wire(body)))
            except EventValidationError as exc:
                outcomes[i] = Refusal("invalid", f"{exc}: {exc.errors}")
        fresh = self.db.first_deliveries([(e.id, e.type) for _, e in events], "send")
        per_partner: dict[str, list[tuple[Event, dict]]] = {}
        for i, event in events:
            if event.id not in fresh:
                continue  # sent before (a redelivery): the partner has it or will dedup it
            for destination in domain.destinations(event, city, partners):
                per_partner.setdefault(destination, []).append((event, bodies[i]))
        # One signed bundle per partner and up to BUNDLE_MAX events: one signature, one AMQP
        # message through the shovel. Confirmed by the broker before this batch commits and is
        # acked: a crash in between sends them again, and the partner's inbox drops the copies.
        messages, sent = [], []
        for destination, items in per_partner.items():
            for start in range(0, len(items), signing.BUNDLE_MAX):
                chunk = items[start:start + signing.BUNDLE_MAX]
                bundle = self.signer.sign_bundle(destination, [body for _, body in chunk])
                messages.append(OutgoingMessage("", topology.outbound_queue(destination),
                                                bundle, message_id=chunk[0][0].id))
                sent += [(event, destination) for event, _ in chunk]
        _publisher().publish_many(messages)
        record_sent(self.db.session, sent)
        for event, destination in sent:
            BRIDGE_OUT.labels(destination, event.type).inc()
        return outcomes

    # inbound: what partners' shovels delivered ----------------------------------------------
    @consume_batch(topology.BRIDGE_INBOUND)
    def receive(self, envelopes: list[dict]) -> list:
        window = timedelta(seconds=float(setting("BRIDGE_WINDOW_SECONDS", 300)))
        city, partners, now = setting("CITY"), self.directory.partners(), datetime.now(UTC)
        checked = [domain.verify_message(e, city, partners, now, window) for e in envelopes]
        accepted = [v for _, verdicts in checked for v in verdicts if v.accepted]
        fresh = self.db.first_deliveries([(v.event.id, v.event.type) for v in accepted],
                                         "receive")
        outcomes: list = []
        forwarded, received = [], Counter()
        for envelope, (whole, verdicts) in zip(envelopes, checked, strict=True):
            if whole is not None:  # the message as a whole: parked as it came
                self._refused(whole, envelope.get("event"))
                outcomes.append(Refusal(whole.reason, whole.detail))
                continue
            parts = []
            for verdict in verdicts:
                body = verdict.body
                if verdict.accepted and verdict.event.id in fresh:
                    fresh.discard(verdict.event.id)  # a second copy in the batch is a replay
                    forwarded.append(body)
                    received[verdict.sender] += 1
                    continue
                if verdict.accepted:
                    verdict = domain.Verdict(reason="replay", sender=verdict.sender,
                                             detail=f"event {verdict.event.id} was already "
                                                    "received")
                self._refused(verdict, body)
                parts.append(Refusal(verdict.reason, verdict.detail,
                                     part={"from": verdict.sender, "event": body}))
            # a single envelope (v1) refused is parked whole, as it came
            if parts and envelope.get("v") != signing.BUNDLE_VERSION:
                parts = Refusal(parts[0].reason, parts[0].detail)
            outcomes.append(parts or None)
        # Published (and confirmed) before the batch's inbox claims commit and the messages are
        # acked, as the outbound side does: a crash in between re-publishes these events when the
        # shovel redelivers, and every local handler drops the copies by event id (its inbox).
        _publisher().publish_many([outgoing("bridge.events", body) for body in forwarded])
        record_anchors(self.db.session, [e for e in forwarded if e["type"] == "evidence.anchored"])
        for sender, count in received.items():
            record_received(self.db.session, sender, count)
            BRIDGE_IN.labels(sender, "accepted").inc(count)
        return outcomes

    def _refused(self, verdict: domain.Verdict, event) -> None:
        event_id = event.get("id") if isinstance(event, dict) else None
        record_refused(self.db.session, verdict.sender, verdict.reason, verdict.detail,
                       event_id)
        BRIDGE_IN.labels(verdict.sender[:20], verdict.reason).inc()
        log.warning("refused from partner", sender=verdict.sender, reason=verdict.reason,
                    detail=verdict.detail)

    # status --------------------------------------------------------------------------------
    @rpc
    def partners(self) -> list[dict]:
        rows = partner_rows(self.db.session)
        state = links.link_state(setting("RABBIT_MANAGEMENT_URL"), setting("AMQP_URI"),
                                 [r["city"] for r in rows])
        for row in rows:
            row.update(state.get(row["city"], {"link": "unknown", "backlog": None}))
        return rows


_publishers: dict = {}


def _publisher() -> BatchPublisher:
    uri = setting("AMQP_URI")
    if uri not in _publishers:
        _publishers[uri] = BatchPublisher(uri)
    return _publishers[uri]

"""The bridge service: signs what concerns a partner city and queues it for the partner's
shovel; verifies what partners send and re-publishes it locally on `bridge.events`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts.envelope import Event
from services.bridge import domain, links, models
from services.bridge.store import (
    PartnerDirectory,
    Signer,
    partner_rows,
    record_received,
    record_refused,
    record_sent,
)
from services.common import topology
from services.common.config import setting
from services.common.db import Database
from services.common.entrypoints import Refusal, consume, event_handler, rpc
from services.common.logging import get_logger
from services.common.metrics import BRIDGE_IN, BRIDGE_OUT
from services.common.observability import Observable

log = get_logger(__name__)


class BridgeService(Observable):
    name = "bridge"

    db = Database(models.metadata)
    directory = PartnerDirectory()
    signer = Signer()

    # outbound: local events that concern a partner ---------------------------------------
    @event_handler("leads", "lead.handed_over")
    def send_lead_handed_over(self, event: Event) -> None:
        self._send(event)

    @event_handler("leads", "lead.submitted")
    def send_lead_received(self, event: Event) -> None:
        self._send(event)

    @event_handler("leads", "lead.accepted")
    def send_lead_accepted(self, event: Event) -> None:
        self._send(event)

    @event_handler("leads", "lead.rejected")
    def send_lead_rejected(self, event: Event) -> None:
        self._send(event)

    def _send(self, event: Event) -> None:
        city = setting("CITY")
        targets = domain.destinations(event, city, set(self.directory.partners()))
        if not targets:
            return
        wire = event.to_wire()
        publisher = _publisher()
        for destination in targets:
            signed = self.signer.sign(destination, wire)
            # Confirmed by the broker before the handler's transaction commits and the event is
            # acked: a crash in between sends it again, and the partner's inbox drops the copy.
            publisher.publish(signed, exchange="", routing_key=topology.outbound_queue(destination))
            record_sent(self.db.session, event, destination)
            BRIDGE_OUT.labels(destination, event.type).inc()
            log.info("sent to partner", destination=destination, type=event.type,
                     event_id=event.id)

    # inbound: what partners' shovels delivered ----------------------------------------------
    @consume(topology.BRIDGE_INBOUND)
    def receive(self, envelope: dict):
        window = timedelta(seconds=float(setting("BRIDGE_WINDOW_SECONDS", 300)))
        verdict = domain.verify(envelope, setting("CITY"), self.directory.partners(),
                                datetime.now(UTC), window)
        if verdict.accepted and not self.db.first_delivery(verdict.event, "receive"):
            verdict = domain.Verdict(reason="replay", sender=verdict.sender,
                                     detail=f"event {verdict.event.id} was already received")
        if not verdict.accepted:
            event_id = (envelope.get("event") or {}).get("id") if isinstance(
                envelope.get("event"), dict) else None
            record_refused(self.db.session, verdict.sender, verdict.reason, verdict.detail,
                           event_id)
            BRIDGE_IN.labels(verdict.sender[:20], verdict.reason).inc()
            log.warning("refused from partner", sender=verdict.sender, reason=verdict.reason,
                        detail=verdict.detail)
            return Refusal(verdict.reason, verdict.detail)
        self.db.forward(verdict.event, "bridge.events")
        record_received(self.db.session, verdict.sender)
        BRIDGE_IN.labels(verdict.sender, "accepted").inc()
        return None

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


def _publisher():
    uri = setting("AMQP_URI")
    if uri not in _publishers:
        _publishers[uri] = topology.control_publisher(uri)
    return _publishers[uri]

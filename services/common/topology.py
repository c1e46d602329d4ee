"""Broker topology, declared up front from the contracts registry (RabbitMQ definitions).

For one city's vhost:
- a durable topic exchange `<producer>.events` per producing service (and `bridge.events`);
- per subscription, the durable queue nameko's handler consumes (`evt-<producer>-<type>--<svc>.<m>`)
  bound by the event type, delay queues `<queue>.retry.<n>` that dead-letter back to it, and a
  parking queue `<queue>.parked`;
- a policy giving every `*.events` exchange the alternate exchange `liandong.unrouted`, so an event
  nobody subscribes to is kept (queue `liandong.unrouted`), never dropped.
Applied through the management API (`liandong topology apply`), before any service starts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from nameko.amqp.publish import Publisher

from contracts.reference import CITY_CODES
from contracts.registry import exchange_for, load_all
from services.common.config import setting

UNROUTED = "liandong.unrouted"
PERSISTENT = 2


def queue_arguments() -> dict:
    return {"x-queue-type": "quorum"} if setting("QUEUE_TYPE", "classic") == "quorum" else {}


def retry_delays() -> list[int]:
    """Delays in milliseconds before each retry of a failed handler."""
    raw = str(setting("RETRY_DELAYS_MS", "500,2000,10000"))
    return [int(x) for x in raw.split(",") if x.strip()]


# Queues consumed by `services.common.entrypoints.consume` (not event subscriptions).
CONSUMER_QUEUES = ("bridge.inbound", "transport.positions")
BRIDGE_INBOUND = "bridge.inbound"  # exchange and queue a partner's shovel delivers to


def outbound_queue(partner: str) -> str:
    """Where the bridge puts signed envelopes for `partner`; a shovel moves them there."""
    return f"bridge.outbound.{partner}"


def city_of_vhost(vhost: str) -> str | None:
    return next((c for c in CITY_CODES if vhost.endswith(c)), None)


def _handled_queue(name: str, vhost: str, qargs: dict) -> list[dict]:
    """A consumed queue with its retry queues (dead-lettering back to it) and parking queue."""
    queues = [{"name": name, "vhost": vhost, "durable": True, "auto_delete": False,
               "arguments": dict(qargs)}]
    for n, delay in enumerate(retry_delays(), start=1):
        queues.append({
            "name": f"{name}.retry.{n}", "vhost": vhost, "durable": True, "auto_delete": False,
            "arguments": {**qargs, "x-message-ttl": delay, "x-dead-letter-exchange": "",
                          "x-dead-letter-routing-key": name},
        })
    queues.append({"name": f"{name}.parked", "vhost": vhost, "durable": True,
                   "auto_delete": False, "arguments": dict(qargs)})
    return queues


def definitions(vhost: str, extra_exchanges: tuple[str, ...] = ("bridge",)) -> dict:
    registry = load_all()
    qargs = queue_arguments()
    producers = sorted(set(registry.producers()) | set(extra_exchanges))
    exchanges = [
        {"name": exchange_for(p), "vhost": vhost, "type": "topic", "durable": True,
         "auto_delete": False, "internal": False, "arguments": {}}
        for p in producers
    ]
    exchanges.append({"name": UNROUTED, "vhost": vhost, "type": "fanout", "durable": True,
                      "auto_delete": False, "internal": False, "arguments": {}})
    queues = [{"name": UNROUTED, "vhost": vhost, "durable": True, "auto_delete": False,
               "arguments": dict(qargs)}]
    bindings = [{"source": UNROUTED, "vhost": vhost, "destination": UNROUTED,
                 "destination_type": "queue", "routing_key": "", "arguments": {}}]
    declared: set[str] = set()
    for sub in registry.subscriptions():
        if sub.queue not in declared:  # a shared queue is declared once, bound per type
            queues += _handled_queue(sub.queue, vhost, qargs)
            declared.add(sub.queue)
        bindings.append({"source": sub.exchange, "vhost": vhost, "destination": sub.queue,
                         "destination_type": "queue", "routing_key": sub.event_type,
                         "arguments": {}})
    # The bridge: partners' shovels publish to `bridge.inbound`; our outbound queues, one per
    # partner, are the sources of our shovels.
    exchanges.append({"name": BRIDGE_INBOUND, "vhost": vhost, "type": "fanout", "durable": True,
                      "auto_delete": False, "internal": False, "arguments": {}})
    for name in CONSUMER_QUEUES:
        queues += _handled_queue(name, vhost, qargs)
    bindings.append({"source": BRIDGE_INBOUND, "vhost": vhost, "destination": BRIDGE_INBOUND,
                     "destination_type": "queue", "routing_key": "", "arguments": {}})
    own = city_of_vhost(vhost)
    for partner in CITY_CODES:
        if partner != own:
            queues.append({"name": outbound_queue(partner), "vhost": vhost, "durable": True,
                           "auto_delete": False, "arguments": dict(qargs)})
    policies = [{
        "vhost": vhost, "name": "liandong-unrouted", "pattern": r"^[a-z_]+\.events$",
        "apply-to": "exchanges", "priority": 0, "definition": {"alternate-exchange": UNROUTED},
    }]
    return {"exchanges": exchanges, "queues": queues, "bindings": bindings, "policies": policies}


def apply(management_url: str, vhost: str) -> dict:
    """Create the vhost if needed and load its definitions through the management API."""
    import requests

    from liandong.provision import management_session

    session, base = management_session(management_url)
    v = quote(vhost, safe="")
    session.put(f"{base}/api/vhosts/{v}", json={}).raise_for_status()
    body = definitions(vhost)
    # The vhost-scoped import ignores the "vhost" key of each item.
    resp = session.post(f"{base}/api/definitions/{v}", json=body)
    if resp.status_code >= 400:
        raise requests.HTTPError(f"definitions import failed: {resp.status_code} {resp.text}")
    return body


def management_session(management_url: str):
    """A requests session and base URL for the RabbitMQ management API."""
    from urllib.parse import urlsplit

    import requests

    parts = urlsplit(management_url)
    session = requests.Session()
    session.auth = (parts.username or "guest", parts.password or "guest")
    return session, f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}"


# publishing to retry and parking queues (through the default exchange) -----------------------

def control_publisher(amqp_uri: str) -> Publisher:
    return Publisher(amqp_uri, use_confirms=True, serializer="json", delivery_mode=PERSISTENT)


def _raw_kwargs(body) -> dict:
    # Bytes (a body that could not be decoded) travel as they came; anything else as JSON.
    if isinstance(body, bytes | bytearray):
        return {"content_type": "application/octet-stream", "content_encoding": "binary"}
    return {}


def send_to_retry(publisher: Publisher, queue: str, attempt: int, body, headers: dict,
                  error: str) -> None:
    publisher.publish(
        body, exchange="", routing_key=f"{queue}.retry.{attempt}",
        headers={**_clean(headers), "x-liandong-attempts": attempt,
                 "x-liandong-last-error": error[:2000]},
        **_raw_kwargs(body),
    )


def send_to_parked(publisher: Publisher, queue: str, body, headers: dict, reason: str,
                   error: str, attempts: int) -> None:
    publisher.publish(
        body, exchange="", routing_key=f"{queue}.parked",
        headers={**_clean(headers), "x-liandong-reason": reason,
                 "x-liandong-error": error[:4000], "x-liandong-attempts": attempts,
                 "x-liandong-queue": queue,
                 "x-liandong-parked-at": datetime.now(UTC).isoformat()},
        **_raw_kwargs(body),
    )


def _clean(headers: dict | None) -> dict:
    # x-death is the broker's own bookkeeping of dead-lettering; do not carry it forward.
    return {k: v for k, v in (headers or {}).items() if k != "x-death"}

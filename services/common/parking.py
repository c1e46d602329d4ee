"""Operator access to parked messages: list them with their error, replay them to their queue."""

from __future__ import annotations

from urllib.parse import quote

from kombu import Connection, Producer

from services.common.topology import management_session


def list_parked(management_url: str, vhost: str, limit: int = 20) -> list[dict]:
    session, base = management_session(management_url)
    v = quote(vhost, safe="")
    queues = session.get(f"{base}/api/queues/{v}", params={"columns": "name"},
                         timeout=10).json()
    out = []
    for q in queues:
        # The queue's message count in the API lags by the stats interval: ask every parking queue.
        if not q["name"].endswith(".parked"):
            continue
        msgs = session.post(f"{base}/api/queues/{v}/{quote(q['name'], safe='')}/get", json={
            "count": limit, "ackmode": "ack_requeue_true", "encoding": "auto",
            "truncate": 20000}, timeout=30).json()
        for m in msgs:
            headers = m.get("properties", {}).get("headers", {})
            out.append({
                "queue": q["name"][: -len(".parked")],
                "reason": headers.get("x-liandong-reason"),
                "error": headers.get("x-liandong-error"),
                "attempts": headers.get("x-liandong-attempts"),
                "parked_at": headers.get("x-liandong-parked-at"),
                "payload": m.get("payload"),
            })
    return out


def replay(amqp_uri: str, queue: str, count: int) -> int:
    """Move up to `count` messages from `<queue>.parked` back to `queue` (attempts reset)."""
    moved = 0
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        producer = Producer(channel)
        channel.confirm_select()
        while moved < count:
            message = channel.basic_get(f"{queue}.parked", no_ack=False)
            if message is None:
                break
            props = message.properties
            headers = {k: v for k, v in (props.get("application_headers") or {}).items()
                       if not k.startswith("x-liandong-") and k != "x-death"}
            producer.publish(message.body, exchange="", routing_key=queue, headers=headers,
                             content_type=props.get("content_type", "application/json"),
                             content_encoding=props.get("content_encoding", "utf-8"),
                             delivery_mode=2)
            channel.basic_ack(message.delivery_tag)
            moved += 1
    return moved

"""Operator access to parked messages: list them with their error, replay them to their queue."""

from __future__ import annotations

from urllib.parse import quote

from kombu import Connection, Producer

from services.common.topology import management_session


def list_parked(management_url: str, vhost: str, limit: int = 20) -> list[dict]:
    session, base = management_session(management_url)
    v = quote(vhost, safe="")
    queues = session.get(f"{base}/api/queues/{v}", params={"columns": "name,messages"},
                         timeout=10).json()
    out = []
    for q in queues:
        if not q["name"].endswith(".parked") or not q.get("messages"):
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
            headers = {k: v for k, v in (message.headers or {}).items()
                       if not k.startswith("x-liandong-") and k != "x-death"}
            producer.publish(message.body, exchange="", routing_key=queue, headers=headers,
                             content_type=message.content_type,
                             content_encoding=message.content_encoding, delivery_mode=2)
            message.ack()
            moved += 1
    return moved

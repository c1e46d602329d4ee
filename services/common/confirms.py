"""Publish many messages and wait once for the broker's confirms of all of them.

kombu's confirmed publish waits for each message's confirm before sending the next: one round
trip per message. For batches (the outbox, the bridge) this publisher sends them all on a
confirm-mode channel, then waits until the broker has acknowledged the last delivery tag (an ack
may cover several, `multiple`); a nack or a timeout fails the whole call, and the caller's usual
path (the outbox sweep, a retried batch) sends again: consumers drop the copies by event id.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import amqp
from eventlet.queue import Empty, LightQueue

PERSISTENT = 2


class NotConfirmed(Exception):
    """The broker nacked a message, or did not confirm in time."""


@dataclass
class OutgoingMessage:
    exchange: str
    routing_key: str
    body: dict
    headers: dict = field(default_factory=dict)
    message_id: str | None = None


@dataclass
class _Link:
    connection: amqp.Connection
    channel: amqp.Channel
    published: int = 0
    acked: int = 0
    nacked: bool = False


class BatchPublisher:
    def __init__(self, amqp_uri: str, timeout: float = 30.0):
        parts = urlsplit(amqp_uri)
        self._params = {
            "host": f"{parts.hostname or '127.0.0.1'}:{parts.port or 5672}",
            "userid": unquote(parts.username or "guest"),
            "password": unquote(parts.password or "guest"),
            "virtual_host": unquote(parts.path[1:]) if len(parts.path) > 1 else "/",
        }
        self.timeout = timeout
        self._free: LightQueue = LightQueue()

    def _open(self) -> _Link:
        connection = amqp.Connection(**self._params)
        connection.connect()
        channel = connection.channel()
        channel.confirm_select()
        link = _Link(connection, channel)

        def on_ack(tag, multiple):
            link.acked = max(link.acked, tag)

        def on_nack(tag, multiple):
            link.nacked = True

        channel.events["basic_ack"].add(on_ack)
        channel.events["basic_nack"].add(on_nack)
        return link

    def _take(self) -> _Link:
        try:
            return self._free.get_nowait()
        except Empty:
            return self._open()

    def publish_many(self, messages: list[OutgoingMessage]) -> None:
        if not messages:
            return
        try:
            self._publish(self._take(), messages)
        except (OSError, amqp.exceptions.ConnectionError):
            # a pooled connection the broker closed while idle: once more on a fresh one
            self._publish(self._open(), messages)

    def _publish(self, link: _Link, messages: list[OutgoingMessage]) -> None:
        ok = False
        try:
            for m in messages:
                link.channel.basic_publish(amqp.Message(
                    json.dumps(m.body, ensure_ascii=False).encode("utf-8"),
                    content_type="application/json", content_encoding="utf-8",
                    delivery_mode=PERSISTENT, application_headers=m.headers,
                    message_id=m.message_id,
                ), exchange=m.exchange, routing_key=m.routing_key)
                link.published += 1
            deadline = time.monotonic() + self.timeout
            while link.acked < link.published and not link.nacked:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise NotConfirmed(f"no confirm within {self.timeout} s")
                try:
                    link.connection.drain_events(timeout=remaining)
                except TimeoutError:
                    continue
            if link.nacked:
                raise NotConfirmed("the broker refused a message (basic.nack)")
            ok = True
        finally:
            if ok:
                self._free.put(link)
            else:
                try:
                    link.connection.close()
                except Exception:
                    pass

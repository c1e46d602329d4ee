"""A consumer that hands its worker a batch of messages: one transaction and one set of round
trips for up to `max_batch` messages, for high-volume paths (the bridge).

The guarantees are those of `services.common.entrypoints` per message: each message of the batch
is acked, or parked with the `Refusal` the worker returned for it, only after the batch's unit of
work committed; if the worker fails, every message of the batch goes through retry, then parking.
"""

from __future__ import annotations

from functools import partial

import eventlet
from kombu import Queue
from nameko.messaging import Consumer

from contracts.registry import load_all
from services.common import topology
from services.common.db import finish_units_of_work
from services.common.entrypoints import Refusal, _Reliability
from services.common.logging import get_logger

log = get_logger(__name__)


class BatchConsumer(_Reliability, Consumer):
    def __init__(self, queue_name: str, max_batch: int = 200, max_wait: float = 0.02, **kwargs):
        self.queue_name = queue_name
        self.max_batch = max_batch
        self.max_wait = max_wait
        super().__init__(queue=None, **kwargs)

    def setup(self):
        self._setup_reliability(self.queue_name)
        self.consumer_options.setdefault("prefetch_count", self.max_batch * 4)
        self.queue = Queue(self.queue_name, durable=True,
                           queue_arguments=topology.queue_arguments(), no_declare=True)
        self._buffer: list = []
        self._timer = None
        super().setup()

    def handle_message(self, body, message):
        if not isinstance(body, dict):
            self._park(message, body, "invalid", "the body is not a JSON object")
            return
        self._buffer.append((body, message))
        if len(self._buffer) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = eventlet.spawn_after(self.max_wait, self._flush)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._buffer = self._buffer, []
        if not batch:
            return
        bodies = [b for b, _ in batch]
        messages = [m for _, m in batch]
        self.container.spawn_managed_thread(partial(self._spawn, bodies, messages))

    def _spawn(self, bodies, messages) -> None:
        self.container.spawn_worker(self, (bodies,), {},
                                    handle_result=partial(self.handle_batch_result, messages))

    def handle_batch_result(self, messages, worker_ctx, result=None, exc_info=None):
        exc_info = finish_units_of_work(worker_ctx, exc_info)
        if exc_info is not None:
            for message in messages:
                self.handle_message_processed(message, None, exc_info)
            return result, exc_info
        for message, outcome in zip(messages, result or [None] * len(messages), strict=True):
            if isinstance(outcome, Refusal):
                self._park(message, message.payload, outcome.reason, outcome.detail)
            elif outcome:  # parts refused, the rest applied: park each part, ack the message
                self._park_parts(message, outcome)
            else:
                self.consumer.ack_message(message)
        return result, exc_info


    def _park_parts(self, message, refusals: list[Refusal]) -> None:
        try:
            for r in refusals:
                self._publish_parked(message, r.part, r.reason, r.detail, 0)
        except Exception:
            log.exception("could not park; requeueing", queue=self.queue_name)
            self.consumer.requeue_message(message)
            return
        self.consumer.ack_message(message)


def consume_batch(queue_name: str, max_batch: int = 200, max_wait: float = 0.02):
    """Decorate `method(self, bodies: list[dict]) -> list[None | Refusal | list[Refusal]]`
    (same length; a list refuses parts of a message, see `Refusal.part`)."""
    return BatchConsumer.decorator(queue_name, max_batch=max_batch, max_wait=max_wait)


def subscribed_types(queue_name: str) -> set[str]:
    return {s.event_type for s in load_all().queue_subscriptions(queue_name)}

"""Entrypoints that commit before they answer, and event handlers that never lose a message.

- `rpc` and `http`: nameko's, but the worker's unit of work commits before the reply is sent.
- `event_handler`: nameko's EventHandler on the queue the topology declared, plus
  * the envelope and data are validated on arrival; an invalid event is parked at once with the
    validation error and never reaches the handler;
  * the inbox: an event already applied by this handler is acknowledged and skipped;
  * a failing handler is retried through delay queues (`<queue>.retry.<n>`, dead-lettered back to
    the queue) a bounded number of times, then parked in `<queue>.parked` with the error;
  * the message is acked only once the retry or parked copy is confirmed by the broker, so a crash
    anywhere leaves the message in the queue (redelivered, then skipped by the inbox if applied).
- `consume(queue)`: the same guarantees for a queue that carries something other than events
  (the bridge's signed envelopes); the worker may return a `Refusal` to park a message it will
  not apply, with the reason.
"""

from __future__ import annotations

import functools
import traceback
from dataclasses import dataclass

from kombu import Queue
from nameko.events import EventHandler
from nameko.messaging import Consumer
from nameko.rpc import Rpc
from nameko.web.handlers import HttpRequestHandler

from contracts.envelope import Event, EventValidationError
from contracts.errors import EXPECTED_ERRORS
from contracts.registry import load_all
from services.common import topology
from services.common.config import setting
from services.common.db import finish_units_of_work
from services.common.logging import get_logger
from services.common.metrics import EVENTS_HANDLED, PARKED

log = get_logger(__name__)


class TransactionalRpc(Rpc):
    def __init__(self, expected_exceptions=EXPECTED_ERRORS, **kwargs):
        super().__init__(expected_exceptions=expected_exceptions, **kwargs)

    def handle_result(self, message, worker_ctx, result, exc_info):
        exc_info = finish_units_of_work(worker_ctx, exc_info)
        if exc_info is not None:
            result = None
        return super().handle_result(message, worker_ctx, result, exc_info)


class TransactionalHttp(HttpRequestHandler):
    def handle_result(self, event, worker_ctx, result, exc_info):
        exc_info = finish_units_of_work(worker_ctx, exc_info)
        if exc_info is not None:
            result = None
        return super().handle_result(event, worker_ctx, result, exc_info)


rpc = TransactionalRpc.decorator
http = TransactionalHttp.decorator


@dataclass(frozen=True)
class Refusal:
    """Returned by a consumer that refuses a message: it is parked with this reason, and what the
    worker recorded (e.g. a refusal count) still commits. With `part`, only that part of the
    message (e.g. one event of a bridge bundle) is parked; a batch worker returns a list of
    such refusals for a message whose other parts it applied."""

    reason: str
    detail: str
    part: dict | None = None


class _Reliability:
    """Retry, park and refuse, shared by the event handler and the plain queue consumer."""

    queue_name: str

    def _setup_reliability(self, queue_name: str) -> None:
        self.queue_name = queue_name
        # A body that cannot even be decoded is parked, not raised into the consumer loop.
        self.consumer_options["on_decode_error"] = self._on_decode_error
        self.max_attempts = len(topology.retry_delays()) + 1
        self.publisher = topology.control_publisher(setting("AMQP_URI"))

    def _label(self) -> str:
        return self.method_name

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        exc_info = finish_units_of_work(worker_ctx, exc_info)
        self.handle_message_processed(message, result, exc_info)
        return result, exc_info

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is None and isinstance(result, Refusal):
            self._park(message, message.payload, result.reason, result.detail)
            return
        if exc_info is None:
            self.consumer.ack_message(message)
            return
        attempts = int(message.headers.get("x-liandong-attempts", 0)) + 1
        error = "".join(traceback.format_exception_only(exc_info[0], exc_info[1])).strip()
        try:
            if attempts < self.max_attempts:
                topology.send_to_retry(self.publisher, self.queue_name, attempts,
                                       message.payload, message.headers, error)
                outcome = "retried"
                log.warning("handler failed; retrying", queue=self.queue_name,
                            attempt=attempts, error=error)
            else:
                self._publish_parked(message, message.payload, "handler_failed", error, attempts)
                outcome = "parked"
        except Exception:
            # Could not hand the message on: leave it in the queue, nothing is lost.
            log.exception("could not retry or park; requeueing", queue=self.queue_name)
            self.consumer.requeue_message(message)
            return
        EVENTS_HANDLED.labels(self._label(), self.method_name, outcome).inc()
        self.consumer.ack_message(message)

    def _on_decode_error(self, message, exc) -> None:
        self._park(message, message.body, "undecodable", f"{type(exc).__name__}: {exc}")

    def _park(self, message, body, reason: str, error: str) -> None:
        try:
            self._publish_parked(message, body, reason, error, 0)
        except Exception:
            log.exception("could not park; requeueing", queue=self.queue_name)
            self.consumer.requeue_message(message)
            return
        self.consumer.ack_message(message)

    def _publish_parked(self, message, body, reason, error, attempts) -> None:
        topology.send_to_parked(self.publisher, self.queue_name, body, message.headers,
                                reason, error, attempts)
        PARKED.labels(self.queue_name, reason).inc()
        log.error("message parked", queue=self.queue_name, reason=reason, error=error)


class ReliableEventHandler(_Reliability, EventHandler):
    def __init__(self, source_service: str, event_type: str, **kwargs):
        super().__init__(source_service, event_type, **kwargs)

    def setup(self):
        self.subscription = load_all().subscription(self.container.service_name, self.method_name)
        if (self.subscription.producer, self.subscription.event_type) != (
            self.source_service,
            self.event_type,
        ):
            raise LookupError(f"{self.subscription} does not match the handler's decorator")
        self._setup_reliability(self.subscription.queue)
        super().setup()
        # Declare exactly as the topology did (same arguments), so a quorum queue is not refused.
        self.queue = Queue(
            self.subscription.queue,
            exchange=self.queue.exchange,
            routing_key=self.event_type,
            durable=True,
            queue_arguments=topology.queue_arguments(),
        )
        self.consumer.queues = [self.queue]

    def _label(self) -> str:
        return self.event_type

    def handle_message(self, body, message):
        try:
            event = Event.from_wire(body)
        except EventValidationError as exc:
            self._park(message, body, "invalid", f"{exc}: {exc.errors}")
            return
        message.headers["nameko.trace_id"] = event.trace_id
        super().handle_message(event, message)


class ReliableConsumer(_Reliability, Consumer):
    """Consume a queue the topology declared (not an event subscription): the worker gets the
    decoded JSON body; it may return a `Refusal`. Retries and parking as for events."""

    def __init__(self, queue_name: str, **kwargs):
        self.queue_name = queue_name
        super().__init__(queue=None, **kwargs)

    def setup(self):
        self._setup_reliability(self.queue_name)
        self.queue = Queue(self.queue_name, durable=True,
                           queue_arguments=topology.queue_arguments(), no_declare=True)
        super().setup()

    def handle_message(self, body, message):
        if not isinstance(body, dict):
            self._park(message, body, "invalid", "the body is not a JSON object")
            return
        super().handle_message(body, message)


consume = ReliableConsumer.decorator


def event_handler(source_service: str, event_type: str):
    """Decorate `method(self, event: Event)`; the service must have `db = Database(...)`.

    The handler runs at most once per event: the inbox claim commits with its effect.
    """

    def decorator(fn):
        handler_name = fn.__name__

        @functools.wraps(fn)
        def wrapper(self, event: Event):
            if not self.db.first_delivery(event, handler_name):
                EVENTS_HANDLED.labels(event.type, handler_name, "duplicate").inc()
                log.info("duplicate event skipped", event_id=event.id, type=event.type)
                return None
            import structlog

            structlog.contextvars.bind_contextvars(event_id=event.id, subject=event.subject)
            result = fn(self, event)
            EVENTS_HANDLED.labels(event.type, handler_name, "applied").inc()
            return result

        return ReliableEventHandler.decorator(source_service, event_type)(wrapper)

    return decorator


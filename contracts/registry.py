"""Registry of event contracts: (type, version) → marshmallow schema, producer, and subscribers.

The registry is the single source for:
- validation of every event when it leaves (outbox) and when it arrives (event handlers);
- the broker topology declared at deploy time (exchanges, queues, bindings, retry and parking);
- the generated JSON Schemas and AsyncAPI document under `contracts/`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from marshmallow import Schema, ValidationError

from contracts.envelope import EventValidationError


@dataclass(frozen=True)
class EventContract:
    type: str
    version: int
    producer: str  # the service whose `<producer>.events` exchange carries it
    schema: type[Schema]
    description: str

    @property
    def exchange(self) -> str:
        return exchange_for(self.producer)


@dataclass(frozen=True)
class Subscription:
    """A handler of one service consuming one event type from one producer."""

    service: str
    method: str
    producer: str
    event_type: str
    shared_queue: str | None = None  # a batch consumer's one queue for several event types

    @property
    def queue(self) -> str:
        if self.shared_queue:
            return self.shared_queue
        # nameko's SERVICE_POOL queue name, so nameko's EventHandler finds the declared queue.
        return f"evt-{self.producer}-{self.event_type}--{self.service}.{self.method}"

    @property
    def exchange(self) -> str:
        return exchange_for(self.producer)


@functools.cache
def schema_instance(schema_cls: type[Schema]) -> Schema:
    """One instance per schema class: marshmallow schemas keep no state between loads."""
    return schema_cls()


def exchange_for(service: str) -> str:
    return f"{service}.events"


class Registry:
    def __init__(self) -> None:
        self._contracts: dict[tuple[str, int], EventContract] = {}
        self._subscriptions: list[Subscription] = []

    # registration -------------------------------------------------------
    def event(self, type: str, version: int, producer: str, description: str):
        """Class decorator registering a data schema for (type, version)."""

        def register(schema: type[Schema]) -> type[Schema]:
            key = (type, version)
            if key in self._contracts:
                raise ValueError(f"event {type} v{version} registered twice")
            self._contracts[key] = EventContract(type, version, producer, schema, description)
            return schema

        return register

    def subscribe(self, service: str, method: str, producer: str, event_type: str,
                  shared_queue: str | None = None) -> Subscription:
        sub = Subscription(service, method, producer, event_type, shared_queue)
        if sub not in self._subscriptions:
            self._subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Tests that register a subscription of their own take it back."""
        self._subscriptions.remove(sub)

    # lookup -------------------------------------------------------------
    def contract(self, type: str, version: int) -> EventContract:
        try:
            return self._contracts[(type, version)]
        except KeyError:
            raise EventValidationError(f"unknown event {type} v{version}") from None

    def latest(self, type: str) -> EventContract:
        versions = [c for (t, _), c in self._contracts.items() if t == type]
        if not versions:
            raise EventValidationError(f"unknown event type {type}")
        return max(versions, key=lambda c: c.version)

    def contracts(self) -> list[EventContract]:
        return sorted(self._contracts.values(), key=lambda c: (c.type, c.version))

    def subscriptions(self, service: str | None = None) -> list[Subscription]:
        return [s for s in self._subscriptions if service is None or s.service == service]

    def queue_subscriptions(self, queue: str) -> list[Subscription]:
        return [s for s in self._subscriptions if s.queue == queue]

    def subscription(self, service: str, method: str) -> Subscription:
        for sub in self._subscriptions:
            if sub.service == service and sub.method == method:
                return sub
        raise LookupError(
            f"{service}.{method} handles an event but is not registered in contracts.subscriptions"
        )

    def producers(self) -> list[str]:
        return sorted({c.producer for c in self._contracts.values()})

    # validation ---------------------------------------------------------
    def load_data(self, type: str, version: int, data: dict) -> dict:
        schema = schema_instance(self.contract(type, version).schema)
        try:
            return schema.load(data)
        except ValidationError as exc:
            raise EventValidationError(f"invalid data for {type} v{version}", exc.messages) from exc

    def dump_data(self, type: str, version: int, data: dict) -> dict:
        schema = schema_instance(self.contract(type, version).schema)
        # Validate what leaves exactly as a receiver will validate it on arrival.
        dumped = schema.dump(data)
        self.load_data(type, version, dumped)
        return dumped


registry = Registry()


def load_all() -> Registry:
    """Import every contract module so the registry is complete."""
    import contracts.events  # noqa: F401
    import contracts.subscriptions  # noqa: F401

    return registry

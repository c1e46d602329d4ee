"""Generate the machine-readable contracts from the code: `python -m contracts.generate`.

Writes, deterministically (same registry → same bytes, whatever the environment):

- `contracts/schemas/<type>.v<version>.json`: JSON Schema (draft 2020-12) of the whole event,
  the envelope with `data` being that event's data schema; self-contained (nested schemas
  under `$defs`);
- `contracts/published/<type>.v<version>.json`: the frozen copy of a published version, created
  when missing and never overwritten: the baseline `contracts.compat` compares against;
- `contracts/asyncapi.json`: AsyncAPI 2.6.0 of the `<producer>.events` exchanges, with the
  subscribers of each channel from `contracts.subscriptions`;
- `contracts/openapi.json`: the gateway's OpenAPI 3.1 document;
- `deploy/rabbitmq/definitions.json`: the broker definitions of the five city vhosts.

`--check` writes nothing and exits 1 listing the files that are stale (run `make contracts`).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from contracts.envelope import EnvelopeSchema
from contracts.registry import EventContract, Registry, load_all

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS_DIR = ROOT / "contracts"
SCHEMAS_DIR = CONTRACTS_DIR / "schemas"
PUBLISHED_DIR = CONTRACTS_DIR / "published"
ASYNCAPI_FILE = CONTRACTS_DIR / "asyncapi.json"
OPENAPI_FILE = CONTRACTS_DIR / "openapi.json"
DEFINITIONS_FILE = ROOT / "deploy" / "rabbitmq" / "definitions.json"

# One vhost per city; the order is the order of the generated definitions.
VHOSTS: tuple[str, ...] = ("/taicang", "/kunshan", "/changshu", "/jiading", "/baoshan")

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID_BASE = "https://liandong.example/contracts/"
AMQP_BINDING_VERSION = "0.2.0"
PERSISTENT = 2

_COMPONENTS_PREFIX = "#/components/schemas/"
_ENVELOPE_NAME = "Envelope"


def render(doc: Any) -> str:
    """The one serialisation of every generated file."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_file_name(type: str, version: int) -> str:
    return f"{type}.v{version}.json"


def message_name(type: str, version: int) -> str:
    return f"{type}.v{version}"


# JSON Schemas of the events ------------------------------------------------------------------

def _walk_refs(node: Any):
    """Every `$ref` string in a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _walk_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_refs(item)


def _rewrite_refs(node: Any, old_prefix: str, new_prefix: str) -> Any:
    if isinstance(node, dict):
        return {
            key: (new_prefix + value[len(old_prefix):]
                  if key == "$ref" and isinstance(value, str) and value.startswith(old_prefix)
                  else _rewrite_refs(value, old_prefix, new_prefix))
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(item, old_prefix, new_prefix) for item in node]
    return node


def _referenced(components: dict[str, Any], roots: list[Any]) -> list[str]:
    """Names of the components reachable from `roots`, transitively."""
    seen: set[str] = set()
    todo = [ref for root in roots for ref in _walk_refs(root)]
    while todo:
        ref = todo.pop()
        if not ref.startswith(_COMPONENTS_PREFIX):
            raise ValueError(f"unexpected $ref {ref!r} in a generated schema")
        name = ref[len(_COMPONENTS_PREFIX):]
        if name in seen:
            continue
        if name not in components:
            raise ValueError(f"$ref {ref!r} names no component")
        seen.add(name)
        todo.extend(_walk_refs(components[name]))
    return sorted(seen)


def event_schema(contract: EventContract) -> dict[str, Any]:
    """The self-contained JSON Schema (2020-12) of a whole event of this (type, version)."""
    spec = APISpec(
        title="Liandong 联动 events", version="1.0.0", openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
    )
    data_name = contract.schema.__name__
    if data_name == _ENVELOPE_NAME:
        raise ValueError(f"event data schema of {contract.type} may not be named {data_name}")
    spec.components.schema(_ENVELOPE_NAME, schema=EnvelopeSchema)
    spec.components.schema(data_name, schema=contract.schema)
    components = copy.deepcopy(spec.to_dict()["components"]["schemas"])

    envelope = components[_ENVELOPE_NAME]
    data = components[data_name]
    properties = dict(envelope["properties"])
    properties["type"] = {"type": "string", "const": contract.type}
    properties["version"] = {"type": "integer", "const": contract.version}
    properties["data"] = data

    doc: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": SCHEMA_ID_BASE + schema_file_name(contract.type, contract.version),
        "title": f"{contract.type} v{contract.version}",
        "description": contract.description,
        **{k: v for k, v in envelope.items() if k != "properties"},
        "properties": properties,
    }
    defs = {name: components[name] for name in _referenced(components, [properties])}
    if defs:
        doc["$defs"] = defs
    return _rewrite_refs(doc, _COMPONENTS_PREFIX, "#/$defs/")


def event_schemas(registry: Registry) -> dict[tuple[str, int], dict[str, Any]]:
    return {(c.type, c.version): event_schema(c) for c in registry.contracts()}


# AsyncAPI ------------------------------------------------------------------------------------

def _payload(schema: dict[str, Any], name: str, shared: dict[str, Any],
             raw: dict[str, Any]) -> dict[str, Any]:
    """The event schema as an AsyncAPI message payload: its `$defs` move to
    components.schemas (shared by every message) and the refs follow them.

    `raw` keeps each shared definition as it was in its event schema, to compare like with like.
    """
    payload = {k: v for k, v in schema.items() if k not in ("$schema", "$id", "$defs")}
    defs = schema.get("$defs", {})
    clash = any(n in raw and raw[n] != d for n, d in defs.items())
    # Two different nested schemas with one name: keep both, this event's qualified by its name.
    renames = {n: f"{name}.{n}" if clash else n for n in defs}

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                    out[key] = _COMPONENTS_PREFIX + renames[value[len("#/$defs/"):]]
                else:
                    out[key] = fix(value)
            return out
        if isinstance(node, list):
            return [fix(item) for item in node]
        return node

    for def_name, definition in defs.items():
        raw[renames[def_name]] = definition
        shared[renames[def_name]] = fix(definition)
    return fix(payload)


def asyncapi_document(registry: Registry,
                      schemas: dict[tuple[str, int], dict[str, Any]]) -> dict[str, Any]:
    messages: dict[str, Any] = {}
    shared: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    for contract in registry.contracts():
        name = message_name(contract.type, contract.version)
        messages[name] = {
            "name": contract.type,
            "title": f"{contract.type} v{contract.version}",
            "summary": contract.description,
            "contentType": "application/json",
            "payload": _payload(schemas[(contract.type, contract.version)], name, shared,
                                raw),
            "bindings": {"amqp": {"messageType": contract.type,
                                  "bindingVersion": AMQP_BINDING_VERSION}},
        }

    # A channel per (producer, type): where each contract is published, and where a
    # subscription consumes it (the bridge relays another city's events on `bridge.events`).
    pairs: set[tuple[str, str]] = {(c.producer, c.type) for c in registry.contracts()}
    pairs |= {(s.producer, s.event_type) for s in registry.subscriptions()}
    channels: dict[str, Any] = {}
    for producer, type in sorted(pairs):
        exchange = f"{producer}.events"
        versions = sorted(c.version for c in registry.contracts() if c.type == type)
        refs = [{"$ref": f"#/components/messages/{message_name(type, v)}"} for v in versions]
        own = any(c.producer == producer and c.type == type for c in registry.contracts())
        subscribers = sorted(
            ({"handler": f"{s.service}.{s.method}", "queue": s.queue}
             for s in registry.subscriptions()
             if s.producer == producer and s.event_type == type),
            key=lambda s: (s["handler"], s["queue"]),
        )
        channel: dict[str, Any] = {
            "description": (
                f"`{type}` events published by {producer} on the `{exchange}` topic exchange "
                f"with routing key `{type}`." if own else
                f"`{type}` events relayed by {producer} on the `{exchange}` topic exchange "
                f"with routing key `{type}`."
            ),
            "bindings": {"amqp": {
                "is": "routingKey",
                "exchange": {"name": exchange, "type": "topic", "durable": True,
                             "autoDelete": False},
                "bindingVersion": AMQP_BINDING_VERSION,
            }},
            "x-routing-key": type,
            "x-subscribers": subscribers,
        }
        if refs:
            channel["subscribe"] = {
                "operationId": f"{producer}.publish.{type}",
                "summary": f"{producer} publishes {type}",
                "message": refs[0] if len(refs) == 1 else {"oneOf": refs},
                "bindings": {"amqp": {"cc": [type], "deliveryMode": PERSISTENT,
                                      "bindingVersion": AMQP_BINDING_VERSION}},
            }
        channels[f"{exchange}/{type}"] = channel

    components: dict[str, Any] = {"messages": messages}
    if shared:
        components["schemas"] = shared
    return {
        "asyncapi": "2.6.0",
        "info": {
            "title": "Liandong 联动 events",
            "version": "1.0.0",
            "description": (
                "Events of the cross-region joint enforcement platform of Taicang, Kunshan, "
                "Changshu, Jiading and Baoshan (宝嘉常昆太). Each city has its own RabbitMQ "
                "vhost with the same topology; every event travels in one envelope "
                "{id, type, version, source, city, time, subject, trace_id, data}. "
                "Generated from contracts/ by `make contracts`; do not edit."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "components": components,
    }


# OpenAPI and broker definitions -------------------------------------------------------------

def openapi() -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eventlet's deprecation notice on import
        import services.gateway.service  # noqa: F401  (registers the gateway's operations)
        from services.gateway.openapi import openapi_document

    return copy.deepcopy(openapi_document())


def broker_definitions() -> dict[str, Any]:
    from nameko import config as nameko_config

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eventlet's deprecation notice on import
        from services.common.topology import definitions

    # An empty setting means "the code's default": the file must not depend on QUEUE_TYPE or
    # RETRY_DELAYS_MS of whoever runs the generator.
    with nameko_config.patch({"QUEUE_TYPE": "", "RETRY_DELAYS_MS": ""}):
        per_vhost = [definitions(vhost) for vhost in VHOSTS]
    merged: dict[str, Any] = {"vhosts": [{"name": vhost} for vhost in VHOSTS]}
    for key in ("exchanges", "queues", "bindings", "policies"):
        merged[key] = [item for defs in per_vhost for item in defs[key]]
    return merged


# files ---------------------------------------------------------------------------------------

def outputs() -> tuple[dict[Path, str], dict[Path, str]]:
    """(files the generator owns and rewrites, published copies it only ever creates)."""
    registry = load_all()
    schemas = event_schemas(registry)
    owned: dict[Path, str] = {}
    published: dict[Path, str] = {}
    for (type, version), schema in sorted(schemas.items()):
        owned[SCHEMAS_DIR / schema_file_name(type, version)] = render(schema)
        published[PUBLISHED_DIR / schema_file_name(type, version)] = render(schema)
    owned[ASYNCAPI_FILE] = render(asyncapi_document(registry, schemas))
    owned[OPENAPI_FILE] = render(openapi())
    owned[DEFINITIONS_FILE] = render(broker_definitions())
    return owned, published


def _orphans(owned: dict[Path, str]) -> list[Path]:
    """Schemas of contracts no longer registered (published copies stay: they are history)."""
    if not SCHEMAS_DIR.is_dir():
        return []
    return sorted(p for p in SCHEMAS_DIR.glob("*.json") if p not in owned)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def stale() -> list[str]:
    """What `generate()` would change, one line per file; empty when everything is current."""
    owned, published = outputs()
    problems = [f"{_rel(p)}: {'missing' if _read(p) is None else 'out of date'}"
                for p, text in owned.items() if _read(p) != text]
    problems += [f"{_rel(p)}: missing (published copy)" for p in published if not p.exists()]
    problems += [f"{_rel(p)}: no such contract (remove it)" for p in _orphans(owned)]
    return sorted(problems)


def generate() -> list[str]:
    """Write what changed; return the files written or removed."""
    owned, published = outputs()
    changed: list[str] = []
    for path, text in owned.items():
        if _read(path) != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(f"wrote {_rel(path)}")
    for path, text in published.items():
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(f"published {_rel(path)}")
    for path in _orphans(owned):
        path.unlink()
        changed.append(f"removed {_rel(path)}")
    return sorted(changed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts.generate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 listing stale files")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale()
        if problems:
            print("Generated contracts are stale; run `make contracts`:", file=sys.stderr)
            for line in problems:
                print(f"  {line}", file=sys.stderr)
            return 1
        print("contracts: up to date")
        return 0
    changed = generate()
    for line in changed:
        print(line)
    if not changed:
        print("contracts: up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())

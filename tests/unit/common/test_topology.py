"""Unit tests for the broker topology declared from the contracts registry (no broker)."""

from __future__ import annotations

import re

import nameko
import pytest

from contracts.registry import load_all
from services.common import topology
from services.common.topology import UNROUTED, definitions, queue_arguments, retry_delays

VHOST = "/taicang"


@pytest.fixture
def classic():
    with nameko.config.patch({"QUEUE_TYPE": "classic", "RETRY_DELAYS_MS": "500,2000,10000"}):
        yield


@pytest.fixture
def defs(classic):
    return definitions(VHOST)


def by_name(items):
    return {i["name"]: i for i in items}


def test_retry_delays_parse_with_spaces():
    with nameko.config.patch({"RETRY_DELAYS_MS": "100, 200"}):
        assert retry_delays() == [100, 200]
    with nameko.config.patch({"RETRY_DELAYS_MS": " 100 ,200, "}):
        assert retry_delays() == [100, 200]


def test_retry_delays_default():
    with nameko.config.patch({"RETRY_DELAYS_MS": ""}):
        assert retry_delays() == [500, 2000, 10000]


def test_queue_arguments():
    with nameko.config.patch({"QUEUE_TYPE": "quorum"}):
        assert queue_arguments() == {"x-queue-type": "quorum"}
    with nameko.config.patch({"QUEUE_TYPE": "classic"}):
        assert queue_arguments() == {}


def test_a_durable_topic_exchange_per_producer_and_the_bridge(defs):
    registry = load_all()
    exchanges = by_name(defs["exchanges"])
    expected = {f"{p}.events" for p in registry.producers()} | {"bridge.events"}
    assert "leads.events" in expected
    for name in expected:
        ex = exchanges[name]
        assert ex["type"] == "topic" and ex["durable"] and not ex["auto_delete"]
        assert ex["vhost"] == VHOST
    assert exchanges[UNROUTED]["type"] == "fanout"
    assert exchanges["bridge.inbound"]["type"] == "fanout"
    assert set(exchanges) == expected | {UNROUTED, "bridge.inbound"}


def test_bridge_queues_inbound_with_retries_and_one_outbound_per_partner(defs):
    queues = by_name(defs["queues"])
    assert "bridge.inbound.parked" in queues and "bridge.inbound.retry.1" in queues
    outbound = {q for q in queues if q.startswith("bridge.outbound.")}
    own = VHOST.rsplit("/", 1)[-1]
    assert outbound == {f"bridge.outbound.{c}" for c in
                        ("taicang", "kunshan", "changshu", "jiading", "baoshan") if c != own}
    assert any(b["source"] == "bridge.inbound" and b["destination"] == "bridge.inbound"
               for b in defs["bindings"])


def test_each_subscription_queue_is_bound_by_its_event_type(defs):
    subs = load_all().subscriptions()
    assert subs, "the registry declares subscriptions"
    queues = by_name(defs["queues"])
    exchanges = by_name(defs["exchanges"])
    for sub in subs:
        q = queues[sub.queue]
        assert q["durable"] and not q["auto_delete"] and q["vhost"] == VHOST
        bindings = [b for b in defs["bindings"] if b["destination"] == sub.queue]
        expected = {"source": sub.exchange, "vhost": VHOST, "destination": sub.queue,
                    "destination_type": "queue", "routing_key": sub.event_type, "arguments": {}}
        # one binding per event type; a shared queue has one per type it subscribes to
        assert bindings.count(expected) == 1
        assert len(bindings) == len(load_all().queue_subscriptions(sub.queue))
        assert sub.exchange in exchanges  # bound to a declared exchange
    assert sum(1 for q in defs["queues"] if q["name"] == "bridge.send") == 1  # declared once


def test_handover_subscription_is_declared(defs):
    names = by_name(defs["queues"])
    q = "evt-bridge-lead.handed_over--leads.on_lead_handed_over"
    assert q in names
    assert f"{q}.parked" in names


def test_retry_queues_dead_letter_back_after_their_delay(classic):
    with nameko.config.patch({"RETRY_DELAYS_MS": "100, 200"}):
        defs = definitions(VHOST)
    queues = by_name(defs["queues"])
    for sub in load_all().subscriptions():
        retries = sorted(n for n in queues if n.startswith(f"{sub.queue}.retry."))
        assert retries == [f"{sub.queue}.retry.1", f"{sub.queue}.retry.2"]
        for n, delay in ((1, 100), (2, 200)):
            args = queues[f"{sub.queue}.retry.{n}"]["arguments"]
            assert args["x-message-ttl"] == delay
            assert args["x-dead-letter-exchange"] == ""
            assert args["x-dead-letter-routing-key"] == sub.queue
            assert queues[f"{sub.queue}.retry.{n}"]["durable"]


def test_retry_queue_count_follows_retry_delays(defs):
    queues = by_name(defs["queues"])
    delays = retry_delays()
    for sub in load_all().subscriptions():
        ttls = [queues[f"{sub.queue}.retry.{n}"]["arguments"]["x-message-ttl"]
                for n in range(1, len(delays) + 1)]
        assert ttls == delays
        assert f"{sub.queue}.retry.{len(delays) + 1}" not in queues


def test_parked_queue_has_no_ttl_and_no_dead_lettering(defs):
    queues = by_name(defs["queues"])
    for sub in load_all().subscriptions():
        parked = queues[f"{sub.queue}.parked"]
        assert parked["durable"]
        assert "x-message-ttl" not in parked["arguments"]
        assert "x-dead-letter-routing-key" not in parked["arguments"]


def test_unrouted_queue_is_bound_to_the_unrouted_exchange(defs):
    assert UNROUTED in by_name(defs["queues"])
    assert {"source": UNROUTED, "vhost": VHOST, "destination": UNROUTED,
            "destination_type": "queue", "routing_key": "", "arguments": {}} in defs["bindings"]


def test_alternate_exchange_policy_matches_event_exchanges_only(defs):
    (policy,) = defs["policies"]
    assert policy["apply-to"] == "exchanges"
    assert policy["definition"] == {"alternate-exchange": UNROUTED}
    assert policy["vhost"] == VHOST
    pattern = re.compile(policy["pattern"])
    assert pattern.search("leads.events")
    assert pattern.search("bridge.events")
    assert not pattern.search(UNROUTED)
    assert not pattern.search("leads.events.extra")


def test_classic_queues_have_no_queue_type(defs):
    assert all("x-queue-type" not in q["arguments"] for q in defs["queues"])


def test_quorum_profile_makes_every_queue_quorum():
    with nameko.config.patch({"QUEUE_TYPE": "quorum"}):
        defs = definitions(VHOST)
    assert defs["queues"]
    for q in defs["queues"]:
        assert q["arguments"]["x-queue-type"] == "quorum", q["name"]
    # retry queues keep their own arguments beside the queue type
    retry = next(q for q in defs["queues"] if ".retry." in q["name"])
    assert "x-message-ttl" in retry["arguments"]


def test_queue_arguments_are_not_shared_between_queues():
    with nameko.config.patch({"QUEUE_TYPE": "quorum"}):
        defs = definitions(VHOST)
    args = [q["arguments"] for q in defs["queues"]]
    assert len({id(a) for a in args}) == len(args)


def test_vhost_is_applied_everywhere():
    defs = definitions("/test_jiading")
    for kind in ("exchanges", "queues", "bindings", "policies"):
        assert {i["vhost"] for i in defs[kind]} == {"/test_jiading"}


def test_module_constants():
    assert topology.UNROUTED == "liandong.unrouted"

"""The toolkit's delivery guarantees on a real broker and database, with an in-process service:
inbox (a redelivered event is applied once), bounded retries then parking with the error,
invalid and undecodable messages parked at once without a crash, and operator replay."""

import json
import uuid

import pytest
from kombu import Connection, Exchange, Producer
from nameko import config
from nameko.containers import ServiceContainer
from nameko.testing.services import entrypoint_waiter
from sqlalchemy import Column, MetaData, String, Table, create_engine, func, insert, select, text
from support import TEST_SITE, wait_for

from contracts.envelope import Event
from contracts.registry import load_all
from liandong import provision
from services.common import parking, topology
from services.common.db import Database
from services.common.entrypoints import event_handler
from services.common.metrics import EVENTS_HANDLED
from services.common.tables import inbox_table, outbox_table

pytestmark = pytest.mark.integration

PLACE = "toolkit"  # its own vhost and database
QUEUE = "evt-leads-lead.submitted--probe.on_submitted"
probe = MetaData(schema="probe")
applied = Table("applied", probe, Column("event_id", String(36), primary_key=True),
                Column("description", String(200)))
outbox_table(probe)
inbox_table(probe)
CALLS: list[str] = []
FAILING = {"on": True}



class ProbeService:
    name = "probe"
    db = Database(probe)

    @event_handler("leads", "lead.submitted")
    def on_submitted(self, event):
        CALLS.append(event.id)
        if FAILING["on"] and event.data["description"].startswith("fail"):
            raise RuntimeError(f"boom on {event.id}")
        self.db.session.execute(insert(applied).values(event_id=event.id,
                                                       description=event.data["description"]))


@pytest.fixture(scope="module")
def probe_service():
    site = TEST_SITE
    cfg = {"AMQP_URI": site.amqp_uri(PLACE), "DATABASE_URL": site.database_url(PLACE),
           "CITY": "taicang", "RETRY_DELAYS_MS": "50,100,150", "OUTBOX_SWEEP_SECONDS": 0.5,
           "OUTBOX_GRACE_SECONDS": 0}
    subscription = load_all().subscribe("probe", "on_submitted", "leads", "lead.submitted")
    with config.patch(cfg):
        provision.drop_city(site, PLACE)
        provision.ensure_vhost(site, PLACE)
        topology.apply(site.management_url(), site.vhost(PLACE))
        provision.ensure_database(site, PLACE)
        engine = create_engine(site.database_url(PLACE))
        with engine.begin() as conn:
            conn.execute(text("CREATE SCHEMA IF NOT EXISTS probe"))
            probe.create_all(conn)
        container = ServiceContainer(ProbeService)
        container.start()
        yield container, engine
        container.stop()
        engine.dispose()
    load_all().unsubscribe(subscription)


def _event(description: str) -> dict:
    from datetime import UTC, datetime

    return Event(type="lead.submitted", version=1, source="taicang/leads", city="taicang",
                 subject=str(uuid.uuid4()), data={
                     "lead_id": uuid.uuid4(), "city": "taicang", "squad": "taicang-chengxiang",
                     "status": "routed", "category": "exposed_garbage",
                     "description": description, "location": {"lon": 121.1, "lat": 31.45},
                     "occurred_at": datetime.now(UTC), "source_org": "probe",
                     "source_ref": "r"}).to_wire()


def _publish(body, **kwargs):
    with Connection(TEST_SITE.amqp_uri(PLACE)) as conn:
        Producer(conn.channel()).publish(
            body, exchange=Exchange("leads.events", type="topic", durable=True),
            routing_key="lead.submitted", delivery_mode=2, **kwargs)


def _parked() -> list:
    out = []
    with Connection(TEST_SITE.amqp_uri(PLACE)) as conn:
        channel = conn.channel()
        while (m := channel.basic_get(f"{QUEUE}.parked", no_ack=False)) is not None:
            out.append(m)
        for m in out:  # put them back for later tests
            channel.basic_reject(m.delivery_tag, requeue=True)
    return out


def _count(engine, sql, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def _applied(engine, event_id) -> int:
    return _count(engine, "SELECT count(*) FROM probe.applied WHERE event_id = :e", e=event_id)


def _inbox(engine, event_id) -> int:
    return _count(engine, "SELECT count(*) FROM probe.inbox WHERE event_id = :e", e=event_id)


def test_redelivered_event_is_applied_once(probe_service):
    container, engine = probe_service
    body = _event("once")
    with entrypoint_waiter(container, "on_submitted"):
        _publish(body)
    before = EVENTS_HANDLED.labels("lead.submitted", "on_submitted", "duplicate")._value.get()
    with entrypoint_waiter(container, "on_submitted"):
        _publish(body)  # the broker redelivers, or a relay publishes twice: same event id
    assert _applied(engine, body["id"]) == 1
    assert _inbox(engine, body["id"]) == 1
    after = EVENTS_HANDLED.labels("lead.submitted", "on_submitted", "duplicate")._value.get()
    assert after == before + 1
    assert CALLS.count(body["id"]) == 1  # delivered twice; the handler body ran once


def test_failing_handler_is_retried_then_parked_with_the_error(probe_service):
    container, engine = probe_service
    body = _event("fail: poison")
    _publish(body)
    parked = wait_for(lambda: [m for m in _parked()
                               if json.loads(m.body)["id"] == body["id"]],
                      what="the failing event to be parked")[0]
    headers = parked.headers
    assert headers["x-liandong-reason"] == "handler_failed"
    assert headers["x-liandong-attempts"] == 4  # first try + 3 retries
    assert "boom" in headers["x-liandong-error"]
    assert CALLS.count(body["id"]) == 4
    # the failed attempts applied nothing, and their inbox claims rolled back with them
    assert _applied(engine, body["id"]) == 0
    assert _inbox(engine, body["id"]) == 0


def test_invalid_and_undecodable_messages_are_parked_and_the_service_keeps_going(probe_service):
    container, engine = probe_service
    invalid = _event("invalid")
    del invalid["data"]["category"]
    calls_before = len(CALLS)
    _publish(invalid)
    _publish(b"\xff\xfe{not json", content_type="application/json", content_encoding="utf-8")
    reasons = wait_for(lambda: (lambda r: r if {"invalid", "undecodable"} <= set(r) else None)(
        [m.headers["x-liandong-reason"] for m in _parked()]), what="both to be parked")
    assert {"invalid", "undecodable"} <= set(reasons)
    invalid_msg = next(m for m in _parked() if m.headers["x-liandong-reason"] == "invalid")
    assert "category" in invalid_msg.headers["x-liandong-error"]
    assert len(CALLS) == calls_before  # the handler never saw them
    good = _event("after the poison")
    with entrypoint_waiter(container, "on_submitted"):
        _publish(good)
    assert _applied(engine, good["id"]) == 1


def test_operator_lists_and_replays_parked_messages(probe_service):
    container, engine = probe_service
    listed = parking.list_parked(TEST_SITE.management_url(), TEST_SITE.vhost(PLACE))
    assert {"handler_failed", "invalid", "undecodable"} <= {i["reason"] for i in listed}
    failed = next(i for i in listed if i["reason"] == "handler_failed")
    assert failed["queue"] == QUEUE and "boom" in failed["error"]

    FAILING["on"] = False  # the bug is fixed; replay
    moved = parking.replay(TEST_SITE.amqp_uri(PLACE), QUEUE, 100)
    assert moved >= 3
    wait_for(lambda: _count(engine, "SELECT count(*) FROM probe.applied "
                                    "WHERE description = 'fail: poison'") == 1,
             what="the replayed event to be applied")
    # the invalid and undecodable ones are parked again: replay cannot make them valid
    wait_for(lambda: {"invalid", "undecodable"} <= {m.headers["x-liandong-reason"]
                                                    for m in _parked()},
             what="invalid messages parked again")


def test_outbox_relay_publishes_committed_rows(probe_service):
    """Rows committed by something else (a crashed worker) are swept out by the relay."""
    container, engine = probe_service
    body = _event("swept")
    outbox = probe.tables["probe.outbox"]
    with engine.begin() as conn:
        conn.execute(insert(outbox).values(
            event_id=body["id"], type=body["type"], version=1, exchange="leads.events",
            subject=body["subject"], trace_id=body["trace_id"], body=body))
    # no worker published it: the running service's sweep must (grace 0 in this test)
    wait_for(lambda: _applied(engine, body["id"]) == 1)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox).where(
            outbox.c.published_at.is_(None))).scalar() == 0

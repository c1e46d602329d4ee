"""A case event that breaks its contract is parked with the error by the toolkit; supervision
stores nothing for it and goes on with the next one."""

import uuid

import pytest
from kombu import Connection, Exchange, Producer
from support import TEST_SITE, deadline, open_case, supervision_of, wait_for

from services.common import parking

pytestmark = pytest.mark.integration


def test_an_invalid_case_event_is_parked_and_changes_nothing(platform):
    with platform.observe("taicang", "cases.events", "case.opened") as events:
        case = open_case(platform)
        good = events.wait(lambda e: e["subject"] == case["id"])[0]
    bad = {**good, "id": str(uuid.uuid4()), "subject": str(uuid.uuid4())}
    bad["data"] = {**good["data"], "case": {**good["data"]["case"], "case_id": bad["subject"],
                                            "status": "exploded"}}
    with Connection(TEST_SITE.amqp_uri("taicang")) as conn:
        Producer(conn.channel()).publish(
            bad, exchange=Exchange("cases.events", type="topic", durable=True),
            routing_key="case.opened", delivery_mode=2)
    queue = "evt-cases-case.opened--supervision.on_case_opened"
    # (the bridge, which also reads case.opened, parks its copy on bridge.send.parked)
    parked = wait_for(lambda: [p for p in parking.list_parked(
        TEST_SITE.management_url(), TEST_SITE.vhost("taicang"), 100)
        if p["queue"] == queue and p["reason"] == "invalid"
        and bad["id"] in (p["payload"] or "")],
        what="the invalid case event to be parked")
    assert "status" in parked[0]["error"]
    assert platform.scalar("taicang", "SELECT count(*) FROM supervision.supervised_cases "
                                      "WHERE case_id = :c", c=bad["subject"]) == 0
    # the service goes on: the next case is supervised as usual
    other = open_case(platform)
    assert deadline(supervision_of(platform, other["id"], lambda lp: deadline(lp, "response")),
                    "response")["status"] == "pending"

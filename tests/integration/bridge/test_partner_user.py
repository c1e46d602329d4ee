"""The user a partner's shovel logs in as may only write to `bridge.inbound` in our vhost."""

import uuid

import pytest
from kombu import Connection, Exchange, Producer, Queue
from support import TEST_SITE

from services.bridge import links
from services.common.topology import management_session

pytestmark = pytest.mark.integration


def _partner_uri(password: str) -> str:
    from urllib.parse import quote

    user = links.bridge_user(TEST_SITE.vhost("taicang"))
    return (f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{TEST_SITE.rabbit_host}:"
            f"{TEST_SITE.rabbit_port}/{quote(TEST_SITE.vhost('jiading'), safe='')}")


@pytest.fixture
def taicang_user_password(platform):
    """Give Taicang's bridge user a known password for this test (the shovels keep theirs
    until `liandong bridge link` runs again, so put the links back afterwards)."""
    password = uuid.uuid4().hex
    user = links.bridge_user(TEST_SITE.vhost("taicang"))
    session, base = management_session(TEST_SITE.management_url())
    session.put(f"{base}/api/users/{user}", json={"password": password, "tags": ""},
                timeout=10).raise_for_status()
    yield password
    from liandong import provision

    provision.link_cities(TEST_SITE, ("taicang", "jiading"))


def test_the_partner_user_writes_to_bridge_inbound_and_nothing_else(taicang_user_password):
    with Connection(_partner_uri(taicang_user_password)) as conn:
        Producer(conn.channel()).publish(
            {"probe": True}, exchange=Exchange("bridge.inbound", type="fanout", durable=True),
            routing_key="", delivery_mode=2, declare=[])  # allowed: its one permission
    for forbidden in (
        lambda ch: Producer(ch).publish({"x": 1}, exchange="leads.events", routing_key="x",
                                        declare=[]),
        lambda ch: Queue("bridge.inbound", no_declare=True)(ch).get(),  # read
        lambda ch: Queue(f"evil-{uuid.uuid4().hex[:6]}", durable=False)(ch).declare(),  # conf
    ):
        with Connection(_partner_uri(taicang_user_password)) as conn:
            channel = conn.channel()
            with pytest.raises(Exception) as refused:
                forbidden(channel)
                conn.drain_events(timeout=1)  # an async channel error arrives here
            assert "ACCESS_REFUSED" in str(refused.value) or "403" in str(refused.value)

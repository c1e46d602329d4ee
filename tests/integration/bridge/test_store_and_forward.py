"""Jiading's gateway and bridge are down while Taicang hands over 1,000 leads located in
Jiading; once they are back, all 1,000 arrive, each exactly once, and Taicang sees each received."""

import math
from datetime import UTC, datetime, timedelta

import eventlet
import pytest
import requests
from support import TEST_SITE, lead_body, wait_for

from liandong import platform as launcher
from services.common.geo import default_city_locator

pytestmark = pytest.mark.integration
N = 1000


def _points_in_jiading(n: int) -> list[tuple[float, float]]:
    """n points in Jiading at least 100 m apart (no two merge as duplicates)."""
    locator, points = default_city_locator(), []
    lon0, lat0, step = 121.16, 31.36, 0.0011
    side = math.ceil(math.sqrt(n * 2))
    for i in range(side * side):
        p = (lon0 + (i % side) * step * 1.2, lat0 + (i // side) * step)
        if locator.city_at(*p) == "jiading":
            points.append(p)
            if len(points) == n:
                return points
    raise AssertionError("not enough points")


def _queue_depth(vhost: str, queue: str) -> int:
    from kombu import Connection

    with Connection(TEST_SITE.amqp_uri(vhost)) as conn:
        return conn.default_channel.queue_declare(queue, passive=True).message_count


def test_thousand_handovers_survive_the_partner_being_down(platform):
    down = [platform.process("jiading", "bridge"), platform.process("jiading", "gateway")]
    launcher.stop(down)
    for p in down:
        platform.procs.remove(p)
    try:
        source = platform.client("taicang", "Store Forward Sanitation 环卫", "source")
        tag = f"SF-{id(down)}"
        # seen six hours ago: no lead of another test (seen minutes ago, maybe at one of
        # these points) is within the 30-minute dedup window, so none of these merges
        seen = (datetime.now(UTC) - timedelta(hours=6)).isoformat()
        bodies = [lead_body(point=p, category="illegal_dumping", source_ref=f"{tag}-{i:04d}",
                            occurred_at=seen)
                  for i, p in enumerate(_points_in_jiading(N))]
        pool = eventlet.GreenPool(16)
        results = list(pool.imap(lambda b: source.post("/api/v1/leads", b), bodies))
        assert [r.status_code for r in results] == [201] * N
        ids = {r.json()["id"] for r in results}
        assert all(r.json()["status"] == "handed_over" for r in results)

        # Everything left Taicang (signed, in bundles) and waits in Jiading's broker while its
        # bridge is down.
        wait_for(lambda: platform.scalar(
            "taicang", "SELECT count(*) FROM bridge.outbound WHERE type = 'lead.handed_over' "
                       f"AND subject IN ({','.join(repr(i) for i in ids)})") == N,
            timeout=60, what="the 1,000 handovers signed and sent by Taicang's bridge")
        wait_for(lambda: _queue_depth("taicang", "bridge.outbound.jiading") == 0
                 and _queue_depth("jiading", "bridge.inbound") >= 1, timeout=60,
                 what="the bundles shovelled to Jiading's broker")
        with pytest.raises(requests.ConnectionError):
            requests.get(platform.url("jiading") + "/healthz", timeout=2)
    finally:
        platform.restart_fresh("jiading", "bridge")
        platform.restart_fresh("jiading", "gateway")

    in_list = ",".join(f"'{i}'" for i in ids)
    wait_for(lambda: platform.scalar("jiading", "SELECT count(*) FROM leads.leads WHERE "
                                                f"origin_lead_id IN ({in_list})") == N,
             timeout=120, interval=0.5, what="all 1,000 leads in Jiading")
    assert platform.scalar("jiading", "SELECT count(DISTINCT origin_lead_id) FROM leads.leads "
                                      f"WHERE origin_lead_id IN ({in_list})") == N
    # ... and each receipt came back: Taicang sees every one of them received
    wait_for(lambda: platform.scalar("taicang", "SELECT count(*) FROM leads.leads WHERE "
                                                f"id IN ({in_list}) AND partner_status "
                                                "= 'received'") == N,
             timeout=120, interval=0.5, what="Taicang to see all 1,000 received")
    assert platform.scalar("jiading", "SELECT count(*) FROM leads.leads WHERE "
                                      f"origin_lead_id IN ({in_list})") == N  # still once

"""The leads service dies between committing a lead and publishing its event: the event still
goes out, once, when the service comes back (transactional outbox)."""

import pytest
from support import TEST_SITE, CityPlatform, lead_body, wait_for

pytestmark = pytest.mark.integration

CITY = "changshu"
POINT = (120.7500, 31.6500)  # 常熟 虞山街道


@pytest.fixture(scope="module")
def changshu():
    p = CityPlatform(TEST_SITE, (CITY,), extra_env={"RPC_TIMEOUT": "3"})
    p.start()
    yield p
    p.stop()


def test_event_is_published_once_after_a_crash_between_commit_and_publish(changshu):
    source = changshu.client(CITY, "常熟物业 Test Changshu Property", "source")
    changshu.restart(CITY, "leads", {"LIANDONG_FAULT": "crash_after_commit", "RPC_TIMEOUT": "3"})
    crashing = changshu.process(CITY, "leads")
    body = lead_body(point=POINT)
    with changshu.observe(CITY) as events:
        r = source.post("/api/v1/leads", body)
        assert r.status_code == 503  # the caller is told to retry; nothing half-done is visible
        assert crashing.proc.wait(timeout=10) == 17  # died right after the commit
        lead_id = changshu.scalar(CITY, "SELECT id FROM leads.leads WHERE source_ref = :r",
                                  r=body["source_ref"])
        assert lead_id is not None, "the lead was committed before the crash"
        assert changshu.scalar(CITY, "SELECT count(*) FROM leads.outbox WHERE subject = :s "
                                     "AND published_at IS NULL", s=str(lead_id)) == 1
        assert events.drain() == []  # nothing went out before the crash

        changshu.procs.remove(crashing)
        changshu.restart_fresh(CITY, "leads")  # back without the fault
        wait_for(lambda: [e for e in events.drain() if e["subject"] == str(lead_id)],
                 what="the outbox event after restart")
        wait_for(lambda: changshu.scalar(
            CITY, "SELECT count(*) FROM leads.outbox WHERE subject = :s AND published_at "
                  "IS NOT NULL", s=str(lead_id)) == 1, what="the row marked sent")
        # a second sweep finds nothing left: still exactly one event for the lead
        assert [e["type"] for e in events.drain() if e["subject"] == str(lead_id)] == [
            "lead.submitted"]

    # the client's retry is safe: same source_ref, same lead, 200
    again = source.post("/api/v1/leads", body)
    assert again.status_code == 200 and again.json()["id"] == str(lead_id)

"""Each notice is issued exactly once: with two supervision replicas scanning the same table,
when a replica is killed mid-work and restarted, and when a case event is delivered again."""

import uuid

import pytest
from kombu import Connection, Exchange, Producer
from sqlalchemy import text
from support import TEST_SITE, deadline, open_case, supervision_of, wait_for

from liandong import platform as launcher

pytestmark = pytest.mark.integration

MARK = "test-replicas"
SEED = text(f"""
INSERT INTO supervision.deadlines (case_id, case_no, category, kind, seq, squad, started_at,
    limit_text, limit_hours, due_at, status, steps, steps_done, next_at)
SELECT gen_random_uuid(), 'TEST-' || g, 'exposed_garbage', 'response', 1, '{MARK}', now(),
    '1 working_hours', 1, t, 'pending',
    jsonb_build_array(jsonb_build_object('kind', 'order', 'level', 1, 'at',
        to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'))), 0, t
FROM (SELECT g, now() + make_interval(secs => g * :spacing) AS t
      FROM generate_series(1, :n) AS g) AS due
""")


@pytest.fixture(scope="module")
def two_replicas(platform):
    """A second supervision process for Taicang, ticking faster than the first."""
    second = platform.add_replica("taicang", "supervision", 1,
                                  {"SUPERVISION_TICK_SECONDS": "0.3"})
    yield platform
    launcher.stop([second])
    platform.procs.remove(second)
    with platform.engine("taicang").begin() as conn:
        conn.execute(text(f"DELETE FROM supervision.notices WHERE squad = '{MARK}'"))
        conn.execute(text(f"DELETE FROM supervision.deadlines WHERE squad = '{MARK}'"))


def _seed(platform, n: int, spacing_s: float) -> None:
    with platform.engine("taicang").begin() as conn:
        conn.execute(SEED, {"n": n, "spacing": spacing_s})


def _issued(platform) -> tuple[int, int, int, int]:
    """(deadlines seeded, deadlines done, notices, distinct replicas that issued them)"""
    with platform.engine("taicang").connect() as conn:
        return conn.execute(text(f"""
            SELECT (SELECT count(*) FROM supervision.deadlines WHERE squad = '{MARK}'),
                   (SELECT count(*) FROM supervision.deadlines WHERE squad = '{MARK}'
                      AND steps_done = 1 AND next_at IS NULL),
                   (SELECT count(*) FROM supervision.notices WHERE squad = '{MARK}'),
                   (SELECT count(DISTINCT issued_by) FROM supervision.notices
                      WHERE squad = '{MARK}')""")).one()


def test_two_replicas_issue_each_notice_once(two_replicas):
    platform = two_replicas
    before = _issued(platform)
    with platform.observe("taicang", "supervision.events", "supervision.notice_issued") as ev:
        _seed(platform, 200, 0.02)  # 200 orders falling due over 4 s
        wait_for(lambda: (lambda s: s[1] == s[0])(_issued(platform)), timeout=30,
                 what="every seeded deadline processed")
        seeded, done, issued, replicas = _issued(platform)
        assert issued - before[2] == 200 and done == seeded
        events = ev.wait(lambda e: e["data"]["squad"] == MARK, timeout=15)
        wait_for(lambda: len([e for e in ev.drain() if e["data"]["squad"] == MARK]) >= 200,
                 what="200 notice events")
    ids = [e["data"]["notice_id"] for e in ev.seen if e["data"]["squad"] == MARK]
    assert len(ids) == len(set(ids)) == 200, "one event per notice, none twice"
    assert replicas == 2, "both replicas issued some of them"
    assert events


def test_a_replica_killed_mid_work_issues_nothing_twice(two_replicas):
    platform = two_replicas
    first = platform.process("taicang", "supervision")
    before = _issued(platform)
    _seed(platform, 150, 0.02)
    wait_for(lambda: _issued(platform)[2] > before[2], what="some notices issued")
    first.proc.kill()  # SIGKILL: its open transaction rolls back, its locks go
    first.proc.wait()
    platform.procs.remove(first)
    platform.restart_fresh("taicang", "supervision")
    wait_for(lambda: (lambda s: s[1] == s[0])(_issued(platform)), timeout=30,
             what="every seeded deadline processed after the restart")
    seeded, done, issued, _ = _issued(platform)
    assert issued - before[2] == 150


def _publish(body: dict) -> None:
    with Connection(TEST_SITE.amqp_uri("taicang")) as conn:
        Producer(conn.channel()).publish(
            body, exchange=Exchange("cases.events", type="topic", durable=True),
            routing_key=body["type"], delivery_mode=2)


def test_a_redelivered_or_replayed_case_event_sets_no_second_deadline(two_replicas):
    platform = two_replicas
    with platform.observe("taicang", "cases.events", "case.opened") as cases_ev:
        case = open_case(platform)
        opened = cases_ev.wait(lambda e: e["subject"] == case["id"])[0]
    supervision_of(platform, case["id"], lambda lp: deadline(lp, "response"))
    with platform.observe("taicang", "supervision.events", "supervision.#") as sup_ev:
        _publish(opened)  # the same event again: the inbox drops it
        replay = {**opened, "id": str(uuid.uuid4())}
        _publish(replay)  # under a new id: an old snapshot (version 1) changes nothing
        wait_for(lambda: platform.scalar(
            "taicang", "SELECT count(*) FROM supervision.inbox WHERE event_id = :e",
            e=replay["id"]) == 1, what="the replay handled")
        assert [e for e in sup_ev.drain() if e["subject"] == case["id"]] == []
    assert platform.scalar("taicang", "SELECT count(*) FROM supervision.deadlines "
                                      "WHERE case_id = :c", c=case["id"]) == 1

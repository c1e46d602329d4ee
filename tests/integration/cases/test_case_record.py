"""The tamper-evident record (区块链+公证): entries with proofs per case, verification of the whole
chain by the operator command, a row edited in PostgreSQL is caught, anchors are published."""

import pytest
from sqlalchemy import text
from support import (
    EVIDENCE,
    TEST_SITE,
    case_roles,
    open_case,
    supervision_of,
    wait_for,
)

from liandong import cli

pytestmark = pytest.mark.integration

TEST_ENV = {"LIANDONG_DB_PREFIX": TEST_SITE.db_prefix,
            "LIANDONG_VHOST_PREFIX": TEST_SITE.vhost_prefix,
            "LIANDONG_PORT_OFFSET": str(TEST_SITE.port_offset)}


def verify(monkeypatch, capsys, city="taicang") -> tuple[int, str]:
    for k, v in TEST_ENV.items():
        monkeypatch.setenv(k, v)
    code = cli.main(["record", "verify", "--city", city])
    return code, capsys.readouterr().out


def walked_case(platform) -> dict:
    roles = case_roles(platform)
    case = open_case(platform)
    roles["squad"].post(f"/api/v1/cases/{case['id']}/accept", {"note": "马上处置"})
    roles["squad"].post(f"/api/v1/cases/{case['id']}/feedback", {
        "summary": "垃圾已清运 cleared", "evidence": EVIDENCE})
    r = roles["supervisor"].post(f"/api/v1/cases/{case['id']}/evaluate", {"result": "pass"})
    assert r.json()["status"] == "closed"
    supervision_of(platform, case["id"],
                   lambda loop: all(d["status"] != "pending" for d in loop["deadlines"])
                   and len(loop["deadlines"]) == 2)
    return case


def test_every_case_and_supervision_step_is_in_the_record_with_proofs(platform):
    case = walked_case(platform)
    bureau = case_roles(platform)["bureau"]

    def kinds():  # response and disposal deadlines, each set and closed
        record = bureau.get(f"/api/v1/cases/{case['id']}/record").json()
        found = [e["kind"] for e in record["entries"]]
        return record if (found.count("supervision.deadline_set") == 2
                          and found.count("supervision.deadline_closed") == 2) else None

    record = wait_for(kinds, what="the supervision steps in the record")
    entries = record["entries"]
    assert [e["kind"] for e in entries if e["kind"].startswith("case.")] == [
        "case.opened", "case.accept", "case.feedback", "case.evaluate", "case.closed"]
    assert {"supervision.deadline_set", "supervision.deadline_closed"} <= {
        e["kind"] for e in entries}
    assert all(e["proof"]["valid"] and e["proof"]["prev_link"] for e in entries)
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    first = entries[0]
    assert first["proof"]["canonical"].startswith('{"at":"')
    assert f'"seq":{first["seq"]}' in first["proof"]["canonical"]
    assert record["head"]["seq"] >= entries[-1]["seq"]
    assert "sha256" in record["algorithm"]
    # the history points at each step's entry
    history = bureau.get(f"/api/v1/cases/{case['id']}").json()["history"]
    assert {h["detail"]["record_seq"] for h in history} == {e["seq"] for e in entries}


def test_verify_names_the_first_edited_entry(platform, monkeypatch, capsys):
    case = walked_case(platform)
    code, out = verify(monkeypatch, capsys)
    assert code == 0 and "record intact" in out, out
    engine = platform.engine("taicang")
    with engine.begin() as conn:
        seq, payload = conn.execute(text(
            "SELECT seq, payload::text FROM cases.record_entries WHERE case_id = :c "
            "AND kind = 'case.feedback'"), {"c": case["id"]}).one()
        conn.execute(text("UPDATE cases.record_entries SET payload = "
                          "replace(payload::text, 'cleared', 'never cleaned')::json "
                          "WHERE seq = :s"), {"s": seq})
    try:
        code, out = verify(monkeypatch, capsys)
        assert code == 1
        assert f"BROKEN at entry {seq}:" in out and "edited" in out, out
        record = case_roles(platform)["bureau"].get(f"/api/v1/cases/{case['id']}/record").json()
        bad = next(e for e in record["entries"] if e["seq"] == seq)
        assert bad["proof"]["valid"] is False
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE cases.record_entries SET payload = CAST(:p AS json) "
                              "WHERE seq = :s"), {"p": payload, "s": seq})
    code, out = verify(monkeypatch, capsys)
    assert code == 0, out


def test_verify_catches_a_deleted_entry(platform, monkeypatch, capsys):
    case = walked_case(platform)
    engine = platform.engine("taicang")
    with engine.begin() as conn:
        row = conn.execute(text("SELECT * FROM cases.record_entries WHERE case_id = :c "
                                "ORDER BY seq LIMIT 1"), {"c": case["id"]}).mappings().one()
        conn.execute(text("DELETE FROM cases.record_entries WHERE seq = :s"), {"s": row["seq"]})
    try:
        code, out = verify(monkeypatch, capsys)
        assert code == 1 and f"BROKEN at entry {row['seq']}:" in out, out
    finally:
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO cases.record_entries (seq, case_id, kind, payload, at, prev_hash, "
                "hash, written_at) VALUES (:seq, :case_id, :kind, CAST(:payload AS json), :at, "
                ":prev_hash, :hash, :written_at)"),
                {**row, "payload": __import__("json").dumps(row["payload"])})
    assert verify(monkeypatch, capsys)[0] == 0


def test_the_chain_head_is_anchored_as_an_event(platform):
    with platform.observe("taicang", "cases.events", "evidence.anchored") as events:
        case = open_case(platform)
        head = case_roles(platform)["bureau"].get(f"/api/v1/cases/{case['id']}/record").json()
        anchor = events.wait(lambda e: e["data"]["seq"] >= head["head"]["seq"], timeout=20,
                             what="an anchor covering the new case")[0]
    data = anchor["data"]
    assert data["city"] == "taicang" and len(data["hash"]) == 64
    assert data["previous_seq"] < data["seq"]
    assert anchor["subject"] == "record:taicang" and anchor["source"] == "taicang/cases"
    stored = platform.scalar("taicang", "SELECT hash FROM cases.record_entries WHERE seq = :s",
                             s=data["seq"])
    assert stored == data["hash"]  # the anchor is the hash of that entry

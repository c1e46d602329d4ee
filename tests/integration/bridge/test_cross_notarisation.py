"""Cross-notarisation: Jiading's record anchors reach Taicang through the bridge and are kept
there. If Jiading rewrites its history consistently — every hash after the change recomputed,
so that its own chain still verifies — the anchors Taicang holds no longer match:
`liandong record verify --city jiading --against-partners` names the rewritten entry."""

import json

import pytest
from sqlalchemy import text
from support import EVIDENCE, TEST_SITE, case_roles, open_case, wait_for

from liandong import cli
from services.cases import chain

pytestmark = pytest.mark.integration

ENV = {"LIANDONG_DB_PREFIX": TEST_SITE.db_prefix, "LIANDONG_VHOST_PREFIX": TEST_SITE.vhost_prefix,
       "LIANDONG_PORT_OFFSET": str(TEST_SITE.port_offset)}


def _verify(monkeypatch, capsys) -> tuple[int, str]:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    code = cli.main(["record", "verify", "--city", "jiading", "--against-partners"])
    return code, capsys.readouterr().out


def _rewrite_consistently(engine, seq: int) -> list:
    """Change entry `seq`'s payload and recompute every hash from it to the head. Returns the
    original rows, to put them back."""
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT seq, prev_hash, case_id, kind, payload, at, hash "
                                 "FROM cases.record_entries WHERE seq >= :s ORDER BY seq"),
                            {"s": seq}).all()
        prev = rows[0].prev_hash
        for r in rows:
            payload = dict(r.payload, note="rewritten") if r.seq == seq else r.payload
            digest = chain.entry_hash(r.seq, prev, r.case_id, r.kind, payload, r.at)
            conn.execute(text("UPDATE cases.record_entries SET payload = CAST(:p AS jsonb), "
                              "prev_hash = :ph, hash = :h WHERE seq = :s"),
                         {"p": json.dumps(payload), "ph": prev, "h": digest,
                          "s": r.seq})
            prev = digest
        conn.execute(text("UPDATE cases.record_head SET hash = :h WHERE chain = 'jiading'"),
                     {"h": prev})
    return rows


def _restore(engine, rows) -> None:
    with engine.begin() as conn:
        for r in rows:
            conn.execute(text("UPDATE cases.record_entries SET payload = CAST(:p AS jsonb), "
                              "prev_hash = :ph, hash = :h WHERE seq = :s"),
                         {"p": json.dumps(r.payload), "ph": r.prev_hash, "h": r.hash,
                          "s": r.seq})
        conn.execute(text("UPDATE cases.record_head SET hash = :h WHERE chain = 'jiading'"),
                     {"h": rows[-1].hash})


def test_a_consistent_rewrite_is_caught_by_the_partners_anchors(platform, monkeypatch, capsys):
    roles = case_roles(platform, "jiading")
    case = open_case(platform, city="jiading")
    roles["squad"].post(f"/api/v1/cases/{case['id']}/accept", {"note": "处置"})
    roles["squad"].post(f"/api/v1/cases/{case['id']}/feedback", {"summary": "已清理",
                                                                "evidence": EVIDENCE})
    head = platform.scalar("jiading", "SELECT seq FROM cases.record_head")
    wait_for(lambda: (platform.scalar("taicang", "SELECT max(seq) FROM bridge.anchors "
                                                 "WHERE partner = 'jiading'") or 0) >= head,
             timeout=30, what="Jiading's latest anchor kept by Taicang")

    code, out = _verify(monkeypatch, capsys)
    assert code == 0, out
    assert "record intact" in out and "match" in out

    anchored = platform.scalar("taicang", "SELECT max(seq) FROM bridge.anchors "
                                          "WHERE partner = 'jiading'")
    target = max(1, anchored - 1)
    original = _rewrite_consistently(platform.engine("jiading"), target)
    try:
        code, out = _verify(monkeypatch, capsys)
        assert "record intact" in out  # the rewrite is consistent: Jiading alone cannot tell
        assert code == 1
        assert f"entry {anchored} differs from the anchor taicang holds" in out
    finally:
        _restore(platform.engine("jiading"), original)
    code, out = _verify(monkeypatch, capsys)
    assert code == 0, out

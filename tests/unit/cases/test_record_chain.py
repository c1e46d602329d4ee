"""The hash chain of the tamper-evident record: canonical form, and verification naming the
first bad entry for every kind of tampering."""

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from services.cases import chain

T0 = datetime(2026, 11, 26, 1, 2, 3, 456789, tzinfo=UTC)


def build(n: int) -> list[chain.Entry]:
    entries, prev = [], chain.GENESIS
    for seq in range(1, n + 1):
        payload = chain.normalise({"case_no": "TC-2026-000001", "actor": "城厢镇中队",
                                   "step": seq, "lon": 121.1012, "at": T0})
        at = T0 + timedelta(seconds=seq)
        h = chain.entry_hash(seq, prev, "c1", f"case.step{seq}", payload, at)
        entries.append(chain.Entry(seq, prev, "c1", f"case.step{seq}", payload, at, h))
        prev = h
    return entries


def test_canonical_form_is_sorted_compact_utf8_with_utc_microseconds():
    raw = chain.canonical(1, chain.GENESIS, "c1", "case.opened", {"b": 1, "a": "城厢"},
                          datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    assert raw == ('{"at":"2026-11-26T09:00:00.000000Z","case_id":"c1","kind":"case.opened",'
                   '"payload":{"a":"城厢","b":1},"prev_hash":"' + "0" * 64 + '","seq":1}'
                   ).encode("utf-8")
    assert chain.entry_hash(1, chain.GENESIS, "c1", "case.opened", {"b": 1, "a": "城厢"},
                            datetime(2026, 11, 26, 9, 0, tzinfo=UTC)) == hashlib.sha256(
        raw).hexdigest()
    # the same instant in another offset hashes the same
    from services.common.workcal import SHANGHAI

    assert chain.canonical(1, "x", None, "k", {}, datetime(2026, 11, 26, 17, 0, tzinfo=SHANGHAI)
                           ) == chain.canonical(1, "x", None, "k", {},
                                                datetime(2026, 11, 26, 9, 0, tzinfo=UTC))


def test_payload_survives_a_json_round_trip_unchanged():
    payload = chain.normalise({"x": 1e20, "y": [1, 2.5], "t": T0, "z": None})
    assert json.loads(json.dumps(payload)) == payload


def test_an_intact_chain_verifies():
    entries = build(5)
    result = chain.verify(entries, (5, entries[-1].hash))
    assert result.ok and result.entries == 5 and result.head_seq == 5
    assert chain.verify([], (0, chain.GENESIS)).ok


def test_an_edited_payload_is_named():
    entries = build(6)
    entries[3] = replace(entries[3], payload={**entries[3].payload, "actor": "someone else"})
    result = chain.verify(entries, (6, entries[-1].hash))
    assert not result.ok and result.bad_seq == 4 and "edited" in result.reason


def test_an_edited_payload_with_a_recomputed_hash_breaks_the_next_link():
    entries = build(6)
    e = replace(entries[2], kind="case.forged")
    entries[2] = replace(e, hash=e.recomputed())
    result = chain.verify(entries, (6, entries[-1].hash))
    assert not result.ok and result.bad_seq == 4 and "prev_hash" in result.reason


def test_a_removed_or_reordered_entry_is_named():
    entries = build(6)
    result = chain.verify(entries[:2] + entries[3:], (6, entries[-1].hash))
    assert (result.ok, result.bad_seq) == (False, 3)
    swapped = entries[:1] + [entries[2], entries[1]] + entries[3:]
    assert chain.verify(swapped).bad_seq == 2


def test_a_truncated_chain_or_edited_head_is_caught():
    entries = build(6)
    result = chain.verify(entries[:4], (6, entries[-1].hash))
    assert (result.ok, result.bad_seq) == (False, 5) and "head" in result.reason
    result = chain.verify(entries, (6, "f" * 64))
    assert not result.ok and result.bad_seq == 6

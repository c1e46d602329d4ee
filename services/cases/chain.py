"""The tamper-evident record (区块链+公证) as pure functions: canonical form, hashes, verification.

One hash chain per city: entry `seq` holds `prev_hash`, the hash of entry `seq - 1` (the first
holds `GENESIS`), and `hash = sha256(canonical({seq, prev_hash, case_id, kind, payload, at}))`
where `canonical` is JSON with sorted keys, no whitespace, UTF-8 (non-ASCII kept as is) and `at`
is UTC with microseconds (`2026-11-26T04:00:00.000000Z`). Changing any field of any entry, or
removing or reordering entries, breaks the recomputed chain at the first entry touched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
ALGORITHM = ("sha256 over canonical JSON of {seq, prev_hash, case_id, kind, payload, at}: "
             "sorted keys, no whitespace, UTF-8, at as UTC with microseconds")


def format_at(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalise(payload: Any) -> Any:
    """The payload as JSON reads it back (tuples become lists, datetimes and UUIDs strings)."""
    return json.loads(json.dumps(payload, default=_default, ensure_ascii=False))


def _default(value):
    if isinstance(value, datetime):
        return format_at(value)
    return str(value)


def canonical(seq: int, prev_hash: str, case_id: str | None, kind: str, payload: Any,
              at: datetime | str) -> bytes:
    body = {"seq": seq, "prev_hash": prev_hash,
            "case_id": None if case_id is None else str(case_id),
            "kind": kind, "payload": payload,
            "at": at if isinstance(at, str) else format_at(at)}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def entry_hash(seq: int, prev_hash: str, case_id: str | None, kind: str, payload: Any,
               at: datetime | str) -> str:
    return hashlib.sha256(canonical(seq, prev_hash, case_id, kind, payload, at)).hexdigest()


@dataclass(frozen=True)
class Entry:
    seq: int
    prev_hash: str
    case_id: str | None
    kind: str
    payload: Any
    at: datetime
    hash: str

    def recomputed(self) -> str:
        return entry_hash(self.seq, self.prev_hash, self.case_id, self.kind, self.payload,
                          self.at)


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    bad_seq: int | None = None
    reason: str | None = None


def verify(entries: Iterable[Entry], head: tuple[int, str] | None = None) -> Verification:
    """Walk the chain in seq order; name the first entry that does not hold. `head` is the
    stored chain head (seq, hash), which must be the last entry."""
    expected_seq, prev, count = 1, GENESIS, 0
    for e in entries:
        problem = None
        if e.seq != expected_seq:
            problem = f"expected entry {expected_seq}, found {e.seq} (missing or reordered)"
        elif e.prev_hash != prev:
            problem = "prev_hash does not match the hash of the entry before"
        elif e.recomputed() != e.hash:
            problem = "content does not match its hash (edited after it was written)"
        if problem:
            return Verification(False, count, expected_seq - 1, prev,
                                min(e.seq, expected_seq), problem)
        prev, expected_seq, count = e.hash, e.seq + 1, count + 1
    last_seq = expected_seq - 1
    if head is not None and (head[0], head[1]) != (last_seq, prev):
        bad = min(head[0], last_seq) + 1 if head[0] != last_seq else last_seq
        return Verification(False, count, last_seq, prev, bad,
                            f"chain head says {head[0]}/{head[1][:12]}…, entries end at "
                            f"{last_seq}/{prev[:12]}… (entries removed or head edited)")
    return Verification(True, count, last_seq, prev)

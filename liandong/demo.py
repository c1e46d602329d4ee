"""The demo day of DOMAIN.md (steps 1–5), played against the running gateways."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from liandong.demo_cases import _poll, follow_case
from liandong.demo_jointops import zero_hour_action
from liandong.demo_transport import night_truck
from liandong.settings import Site

DEMO_ORGS = [  # (city, organisation, roles)
    ("taicang", "太仓城厢物业公司 Chengxiang Property Co", ["source"]),
    ("taicang", "太仓智慧城管探头 Taicang Camera Analytics", ["source"]),
    ("taicang", "太仓环卫所 Taicang Sanitation Unit", ["source"]),
    ("taicang", "太仓市城管局 Taicang Bureau", ["bureau"]),
    ("taicang", "城厢镇中队 Chengxiang Squad", ["squad"]),
    ("jiading", "嘉定区城管局 Jiading Bureau", ["bureau"]),
    ("taicang", "太仓市城管局督查科 Taicang Supervision Office", ["supervisor"]),
    ("kunshan", "昆山市城管局 Kunshan Bureau", ["bureau"]),  # step 4: issues the truck's permit
    ("taicang", "太仓渣土车定位网关 Taicang GPS Gateway", ["device"]),  # step 4: GPS positions
    ("taicang", "太仓市联合整治办 Taicang Joint Operations Office", ["coordinator"]),  # step 5
    ("baoshan", "宝山区城管局 Baoshan Bureau", ["bureau"]),  # step 5: a partner bureau
]

# Near the 城厢镇 centre of Taicang, and a field in Jiading's 外冈镇 near the Taicang border.
TAICANG_SPOT = (121.1012, 31.4521)
JIADING_SPOT = (121.1630, 31.3790)


def ensure_keys(site: Site, keys_file: Path) -> dict[str, str]:
    """Create the demo organisations' keys once; later runs reuse them."""
    from sqlalchemy import create_engine

    from services.common.config import setting
    from services.gateway.keys import create_key

    keys = json.loads(keys_file.read_text()) if keys_file.exists() else {}
    missing = [(city, org, roles) for city, org, roles in DEMO_ORGS if org not in keys]
    if not missing:
        return keys
    for city, org, roles in missing:
        engine = create_engine(site.database_url(city))
        with engine.begin() as conn:
            _, key = create_key(conn, city, org, roles, setting("APIKEY_PEPPER"))
        engine.dispose()
        keys[org] = key
    keys_file.parent.mkdir(parents=True, exist_ok=True)
    keys_file.write_text(json.dumps(keys, ensure_ascii=False, indent=2))
    return keys


class Client:
    def __init__(self, base: str, key: str):
        self.base, self.s = base, requests.Session()
        self.s.headers["Authorization"] = f"Bearer {key}"

    def post(self, path: str, body: dict) -> requests.Response:
        return self.s.post(self.base + path, json=body, timeout=15)

    def put(self, path: str, body: dict) -> requests.Response:
        return self.s.put(self.base + path, json=body, timeout=15)

    def get(self, path: str, **params) -> requests.Response:
        return self.s.get(self.base + path, params=params or None, timeout=15)


def _spots(run_no: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """Each replay of the demo reports at a spot ~120 m from the previous runs' (a report at the
    same spot within 30 minutes would rightly be merged into the earlier run's lead)."""
    dx, dy = (run_no % 10) * 0.00125, (run_no // 10 % 10) * 0.0011
    return ((TAICANG_SPOT[0] + dx, TAICANG_SPOT[1] + dy),
            (JIADING_SPOT[0] + dx, JIADING_SPOT[1] - dy))


def next_run_number(counter: Path) -> int:
    n = int(counter.read_text()) + 1 if counter.exists() else 0
    counter.parent.mkdir(parents=True, exist_ok=True)
    counter.write_text(str(n))
    return n


def play(site: Site, keys: dict[str, str], out=print, run_no: int = 0) -> dict:
    tc = f"http://127.0.0.1:{site.gateway_port('taicang')}"
    names = [org for _, org, _ in DEMO_ORGS]
    prop, camera, sanitation, bureau = (Client(tc, keys[n]) for n in names[:4])
    run = uuid.uuid4().hex[:8]
    now = datetime.now(UTC).replace(microsecond=0)
    photo = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

    out("\n== 1. A property company in Taicang reports exposed garbage (暴露垃圾) ==")
    for attempt in range(100):
        taicang_spot, jiading_spot = _spots(run_no + attempt)
        r = prop.post("/api/v1/leads", {
            "source_ref": f"WY-{run}-{attempt:03d}", "category": "exposed_garbage",
            "description": "小区东门外垃圾堆放未清运 Garbage piled outside the east gate",
            "location": {"lon": taicang_spot[0], "lat": taicang_spot[1], "crs": "WGS84"},
            "address": "太仓市城厢镇 东门街",
            "occurred_at": (now - timedelta(minutes=12)).isoformat(),
            "evidence": [{"uri": f"https://evidence.example/{run}/1.jpg", "sha256": photo}],
        })
        first = r.json()
        if first.get("status") != "merged":
            break
        # an earlier replay reported at this spot within 30 minutes: report a little further
        out(f"   (spot taken by an earlier demo run: merged into {first['duplicate_of']}; "
            f"moving 120 m)")
    out(f"   {r.status_code} {first}")

    out("== 1b. A camera reports the same spot ten minutes later: merged, not duplicated ==")
    r = camera.post("/api/v1/leads", {
        "source_ref": f"CAM-{run}-0042", "category": "exposed_garbage",
        "description": "AI识别: 暴露垃圾", "occurred_at": (now - timedelta(minutes=2)).isoformat(),
        "location": {"lon": taicang_spot[0] + 0.0002, "lat": taicang_spot[1] + 0.0001},
        "camera": {"camera_id": "TC-CX-0042", "model": "garbage-v3", "confidence": 0.93},
    })
    merged = r.json()
    out(f"   {r.status_code} {merged}")

    out("== 2. Routed to the squad whose zone holds the point; Taicang's bureau accepts ==")
    r = bureau.post(f"/api/v1/leads/{first['id']}/decision",
                    {"decision": "accept", "reason": "城厢镇中队处置"})
    accepted = r.json()
    out(f"   {r.status_code} status={accepted.get('status')} squad={accepted.get('squad')}")
    for h in accepted.get("history", []):
        out(f"     {h['at']}  {h['action']:<17} {h['status']:<10} by {h['actor']}")
    case = follow_case(site, keys, first["id"], out)  # 2b, in liandong/demo_cases.py

    out("== 3. A sanitation unit reports illegal dumping at a point in Jiading: handed over ==")
    r = sanitation.post("/api/v1/leads", {
        "source_ref": f"HW-{run}-007", "category": "illegal_dumping",
        "description": "田边发现偷倒渣土 Muck dumped beside a field",
        "location": {"lon": jiading_spot[0], "lat": jiading_spot[1]},
        "occurred_at": (now - timedelta(minutes=30)).isoformat(),
        "evidence": [{"uri": f"https://evidence.example/{run}/2.jpg", "sha256": photo}],
    })
    handed = r.json()
    out(f"   {r.status_code} {handed}")
    across = follow_handover(site, keys, handed["id"], out)
    truck = night_truck(site, keys, out, run)  # step 4, in liandong/demo_transport.py
    joint = zero_hour_action(site, keys, out, run_no)  # step 5, in liandong/demo_jointops.py
    return {"first": first, "merged": merged, "accepted": accepted, "handed_over": handed,
            "across": across, "case": case, "truck": truck, "joint": joint}


def follow_handover(site: Site, keys: dict[str, str], lead_id: str, out=print) -> dict:
    """DOMAIN.md step 3 across two cities: the handover reaches Jiading through the bridge,
    Jiading's bureau accepts it, and Taicang follows where its lead is."""
    tc = Client(f"http://127.0.0.1:{site.gateway_port('taicang')}",
                keys["太仓市城管局 Taicang Bureau"])
    jd = Client(f"http://127.0.0.1:{site.gateway_port('jiading')}",
                keys["嘉定区城管局 Jiading Bureau"])

    def received_in_jiading():
        items = jd.get("/api/v1/leads?status=routed&limit=200").json().get("items", [])
        return next((i for i in items if i.get("origin_lead_id") == lead_id), None)

    theirs = _poll(received_in_jiading, bool, seconds=60)
    if theirs is None:
        out("   Jiading has not received it yet (is the bridge running?)")
        return {}
    out(f"   → in Jiading through the bridge: lead {theirs['id']} routed to {theirs['squad']}")
    r = jd.post(f"/api/v1/leads/{theirs['id']}/decision",
                {"decision": "accept", "reason": "外冈镇中队处置"})
    out(f"   Jiading's bureau accepts it: {r.status_code} {r.json().get('status')}")
    ours = _poll(lambda: tc.get(f"/api/v1/leads/{lead_id}").json(),
                 lambda lead: (lead.get("handover") or {}).get("status") in (
                     "accepted", "case_opened", "closed"), seconds=60)
    handover = ours.get("handover") or {}
    out(f"   Taicang follows its lead: handover {handover.get('status')} in "
        f"{handover.get('to_city')}, their lead {handover.get('partner_lead_id')}, "
        f"case {handover.get('case_no') or '(opening)'}")
    return {"jiading_lead": theirs, "taicang_view": ours}

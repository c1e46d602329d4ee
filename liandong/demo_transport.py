"""DOMAIN.md step 4 of the demo day: at night, a Kunshan-permitted muck truck leaves its corridor
and stops for eight minutes in a field in Taicang, far from its disposal site. Taicang's transport
service raises route-deviation and suspected-dumping alerts, a lead opens in Taicang, and Kunshan
(the permit's issuer) is told through the bridge."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from liandong.demo_cases import _poll
from liandong.settings import Site
from services.transport.domain import LOCAL_TZ

KUNSHAN_BUREAU = "昆山市城管局 Kunshan Bureau"
TAICANG_GPS = "太仓渣土车定位网关 Taicang GPS Gateway"
TAICANG_BUREAU = "太仓市城管局 Taicang Bureau"
# A construction site in Kunshan, its permitted disposal site in Taicang (a 消纳场 near 浏河),
# and the corridor between them; the field where the truck stops lies ~400 m off the corridor.
KS_SITE = (121.000, 31.430)
TC_DISPOSAL = (121.160, 31.520)


def _square(lon, lat, half=0.001):
    return {"type": "Polygon", "coordinates": [[
        [lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
        [lon - half, lat + half], [lon - half, lat - half]]]}


def _along(f):
    return (KS_SITE[0] + (TC_DISPOSAL[0] - KS_SITE[0]) * f,
            KS_SITE[1] + (TC_DISPOSAL[1] - KS_SITE[1]) * f)


def night_track(plate: str, start: datetime) -> list[dict]:
    """A position every 30 s: on the corridor into Taicang, off it, eight minutes stopped in a
    field, then on towards the disposal site."""
    pts: list[dict] = []

    def at(t, lon, lat, speed):
        pts.append({"plate": plate, "ts": t.isoformat(), "lon": round(lon, 7),
                    "lat": round(lat, 7), "crs": "WGS84", "speed_kmh": speed, "heading": 60})

    t = start
    for i in range(24):  # 12 minutes on the corridor, from 30 % to 50 % of the way
        lon, lat = _along(0.3 + 0.2 * i / 24)
        at(t, lon, lat, 35.0)
        t += timedelta(seconds=30)
    field = (_along(0.52)[0] + 0.003, _along(0.52)[1] - 0.003)
    for i in range(6):  # three minutes leaving the corridor towards the field
        lon, lat = _along(0.5 + 0.02 * i / 6)
        at(t, lon + 0.003 * (i + 1) / 6, lat - 0.003 * (i + 1) / 6, 20.0)
        t += timedelta(seconds=30)
    for _ in range(17):  # eight minutes stopped in the field
        at(t, *field, 0.0)
        t += timedelta(seconds=30)
    for i in range(1, 11):  # back to the corridor
        lon, lat = _along(0.52 + 0.05 * i / 10)
        at(t, lon + 0.003 * (10 - i) / 10, lat - 0.003 * (10 - i) / 10, 30.0)
        t += timedelta(seconds=30)
    return pts


def night_truck(site: Site, keys: dict[str, str], out=print, run: str | None = None) -> dict:
    from liandong.demo import Client

    run = run or uuid.uuid4().hex[:8]
    ks = Client(f"http://127.0.0.1:{site.gateway_port('kunshan')}", keys[KUNSHAN_BUREAU])
    tc = Client(f"http://127.0.0.1:{site.gateway_port('taicang')}", keys[TAICANG_BUREAU])
    gps = Client(f"http://127.0.0.1:{site.gateway_port('taicang')}", keys[TAICANG_GPS])
    plate = f"苏E·{int(run[:5], 16) % 100000:05d}"

    out("\n== 4. At night, a Kunshan-permitted muck truck (渣土车) in Taicang ==")
    for key, at, kind in (("ks", KS_SITE, "construction"), ("tc", TC_DISPOSAL, "disposal")):
        r = ks.post("/api/v1/transport/sites", {
            "id": f"demo-{key}-{run}", "name": "昆山某工地" if key == "ks" else "浏河消纳场",
            "kind": kind, "polygon": _square(*at)})
        if r.status_code != 201:
            out(f"   site not registered: {r.status_code} {r.text}")
            return {}
    today = date.today()
    r = ks.post("/api/v1/transport/permits", {
        "id": f"KS-{run}", "plate": plate, "origin_site": f"demo-ks-{run}",
        "disposal_site": f"demo-tc-{run}", "corridor": [list(KS_SITE), list(TC_DISPOSAL)],
        "width_m": 40, "windows": ["22:00-05:00"],
        "valid_from": (today - timedelta(days=30)).isoformat(),
        "valid_to": (today + timedelta(days=30)).isoformat(), "may_enter": ["taicang"]})
    permit = r.json()
    out(f"   Kunshan issues permit {permit.get('id')} for {plate}, 22:00-05:00, may enter "
        f"Taicang: {r.status_code}")
    replicated = _poll(lambda: tc.get(f"/api/v1/transport/permits/KS-{run}"),
                       lambda resp: resp.status_code == 200, seconds=60)
    out(f"   → Taicang knows the permit through the bridge: {replicated.status_code}")

    start = (datetime.now(LOCAL_TZ) - timedelta(days=1)).replace(
        hour=23, minute=10, second=0, microsecond=0)
    track = night_track(plate, start)
    r = gps.post("/api/v1/transport/positions", {"positions": track})
    out(f"   Taicang's GPS gateway sends {len(track)} positions from 23:10: "
        f"{r.status_code} {r.json()}")
    norm = plate.replace("·", "")

    def taicang_alerts():
        return tc.get(f"/api/v1/transport/alerts?plate={norm}").json().get("items", [])

    alerts = _poll(taicang_alerts, lambda items: {a["kind"] for a in items} >= {
        "route_deviation", "unapproved_stop"}, seconds=30) or []
    for a in sorted(alerts, key=lambda a: a["at"]):
        out(f"   alert {a['kind']:<16} at {a['at']} ({a['lat']:.5f}, {a['lon']:.5f}) "
            f"{a['detail']}")

    def leads():
        items = tc.get("/api/v1/leads?limit=200").json().get("items", [])
        return [i for i in items if norm in (i.get("description") or "")]

    opened = _poll(leads, lambda items: len(items) >= 2, seconds=30) or []
    for lead in opened:
        out(f"   → lead {lead['id']} {lead['category']} {lead['status']} squad "
            f"{lead.get('squad')}")

    def kunshan_told():
        return ks.get(f"/api/v1/transport/alerts?plate={norm}").json().get("items", [])

    told = _poll(kunshan_told, lambda items: len(items) >= 2, seconds=60) or []
    out(f"   → Kunshan (the issuer) is told: {sorted(a['kind'] for a in told)}")
    return {"plate": norm, "permit": permit, "alerts": alerts, "leads": opened,
            "kunshan_alerts": told}

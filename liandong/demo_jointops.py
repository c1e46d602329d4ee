"""DOMAIN.md step 5 of the demo day: Taicang's coordinator plans a 零点行动 (zero o'clock action)
against muck trucks on the Taicang–Jiading border for 00:00–04:00, invites Jiading and Baoshan,
who commit teams; the checkpoints report trucks stopped and violations; each violation becomes a
case in the city where it happened; the after-action report sums it up.

The operation runs on a past night: the jointops services' clocks (CLOCK_CONTROL, local demo
only) are set to the evening before, then to the night's hours, and given back at the end. Each
replay of the demo takes the night before the previous one, so the same teams are never
committed to two operations at the same time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from liandong.demo_cases import TimeControl, _poll
from liandong.settings import Site
from services.common.geo import default_city_locator
from services.jointops.domain import point_near_border
from services.transport.domain import LOCAL_TZ

COORDINATOR = "太仓市联合整治办 Taicang Joint Operations Office"
TAICANG_BUREAU = "太仓市城管局 Taicang Bureau"
TAICANG_SQUAD = "城厢镇中队 Chengxiang Squad"
JIADING_BUREAU = "嘉定区城管局 Jiading Bureau"
BAOSHAN_BUREAU = "宝山区城管局 Baoshan Bureau"
CITIES = ("taicang", "jiading", "baoshan")


def the_night(run_no: int, now: datetime) -> datetime:
    """00:00 Shanghai of the most recent night whose 04:00 has passed, `run_no` nights earlier."""
    local = now.astimezone(LOCAL_TZ)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if local < midnight + timedelta(hours=4, minutes=5):
        midnight -= timedelta(days=1)
    return midnight - timedelta(days=run_no)


def zero_hour_action(site: Site, keys: dict[str, str], out=print, run_no: int = 0) -> dict:
    from liandong.demo import Client

    def client(city, org):
        return Client(f"http://127.0.0.1:{site.gateway_port(city)}", keys[org])

    co = client("taicang", COORDINATOR)
    tc, squad = client("taicang", TAICANG_BUREAU), client("taicang", TAICANG_SQUAD)
    jd, bs = client("jiading", JIADING_BUREAU), client("baoshan", BAOSHAN_BUREAU)
    clocks = {c: TimeControl(site, c) for c in CITIES}

    def at(instant: datetime) -> None:
        for c in CITIES:
            clocks[c].call("jointops", "set_clock", instant.isoformat(), "frozen")

    night = the_night(run_no, datetime.now(LOCAL_TZ))
    locator = default_city_locator()
    cp1 = point_near_border(locator, "taicang", "jiading", 0.35, "taicang", 800)
    cp2 = point_near_border(locator, "taicang", "jiading", 0.55, "jiading", 800)
    found_tc = point_near_border(locator, "taicang", "jiading", 0.40, "taicang", 1200)
    found_jd = point_near_border(locator, "taicang", "jiading", 0.60, "jiading", 1200)

    out(f"\n== 5. 零点行动: Taicang plans a zero o'clock action on the Taicang–Jiading border, "
        f"{night:%Y-%m-%d} 00:00–04:00 ==")
    at(night - timedelta(hours=2))
    try:
        r = co.post("/api/v1/jointops", {
            "name": f"太嘉交界渣土车零点行动 {night:%m%d}", "kind": "zero_hour",
            "partners": ["jiading", "baoshan"], "starts_at": night.isoformat(),
            "ends_at": (night + timedelta(hours=4)).isoformat(),
            "area": {"border": {"cities": ["taicang", "jiading"], "buffer_m": 3000}},
            "categories": ["construction_waste", "illegal_dumping"],
            "checkpoints": [
                {"code": "CP1", "name": "浏河检查点 Liuhe checkpoint",
                 "location": {"lon": cp1[0], "lat": cp1[1]}, "teams_needed": 2},
                {"code": "CP2", "name": "外冈检查点 Waigang checkpoint",
                 "location": {"lon": cp2[0], "lat": cp2[1]}, "teams_needed": 2}],
            "briefing": "23:30 集合, 重点检查未密闭运输、无核准证、偷倒乱倒 "
                        "Meet 23:30; uncovered loads, no permit, dumping"})
        if r.status_code != 201:
            out(f"   plan refused: {r.status_code} {r.text}")
            return {}
        op = r.json()
        op_id = op["operation_id"]
        out(f"   {r.status_code} operation {op_id}: area = shared border ± 3 km, "
            f"checkpoints CP1 (Taicang side), CP2 (Jiading side)")
        out(f"   invite: {co.post(f'/api/v1/jointops/{op_id}/invite', {}).json()['status']}")

        def copy_in(c, status):
            return _poll(lambda: c.get(f"/api/v1/jointops/{op_id}"),
                         lambda resp: resp.status_code == 200 and resp.json()["status"] == status,
                         seconds=60)
        for name, c in (("Jiading", jd), ("Baoshan", bs)):
            got = copy_in(c, "invited")
            out(f"   → {name} received the invitation through the bridge: "
                f"{got.status_code == 200 and got.json()['status']}")
        r = jd.post(f"/api/v1/jointops/{op_id}/answer", {"decision": "accept", "teams": [
            {"name": "嘉定外冈中队", "checkpoint": "CP2", "people": 6, "vehicles": 2},
            {"name": "嘉定华亭中队", "checkpoint": "CP2", "people": 5, "vehicles": 1}],
            "note": "两个中队到外冈检查点"})
        out(f"   Jiading accepts, two teams to CP2: {r.status_code}")
        r = bs.post(f"/api/v1/jointops/{op_id}/answer", {"decision": "accept", "teams": [
            {"name": "宝山罗店中队", "checkpoint": "CP1", "people": 4, "vehicles": 1}]})
        out(f"   Baoshan accepts, one team to CP1: {r.status_code}")
        r = co.put(f"/api/v1/jointops/{op_id}/teams", {"teams": [
            {"name": "太仓浏河中队", "checkpoint": "CP1", "people": 8, "vehicles": 2}]})
        out(f"   Taicang commits its own team to CP1: {r.status_code}")
        op = _poll(lambda: co.get(f"/api/v1/jointops/{op_id}").json(),
                   lambda o: all(i["status"] != "pending" for i in o["invitations"]), seconds=60)
        for cp in op["checkpoints"]:
            out(f"     {cp['code']} {cp['name']}: {cp['teams_committed']}/{cp['teams_needed']} "
                f"teams ({', '.join(t['name'] for t in cp['teams'])})")
        out(f"   confirm: {co.post(f'/api/v1/jointops/{op_id}/confirm', {}).json()['status']}")

        out("== 5b. 00:00: the operation starts; the checkpoints report ==")
        at(night + timedelta(seconds=30))
        clocks["taicang"].call("jointops", "tick_at", (night + timedelta(seconds=30)).isoformat())
        copy_in(jd, "active")
        copy_in(bs, "active")
        at(night + timedelta(hours=1, minutes=45))
        reports = [
            (jd, "CP2", "嘉定外冈中队", 23, [
                ("沪D·61234", "construction_waste", found_jd, 35, "未密闭运输, 沿途撒漏 "
                                                                 "uncovered load spilling"),
                ("苏E·70521", "illegal_dumping", found_tc, 50, "越界至太仓路边倾倒 dumped by "
                                                              "the road across the border")]),
            (squad, "CP1", "太仓浏河中队", 15, [
                ("苏E·33019", "construction_waste", (found_tc[0] + 0.003, found_tc[1]), 70,
                 "无核准证运输 no transport permit")]),
            (bs, "CP1", "宝山罗店中队", 8, []),
        ]
        filed = []
        for who, cp, team, checked, violations in reports:
            r = who.post(f"/api/v1/jointops/{op_id}/reports", {
                "checkpoint": cp, "team": team, "vehicles_checked": checked, "violations": [
                    {"plate": plate, "category": cat, "location": {"lon": p[0], "lat": p[1]},
                     "description": text,
                     "occurred_at": (night + timedelta(minutes=minutes)).isoformat()}
                    for plate, cat, p, minutes, text in violations]})
            body = r.json()
            filed.append(body)
            out(f"   {team} at {cp}: {r.status_code}, {checked} trucks stopped, "
                f"{len(violations)} violations "
                f"{[v['city'] for v in body.get('violations', [])]}")

        out("== 5c. Each violation becomes a lead where it happened; the bureaus accept them ==")
        decided = _accept_violation_leads(tc, jd, op_id, co, out)

        def cases_opened():
            return co.get(f"/api/v1/jointops/{op_id}/report").json()
        report = _poll(cases_opened,
                       lambda rep: rep.get("totals", {}).get("cases_opened", 0) >= decided,
                       seconds=90)
        for v in report.get("violations", []):
            out(f"   {v['plate']:<10} found by {v['reported_by']:<8} happened in "
                f"{v['city']:<8} → {v['state']:<12} {v['case_no'] or ''}")

        out("== 5d. 04:00: the operation ends; the after-action report ==")
        at(night + timedelta(hours=4, minutes=5))
        clocks["taicang"].call("jointops", "tick_at",
                               (night + timedelta(hours=4, minutes=5)).isoformat())
        r = co.post(f"/api/v1/jointops/{op_id}/report", {})
        out(f"   status: {r.json().get('status')}")
        summary = co.get(f"/api/v1/jointops/{op_id}/report", format="text").text
        for line in summary.splitlines():
            out(f"   {line}")
        return {"operation_id": op_id, "report": co.get(
            f"/api/v1/jointops/{op_id}/report").json(), "reports": filed}
    finally:
        for c in CITIES:
            clocks[c].call("jointops", "set_clock", None, "frozen")


def _accept_violation_leads(tc, jd, op_id: str, co, out) -> int:
    """Accept every violation's lead in the city that holds it (a handed-over one under its
    lead id there); returns how many were accepted."""
    def all_routed():
        rep = co.get(f"/api/v1/jointops/{op_id}/report").json()
        return rep.get("violations", [])
    violations = _poll(all_routed, lambda vs: vs and all(v["lead_id"] for v in vs), seconds=60)
    accepted = 0
    for v in violations:
        holder = tc if v["handled_by"] == "taicang" else jd
        lead_id = v["lead_id"]
        if v["handled_by"] != v["reported_by"]:  # handed over: the receiving city's own lead

            def received(lead=lead_id, bureau=holder):
                items = bureau.get("/api/v1/leads?status=routed&limit=200").json().get(
                    "items", [])
                return next((i for i in items if i.get("origin_lead_id") == lead), None)
            theirs = _poll(received, bool, seconds=60)
            if not theirs:
                out(f"   {v['plate']}: not received in {v['handled_by']} yet")
                continue
            lead_id = theirs["id"]
        r = holder.post(f"/api/v1/leads/{lead_id}/decision",
                        {"decision": "accept", "reason": "联合整治查获 found in the joint action"})
        accepted += r.status_code == 200
        out(f"   {v['handled_by']} accepts the lead of {v['plate']}: {r.status_code}")
    return accepted

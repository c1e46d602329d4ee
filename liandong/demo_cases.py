"""Demo day, step 2 continued: the case the accepted lead opened, walked through its deadlines
(限时督办) to closure: assignment, reminder notice (提示单), supervision order (督办单), the order
answered, feedback with evidence, evaluation, closure, and its tamper-evident record.

Time is driven as the tests drive it: the supervision service scans "as of" the reminder and due
times for this case, and the services' clocks are shifted past the due time (the local platform
runs with CLOCK_CONTROL on; without it, the deadlines and notices are shown as scheduled).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from liandong.settings import Site
from services.common.workcal import SHANGHAI

BUREAU = "太仓市城管局 Taicang Bureau"
SQUAD = "城厢镇中队 Chengxiang Squad"
SUPERVISOR = "太仓市城管局督查科 Taicang Supervision Office"
EVIDENCE = [{"uri": "https://evidence.example/after-cleanup.jpg",
             "sha256": "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"}]


def _poll(fetch, done, seconds: float = 30.0, step: float = 0.2):
    deadline = time.monotonic() + seconds
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(step)


def _local(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(SHANGHAI).strftime(
        "%Y-%m-%d %H:%M")


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _deadline(loop: dict, kind: str, seq: int = 1) -> dict | None:
    return next((d for d in loop.get("deadlines", []) if d["kind"] == kind and d["seq"] == seq),
                None)


class TimeControl:
    """The supervision `scan` and the services' `set_clock` RPCs (CLOCK_CONTROL only)."""

    def __init__(self, site: Site, city: str = "taicang"):
        self.uri = site.amqp_uri(city)

    def _call(self, service: str, method: str, *args):
        from nameko.standalone.rpc import ClusterRpcClient

        with ClusterRpcClient(timeout=15, uri=self.uri) as client:
            return getattr(getattr(client, service), method)(*args)

    def call(self, service: str, method: str, *args):
        return self._call(service, method, *args)

    def scan(self, at: datetime, case_id: str) -> int:
        return self._call("supervision", "scan", at.isoformat(), case_id)

    def shift_to(self, at: datetime | None) -> None:
        for service in ("cases", "supervision"):
            self._call(service, "set_clock", at.isoformat() if at else None, "shifted")


def follow_case(site: Site, keys: dict[str, str], lead_id: str, out=print) -> dict:
    from liandong.demo import Client

    tc = f"http://127.0.0.1:{site.gateway_port('taicang')}"
    bureau, squad, supervisor = (Client(tc, keys[k]) for k in (BUREAU, SQUAD, SUPERVISOR))
    out("== 2b. The lead opens a case, worked within its deadlines (案件指派, 限时督办) ==")
    items = _poll(lambda: bureau.get(f"/api/v1/cases?lead_id={lead_id}").json().get("items"),
                  bool)
    if not items:
        out("   no case yet (is the cases service running?)")
        return {}
    case = items[0]
    cid = case["id"]
    opened = bureau.get(f"/api/v1/cases/{cid}").json()["history"][0]["detail"]
    out(f"   case {case['case_no']} opened, assigned to {case['squad']} ({case['town']}): "
        f"{opened.get('assignment')}")

    def loop_when(check):
        return _poll(lambda: bureau.get(f"/api/v1/supervision/cases/{cid}").json(),
                     lambda lp: "deadlines" in lp and check(lp))

    loop = loop_when(lambda lp: _deadline(lp, "response"))
    response = _deadline(loop, "response")
    out(f"   respond within {response['limit']} (Asia/Shanghai working time): due "
        f"{_local(response['due_at'])}, reminder {_local(response['remind_at'])}")
    squad.post(f"/api/v1/cases/{cid}/accept", {"note": "城厢镇中队已签收"})
    loop = loop_when(lambda lp: _deadline(lp, "disposal"))
    disposal = _deadline(loop, "disposal")
    out(f"   {SQUAD} accepts; rectify within {disposal['limit']}: due "
        f"{_local(disposal['due_at'])}, reminder {_local(disposal['remind_at'])}")

    clock = TimeControl(site)
    due = _instant(disposal["due_at"])
    shifted = True
    try:
        clock.scan(_instant(disposal["remind_at"]), cid)
        clock.scan(due + timedelta(minutes=5), cid)
        clock.shift_to(due + timedelta(minutes=20))
    except Exception as exc:  # CLOCK_CONTROL off, or an older platform: show the schedule
        shifted = False
        out(f"   (time cannot be shifted here: {type(exc).__name__}; notices as scheduled: "
            f"提示单 at {_local(disposal['remind_at'])}, 督办单 at {_local(disposal['due_at'])})")
    result: dict = {"case_no": case["case_no"]}
    try:
        notices = []
        if shifted:
            out(f"   time shifted to {_local((due + timedelta(minutes=20)).isoformat())} "
                f"(demo only: CLOCK_CONTROL):")
            notices = _poll(lambda: bureau.get(
                f"/api/v1/supervision/notices?case_id={cid}").json().get("items", []),
                lambda items: len(items) >= 2)
            for n in sorted(notices, key=lambda n: n["id"]):
                out(f"     {_local(n['issued_at'])}  {n['title']} → {n['recipient']}")
            order = next((n for n in notices if n["kind"] == "order"), None)
            if order:
                r = squad.post(f"/api/v1/supervision/notices/{order['id']}/feedback",
                               {"text": "已调派清运车辆，今日处置完毕", "evidence": EVIDENCE})
                out(f"   the squad answers the order: {r.json().get('status')}")
                supervisor.post(f"/api/v1/supervision/notices/{order['id']}/evaluation",
                                {"result": "satisfactory"})
        r = squad.post(f"/api/v1/cases/{cid}/feedback", {
            "summary": "垃圾已全部清运，现场已冲洗 cleared and washed", "evidence": EVIDENCE,
            "finding": {"severity": "minor", "first_offence": True, "corrected": True}})
        penalty = r.json().get("penalty") or {}
        out(f"   feedback with evidence: {r.json().get('status')}; penalty suggestion: "
            f"{penalty.get('decision')} ({penalty.get('rule_id')})")
        r = supervisor.post(f"/api/v1/cases/{cid}/evaluate", {"result": "pass",
                                                              "comment": "现场核查合格"})
        final = r.json()
        out(f"   {SUPERVISOR} evaluates: pass → {final.get('status')}")
    finally:
        if shifted:
            clock.shift_to(None)
    loop = loop_when(lambda lp: lp.get("status") == "closed" and all(
        d["status"] != "pending" for d in lp["deadlines"]))
    review = loop["loop"][4]["items"][0] if loop.get("loop") else {}
    history = _poll(lambda: bureau.get(f"/api/v1/cases/{cid}").json()["history"],
                    lambda h: sum(x["action"] == "deadline_closed" for x in h) >= 2)
    for h in history:
        out(f"     {_local(h['at'])}  {h['action']:<16} {h['status']:<12} by {h['actor']}")
    record = bureau.get(f"/api/v1/cases/{cid}/record").json()
    intact = all(e["proof"]["valid"] and e["proof"]["prev_link"] for e in record["entries"])
    out(f"   review (定期调度): periods {review.get('periods')}, on time: {review.get('on_time')}, "
        f"reminders {review.get('reminders')}, orders {review.get('orders')}")
    out(f"   record (区块链+公证): {len(record['entries'])} entries of this case, proofs "
        f"{'valid' if intact else 'BROKEN'}, chain head {record['head']['seq']} "
        f"{record['head']['hash'][:16]}…")
    result.update(case=final, notices=notices, loop=loop, history=history, record=record,
                  time_shifted=shifted)
    return result

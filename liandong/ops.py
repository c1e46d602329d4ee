"""`liandong ops ...`: the joint-operation coordinator's commands (联合整治), over the city's HTTP
API with the coordinator's key, exactly what `/api/v1/jointops/...` offers.

    liandong ops plan --city taicang FILE          (JSON or YAML plan; - reads stdin)
    liandong ops invite|confirm|start|complete|cancel --city taicang OPERATION_ID
    liandong ops status --city taicang [OPERATION_ID] [--json]
    liandong ops report --city taicang OPERATION_ID [--format text|json|csv] [--final]

The key comes from `--key` or `LIANDONG_API_KEY`; the gateway from `--url` or the local one.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import requests
import yaml

from contracts.reference import CITIES, OPERATION_KINDS

STEPS = ("invite", "confirm", "start", "complete", "cancel")


class OpsError(Exception):
    """What the API refused, as the problem details said it."""


class OpsClient:
    def __init__(self, base: str, key: str):
        self.base = base.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def call(self, method: str, path: str, **kw):
        r = self.session.request(method, f"{self.base}/api/v1/jointops{path}", timeout=30, **kw)
        if r.status_code >= 400:
            try:
                problem = r.json()
            except ValueError:
                raise OpsError(f"{r.status_code}: {r.text[:500]}") from None
            detail = f"{problem.get('title', r.status_code)}: {problem.get('detail', '')}"
            if problem.get("errors"):
                detail += "\n" + json.dumps(problem["errors"], ensure_ascii=False, indent=2)
            raise OpsError(detail)
        return r


def read_plan(path: str) -> dict:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    plan = yaml.safe_load(text)
    if not isinstance(plan, dict):
        raise OpsError(f"{path}: a plan is a JSON or YAML object")
    # YAML reads unquoted instants as datetimes; the API takes ISO 8601 text
    return json.loads(json.dumps(plan, default=lambda v: v.isoformat()))


def plan(client: OpsClient, path: str) -> dict:
    return client.call("POST", "", json=read_plan(path)).json()


def step(client: OpsClient, operation_id: str, action: str) -> dict:
    return client.call("POST", f"/{operation_id}/{action}").json()


def status(client: OpsClient, operation_id: str | None) -> dict:
    if operation_id:
        return client.call("GET", f"/{operation_id}").json()
    return client.call("GET", "", params={"limit": 50}).json()


def report(client: OpsClient, operation_id: str, fmt: str, final: bool) -> str:
    if final:
        client.call("POST", f"/{operation_id}/report")
    r = client.call("GET", f"/{operation_id}/report", params={"format": fmt})
    return json.dumps(r.json(), ensure_ascii=False, indent=2) if fmt == "json" else r.text


def describe(op: dict) -> str:
    """An operation as a coordinator reads it on a terminal."""
    kind = OPERATION_KINDS[op["kind"]]
    lines = [f"{op['name']}  ({kind.name_zh} {kind.name_en})",
             f"  id {op['operation_id']}  revision {op['revision']}  status {op['status']}"
             f"{'' if op['owner'] else '  (copy; led by ' + op['lead_city'] + ')'}",
             f"  window {op['starts_at']} – {op['ends_at']}",
             f"  lead {CITIES[op['lead_city']].name_zh}, partners "
             f"{', '.join(CITIES[c].name_zh for c in op['partners'])}"]
    for inv in op["invitations"]:
        lines.append(f"  invitation {inv['city']:<9} {inv['status']}"
                     f"{'  ' + inv['note'] if inv.get('note') else ''}")
    for cp in op["checkpoints"]:
        teams = ", ".join(f"{t['name']} ({t['city']}, {t['people']} people)" for t in cp["teams"])
        flag = "  SHORT 力量不足" if cp["short"] else ""
        lines.append(f"  checkpoint {cp['code']} {cp['name']}: {cp['teams_committed']}/"
                     f"{cp['teams_needed']} teams{flag}; {cp['vehicles_checked']} vehicles "
                     f"checked, {cp['violations']} violations")
        if teams:
            lines.append(f"    {teams}")
    lines += [f"  ! {w}" for w in op["warnings"]]
    return "\n".join(lines)


def describe_list(listing: dict) -> str:
    rows = [f"{o['operation_id']}  {o['status']:<9} {o['starts_at']}  {o['name']}"
            f"{'' if o['owner'] else '  (led by ' + o['lead_city'] + ')'}"
            for o in listing["items"]]
    return "\n".join(rows) or "no joint operations"


def client_for(args, gateway_url: str) -> OpsClient:
    key = args.key or os.environ.get("LIANDONG_API_KEY")
    if not key:
        raise OpsError("give the coordinator's API key with --key or LIANDONG_API_KEY")
    return OpsClient(args.url or gateway_url, key)

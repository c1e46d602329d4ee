"""The transport between cities: RabbitMQ Shovels, and the partner users they log in as.

For each ordered pair (A → B): a dynamic shovel in A's vhost moves `bridge.outbound.B` to the
exchange `bridge.inbound` of B's vhost (ack-mode on-confirm: a message leaves A's queue only once
B's broker has it; store and forward while B is away). It logs in to B as A's bridge user, which
may only write to `bridge.inbound` in B's vhost (no configure, no read).
Locally all vhosts live on one broker; in production the destination URI is the partner's broker.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit

from services.common.topology import BRIDGE_INBOUND, management_session, outbound_queue


def bridge_user(vhost: str) -> str:
    """The broker user a city's bridge logs in to partners as (derived from its vhost)."""
    return "bridge-" + vhost.strip("/").replace("/", "-")


def shovel_name(partner: str) -> str:
    return f"bridge-to-{partner}"


def shovel_definition(source_vhost: str, partner: str, dest_uri: str) -> dict:
    return {"value": {
        "src-protocol": "amqp091",
        "src-uri": "amqp:///" + quote(source_vhost, safe=""),
        "src-queue": outbound_queue(partner),
        "dest-protocol": "amqp091",
        "dest-uri": dest_uri,
        "dest-exchange": BRIDGE_INBOUND,
        "ack-mode": "on-confirm",
        "src-delete-after": "never",
        "dest-add-timestamp-header": True,
        "reconnect-delay": 2,
        "prefetch-count": 1000,
    }}


def ensure_partner_user(management_url: str, user: str, password: str,
                        partner_vhosts: list[str]) -> None:
    session, base = management_session(management_url)
    session.put(f"{base}/api/users/{quote(user, safe='')}",
                json={"password": password, "tags": ""}, timeout=10).raise_for_status()
    for vhost in partner_vhosts:
        session.put(f"{base}/api/permissions/{quote(vhost, safe='')}/{quote(user, safe='')}",
                    json={"configure": "^$", "write": r"^bridge\.inbound$", "read": "^$"},
                    timeout=10).raise_for_status()


def ensure_shovel(management_url: str, source_vhost: str, partner: str, dest_uri: str) -> None:
    session, base = management_session(management_url)
    url = (f"{base}/api/parameters/shovel/{quote(source_vhost, safe='')}/"
           f"{quote(shovel_name(partner), safe='')}")
    session.put(url, json=shovel_definition(source_vhost, partner, dest_uri),
                timeout=10).raise_for_status()


def link_state(management_url: str, amqp_uri: str, partners: list[str]) -> dict[str, dict]:
    """Per partner: the shovel's state and the outbound backlog (management API; 'unknown' when
    the API does not answer)."""
    vhost = unquote(urlsplit(amqp_uri).path[1:]) or "/"
    v = quote(vhost, safe="")
    try:
        session, base = management_session(management_url)
        shovels = {s["name"]: s.get("state", "unknown")
                   for s in session.get(f"{base}/api/shovels/{v}", timeout=5).json()}
        queues = {q["name"]: q.get("messages") for q in session.get(
            f"{base}/api/queues/{v}", params={"columns": "name,messages"}, timeout=5).json()}
    except Exception:
        return {p: {"link": "unknown", "backlog": None} for p in partners}
    return {p: {"link": shovels.get(shovel_name(p), "absent"),
                "backlog": queues.get(outbound_queue(p))} for p in partners}

"""`liandong`: the operator's command line.

    liandong provision [--city X ...] [--skip-install]
    liandong up | down | run [--no-demo]
    liandong migrate --city X
    liandong topology apply --city X | topology show --city X
    liandong keys create --city X --org NAME --role ROLE [--role ROLE ...]
    liandong keys list --city X | keys revoke --city X --prefix PREFIX
    liandong parked list --city X [--limit N] | parked replay --city X --queue Q [--count N]
    liandong record verify --city X
    liandong calendar load --city X FILE [FILE ...] | calendar show --city X [--year Y]
    liandong bridge keygen|export --city X | bridge import --city X --file F [--allow T,...]
    liandong bridge revoke --city X --partner Y --kid K | bridge link
    liandong bridge accept-stale --city X
    liandong ops plan --city X FILE | ops invite|confirm|start|complete|cancel --city X ID
    liandong ops status --city X [ID] [--json] | ops report --city X ID [--format F] [--final]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from contracts.reference import CITY_CODES, ROLES
from liandong import platform, provision
from liandong.settings import Site, site


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="liandong", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("provision", help="servers, vhosts, databases, topology, migrations")
    p.add_argument("--city", action="append", choices=CITY_CODES)
    p.add_argument("--skip-install", action="store_true")
    p.add_argument("--servers-only", action="store_true",
                   help="only make sure RabbitMQ (with plugins) and PostgreSQL are there")
    p.set_defaults(fn=cmd_provision)

    p = sub.add_parser("up", help="start the five cities in the background, return when ready")
    p.set_defaults(fn=cmd_up)
    p = sub.add_parser("down", help="stop what `up` started")
    p.set_defaults(fn=cmd_down)
    p = sub.add_parser("run", help="start the five cities, play the demo day, serve until Ctrl-C")
    p.add_argument("--no-demo", action="store_true")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("demo", help="play the demo day against running gateways")
    p.set_defaults(fn=cmd_demo)

    p = sub.add_parser("migrate", help="run the Alembic migrations of a city's database")
    p.add_argument("--city", required=True, choices=CITY_CODES)
    p.set_defaults(fn=cmd_migrate)

    p = sub.add_parser("topology", help="broker topology from the contracts registry")
    p.add_argument("action", choices=["apply", "show"])
    p.add_argument("--city", required=True, choices=CITY_CODES)
    p.set_defaults(fn=cmd_topology)

    keys = sub.add_parser("keys", help="organisations' API keys").add_subparsers(
        dest="action", required=True)
    p = keys.add_parser("create", help="create a key; the key is the last line printed")
    p.add_argument("--city", required=True, choices=CITY_CODES)
    p.add_argument("--org", required=True)
    p.add_argument("--role", required=True, action="append", choices=ROLES)
    p.set_defaults(fn=cmd_keys_create)
    p = keys.add_parser("list")
    p.add_argument("--city", required=True, choices=CITY_CODES)
    p.set_defaults(fn=cmd_keys_list)
    p = keys.add_parser("revoke")
    p.add_argument("--city", required=True, choices=CITY_CODES)
    p.add_argument("--prefix", required=True)
    p.set_defaults(fn=cmd_keys_revoke)

    parked = sub.add_parser("parked", help="messages parked with an error").add_subparsers(
        dest="action", required=True)
    p = parked.add_parser("list")
    p.add_argument("--city", required=True, choices=CITY_CODES)
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(fn=cmd_parked_list)
    p = parked.add_parser("replay", help="move parked messages back to their queue")
    p.add_argument("--city", required=True, choices=CITY_CODES)
    p.add_argument("--queue", required=True, help="the handler's queue (without .parked)")
    p.add_argument("--count", type=int, default=1_000_000)
    p.set_defaults(fn=cmd_parked_replay)

    bridge = sub.add_parser("bridge", help="keys and partners of the five-city bridge")
    bsub = bridge.add_subparsers(dest="action", required=True)
    p = bsub.add_parser("keygen", help="a new Ed25519 key for the city (the newest one signs)")
    p.add_argument("--city", required=True, choices=CITY_CODES)
    p.set_defaults(fn=cmd_bridge_keygen)
    p = bsub.add_parser("export", help="print the city's public key bundle for its partners")
    p.add_argument("--city", required=True, choices=CITY_CODES)
    p.set_defaults(fn=cmd_bridge_export)
    p = bsub.add_parser("import", help="trust a partner's key bundle (file or - for stdin)")
    p.add_argument("--city", required=True, choices=CITY_CODES, help="the importing city")
    p.add_argument("--file", required=True)
    p.add_argument("--allow", help="comma-separated event types the partner may send "
                                   "(default: contracts.bridge.DEFAULT_ALLOWED_TYPES)")
    p.set_defaults(fn=cmd_bridge_import)
    p = bsub.add_parser("revoke", help="stop trusting one key of a partner")
    p.add_argument("--city", required=True, choices=CITY_CODES)
    p.add_argument("--partner", required=True, choices=CITY_CODES)
    p.add_argument("--kid", required=True)
    p.set_defaults(fn=cmd_bridge_revoke)
    p = bsub.add_parser("link", help="partner users and shovels between the five cities")
    p.set_defaults(fn=cmd_bridge_link)
    p = bsub.add_parser("accept-stale", help="apply envelopes refused only for their age (after "
                                             "a link outage longer than the window)")
    p.add_argument("--city", required=True, choices=CITY_CODES)
    p.set_defaults(fn=cmd_bridge_accept_stale)

    record = sub.add_parser("record", help="the tamper-evident case record (区块链+公证)")
    rsub = record.add_subparsers(dest="action", required=True)
    p = rsub.add_parser("verify", help="recompute the city's whole hash chain; names the first "
                                       "bad entry (exit 1)")
    p.add_argument("--city", required=True, choices=CITY_CODES)
    p.add_argument("--against-partners", action="store_true",
                   help="also compare the chain with the anchors the partner cities hold")
    p.set_defaults(fn=cmd_record_verify)

    ops = sub.add_parser("ops", help="joint operations (联合整治), as the coordinator, over the "
                                     "city's HTTP API").add_subparsers(dest="ops_cmd",
                                                                       required=True)

    def ops_parser(name: str, help: str, with_id: bool | None = True):
        p = ops.add_parser(name, help=help)
        p.add_argument("--city", required=True, choices=CITY_CODES)
        p.add_argument("--key", help="the coordinator's API key (default: LIANDONG_API_KEY)")
        p.add_argument("--url", help="the city's gateway (default: the local one)")
        if with_id:
            p.add_argument("operation_id")
        elif with_id is None:
            p.add_argument("operation_id", nargs="?")
        return p

    p = ops_parser("plan", "plan an operation from a JSON or YAML file (- for stdin)", False)
    p.add_argument("file")
    p.set_defaults(fn=cmd_ops_plan)
    for action in ("invite", "confirm", "start", "complete", "cancel"):
        p = ops_parser(action, f"{action} the operation")
        p.set_defaults(fn=cmd_ops_step, action=action)
    p = ops_parser("status", "one operation (plan, answers, teams, shortages), or the list",
                   None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_ops_status)
    p = ops_parser("report", "the after-action report")
    p.add_argument("--format", choices=("text", "json", "csv"), default="text")
    p.add_argument("--final", action="store_true",
                   help="mark the completed operation reported first (partners are told)")
    p.set_defaults(fn=cmd_ops_report)

    calendar = sub.add_parser("calendar", help="working calendar: official holidays and "
                                               "adjusted working days per year")
    csub = calendar.add_subparsers(dest="action", required=True)
    p = csub.add_parser("load", help="load a year's official schedule (JSON or YAML) into a "
                                     "city's supervision service")
    p.add_argument("--city", required=True, choices=CITY_CODES)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(fn=cmd_calendar_load)
    p = csub.add_parser("show", help="which source each year uses; one year's days off and "
                                     "working weekend days")
    p.add_argument("--city", required=True, choices=CITY_CODES)
    p.add_argument("--year", type=int)
    p.set_defaults(fn=cmd_calendar_show)

    args = parser.parse_args(argv)
    return args.fn(args, site()) or 0


def cmd_provision(args, s: Site) -> int:
    if args.servers_only:
        provision.ensure_servers(s, allow_install=not args.skip_install)
    else:
        provision.provision(s, tuple(args.city or CITY_CODES), install=not args.skip_install)
    return 0


def cmd_migrate(args, s: Site) -> int:
    from services.common.migrate import upgrade

    upgrade(s.database_url(args.city))
    print(f"{args.city}: migrated")
    return 0


def cmd_topology(args, s: Site) -> int:
    from services.common import topology

    if args.action == "show":
        print(json.dumps(topology.definitions(s.vhost(args.city)), indent=2))
    else:
        body = topology.apply(s.management_url(), s.vhost(args.city))
        print(f"{args.city}: {len(body['exchanges'])} exchanges, {len(body['queues'])} queues, "
              f"{len(body['bindings'])} bindings declared in {s.vhost(args.city)}")
    return 0


def _engine(s: Site, city: str):
    from sqlalchemy import create_engine

    return create_engine(s.database_url(city))


def cmd_keys_create(args, s: Site) -> int:
    from services.common.config import setting
    from services.gateway.keys import create_key

    engine = _engine(s, args.city)
    with engine.begin() as conn:
        org, key = create_key(conn, args.city, args.org, args.role, setting("APIKEY_PEPPER"))
    print(f"organisation {org['name']} ({org['id']}) roles {','.join(org['roles'])} "
          f"in {args.city}; the key is shown once, store it now:")
    print(key)
    return 0


def cmd_keys_list(args, s: Site) -> int:
    from sqlalchemy import select

    from services.gateway.models import api_keys, organisations

    with _engine(s, args.city).connect() as conn:
        rows = conn.execute(select(api_keys.c.prefix, api_keys.c.created_at,
                                   api_keys.c.revoked_at, organisations.c.name,
                                   organisations.c.roles)
                            .join(organisations, organisations.c.id == api_keys.c.org_id)
                            .order_by(api_keys.c.created_at)).all()
    for r in rows:
        state = f"revoked {r.revoked_at:%Y-%m-%d}" if r.revoked_at else "active"
        print(f"{r.prefix}…  {state:<18} {','.join(r.roles):<20} {r.name}")
    return 0


def cmd_keys_revoke(args, s: Site) -> int:
    from sqlalchemy import func, update

    from services.gateway.models import api_keys

    with _engine(s, args.city).begin() as conn:
        n = conn.execute(update(api_keys).where(api_keys.c.prefix == args.prefix,
                                                api_keys.c.revoked_at.is_(None))
                         .values(revoked_at=func.now())).rowcount
    print(f"revoked {n} key(s)")
    return 0 if n else 1


def cmd_parked_list(args, s: Site) -> int:
    from services.common import parking

    for item in parking.list_parked(s.management_url(), s.vhost(args.city), args.limit):
        print(json.dumps(item, ensure_ascii=False))
    return 0


def cmd_parked_replay(args, s: Site) -> int:
    from services.common import parking

    n = parking.replay(s.amqp_uri(args.city), args.queue, args.count)
    print(f"replayed {n} message(s) to {args.queue}")
    return 0


def cmd_bridge_keygen(args, s: Site) -> int:
    from services.bridge import signing

    key = signing.generate_key()
    path = signing.save_key(key, s.bridge_key_dir(), args.city)
    print(f"{args.city}: new bridge key {key.kid} in {path}; export it to the partners with "
          f"`liandong bridge export --city {args.city}`")
    return 0


def cmd_bridge_export(args, s: Site) -> int:
    from services.bridge.keys import export_bundle

    print(json.dumps(export_bundle(s.bridge_key_dir(), args.city), indent=2))
    return 0


def cmd_bridge_import(args, s: Site) -> int:
    from services.bridge.keys import import_bundle

    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    allowed = [t.strip() for t in args.allow.split(",")] if args.allow else None
    with _engine(s, args.city).begin() as conn:
        kids = import_bundle(conn, json.loads(text), allowed)
    print(f"{args.city} now trusts key(s) {', '.join(kids)} of {json.loads(text)['city']}")
    return 0


def cmd_bridge_revoke(args, s: Site) -> int:
    from services.bridge.keys import revoke_key

    with _engine(s, args.city).begin() as conn:
        n = revoke_key(conn, args.partner, args.kid)
    print(f"revoked {n} key(s)")
    return 0 if n else 1


def cmd_bridge_accept_stale(args, s: Site) -> int:
    from services.bridge.stale import accept_stale

    counts = accept_stale(s.amqp_uri(args.city), s.database_url(args.city), args.city)
    print(f"{args.city}: accepted {counts['accepted']} stale envelope(s); "
          f"{counts['kept']} parked message(s) left as they were")
    return 0


def cmd_bridge_link(args, s: Site) -> int:
    provision.link_cities(s)
    print("bridge: keys, partner users and shovels in place")
    return 0


def cmd_record_verify(args, s: Site) -> int:
    from services.cases.record import verify_chain

    engine = _engine(s, args.city)
    with engine.connect() as conn:
        result = verify_chain(conn, args.city)
    engine.dispose()
    status = 0
    if result.ok:
        print(f"{args.city}: record intact: {result.entries} entries, head {result.head_seq} "
              f"{result.head_hash}")
    else:
        print(f"{args.city}: record BROKEN at entry {result.bad_seq}: {result.reason} "
              f"({result.entries} entries verified before it)")
        status = 1
    if args.against_partners:
        from liandong.notary import check_against_partners

        checks = check_against_partners(s, args.city)
        bad = [c for c in checks if not c.ok]
        for c in bad:
            print(f"{args.city}: entry {c.seq} differs from the anchor {c.partner} holds: "
                  f"{c.anchored_hash} there, {c.local_hash or 'missing'} here")
        partners = sorted({c.partner for c in checks})
        print(f"{args.city}: {len(checks) - len(bad)} of {len(checks)} anchors held by "
              f"{', '.join(partners) or 'no partner'} match")
        if bad or not checks:
            status = 1
    return status


def _ops(args, s: Site, call) -> int:
    from liandong import ops

    try:
        out = call(ops, ops.client_for(args, f"http://127.0.0.1:{s.gateway_port(args.city)}"))
    except ops.OpsError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    print(out)
    return 0


def cmd_ops_plan(args, s: Site) -> int:
    return _ops(args, s, lambda ops, c: ops.describe(ops.plan(c, args.file)))


def cmd_ops_step(args, s: Site) -> int:
    return _ops(args, s, lambda ops, c: ops.describe(ops.step(c, args.operation_id,
                                                                args.action)))


def cmd_ops_status(args, s: Site) -> int:
    def show(ops, c):
        result = ops.status(c, args.operation_id)
        if args.json:
            return json.dumps(result, ensure_ascii=False, indent=2)
        return ops.describe(result) if args.operation_id else ops.describe_list(result)
    return _ops(args, s, show)


def cmd_ops_report(args, s: Site) -> int:
    return _ops(args, s, lambda ops, c: ops.report(c, args.operation_id, args.format,
                                                   args.final))


def cmd_calendar_load(args, s: Site) -> int:
    import getpass

    from sqlalchemy import func
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    from services.common.workcal import load_year_file
    from services.supervision.models import calendar_years

    schedules = [load_year_file(f) for f in args.files]  # all valid, or nothing is loaded
    engine = _engine(s, args.city)
    with engine.begin() as conn:
        for sch in schedules:
            row = {"year": sch.year, "schedule": sch.to_doc(), "loaded_by": getpass.getuser()}
            conn.execute(pg_insert(calendar_years).values(**row).on_conflict_do_update(
                index_elements=["year"], set_={**row, "loaded_at": func.now()}))
    engine.dispose()
    for sch in schedules:
        print(f"{args.city}: {sch.year} loaded: {len(sch.holidays)} days off, "
              f"{len(sch.workdays)} adjusted working days ({sch.source or 'no source given'}); "
              f"the supervision service uses it within CALENDAR_REFRESH_SECONDS")
    return 0


def cmd_calendar_show(args, s: Site) -> int:
    from datetime import UTC, datetime

    from sqlalchemy import select

    from services.common.workcal import (
        PACKAGE_FIRST_YEAR,
        PACKAGE_LAST_YEAR,
        WorkCalendar,
        parse_year,
    )
    from services.supervision.models import calendar_years

    engine = _engine(s, args.city)
    with engine.connect() as conn:
        rows = {r.year: r for r in conn.execute(select(calendar_years)).all()}
    engine.dispose()
    cal = WorkCalendar(years={y: parse_year(r.schedule) for y, r in rows.items()})
    this_year = datetime.now(UTC).year
    print(f"{args.city}: chinese-calendar knows {PACKAGE_FIRST_YEAR}-{PACKAGE_LAST_YEAR}; "
          f"loaded: {', '.join(map(str, sorted(rows))) or 'none'}; other years: fallback "
          f"(weekends + fixed-date statutory holidays)")
    for year in sorted({*range(this_year - 1, this_year + 3), *rows}):
        loaded = (f" (loaded {rows[year].loaded_at:%Y-%m-%d} by {rows[year].loaded_by})"
                  if year in rows else "")
        print(f"  {year}: {cal.source(year)}{loaded}")
    if args.year:
        doc = cal.describe(args.year)
        print(f"\n{args.year}: {doc['source']}: {doc['notice']}")
        for d in doc["holidays"]:
            print(f"  off      {d['date']}  {d['name']}")
        for d in doc["workdays"]:
            print(f"  working  {d['date']}  {d['name']}")
    return 0


def _serve(s: Site, demo: bool, foreground: bool) -> int:
    # The local platform lets the demo drive time (never set in docker-compose or k8s), and
    # keeps connection pools small: 30 processes share one local PostgreSQL.
    procs = platform.start(s, extra_env={"CLOCK_CONTROL": "true", "DB_POOL_SIZE": "3",
                                         "DB_MAX_OVERFLOW": "4"})
    try:
        platform.wait_ready(procs)
    except RuntimeError as exc:
        platform.stop(procs)
        print(f"start failed: {exc}", file=sys.stderr)
        return 1
    print("\nLiandong 联动 is up:")
    for city in CITY_CODES:
        print(f"  {city:<9} http://127.0.0.1:{s.gateway_port(city)}/docs  "
              f"(API /api/v1, OpenAPI /api/v1/openapi.json)")
    if demo:
        from liandong import demo as demo_day

        keys = demo_day.ensure_keys(s, platform.RUN_DIR / "demo-keys.json")
        demo_day.play(s, keys, run_no=demo_day.next_run_number(platform.RUN_DIR / "demo-runs"))
        print("\nDemo API keys (also in .run/demo-keys.json):")
        for org, key in keys.items():
            print(f"  {org}: {key}")
    if not foreground:
        print("\nServing in the background; `make down` stops it. Logs: .run/logs/")
        return 0
    print("\nServing until Ctrl-C. Logs: .run/logs/")
    try:
        while all(sp.proc.poll() is None for sp in procs):
            time.sleep(1)
        dead = [sp.name for sp in procs if sp.proc.poll() is not None]
        print(f"a service exited: {', '.join(dead)}; stopping", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping…")
        return 0
    finally:
        platform.stop(procs)
        for sp in procs:
            (platform.RUN_DIR / f"{sp.name}.pid").unlink(missing_ok=True)


def cmd_up(args, s: Site) -> int:
    platform.stop_from_pidfiles()
    return _serve(s, demo=True, foreground=False)


def cmd_run(args, s: Site) -> int:
    platform.stop_from_pidfiles()
    return _serve(s, demo=not args.no_demo, foreground=True)


def cmd_down(args, s: Site) -> int:
    n = platform.stop_from_pidfiles()
    print(f"stopped {n} process(es)")
    return 0


def cmd_demo(args, s: Site) -> int:
    from liandong import demo as demo_day

    demo_day.play(s, demo_day.ensure_keys(s, platform.RUN_DIR / "demo-keys.json"),
                  run_no=demo_day.next_run_number(platform.RUN_DIR / "demo-runs"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

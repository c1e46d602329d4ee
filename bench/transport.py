"""bench/transport: GPS positions per second through the transport service's device-gateway
queue (ingest + full evaluation + storage) and the delay from a position's arrival to its alert,
beside the raw kombu consume rate of the same messages, measured in the same run.

    python -m bench.transport [--vehicles 500] [--steps 240] [--per-message 100]

A fleet of permitted trucks drives its corridors (a position every 30 s of simulated time);
one truck in ten leaves its corridor for five minutes (a `route_deviation` each). Messages of
`--per-message` positions (what a device gateway forwards) are published as fast as possible to
`transport.positions`; one transport process consumes them in batches. Own vhost /bencht_taicang.
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from datetime import UTC, date, datetime, timedelta  # noqa: E402

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

from kombu import Connection, Exchange, Queue  # noqa: E402
from sqlalchemy import create_engine, insert, text  # noqa: E402

from bench.common import machine, result_line, summary_ms, table  # noqa: E402
from liandong import platform as launcher  # noqa: E402
from liandong import provision  # noqa: E402
from liandong.settings import Site  # noqa: E402
from services.transport.models import permits, sites, vehicles  # noqa: E402

SITE = Site(db_prefix="liandong_bencht_", vhost_prefix="/bencht_", port_offset=4500)
CITY = "taicang"
START = datetime(2026, 11, 20, 22, 0, tzinfo=UTC) - timedelta(hours=8)  # 22:00 Shanghai


def square(lon, lat, half=0.001):
    return {"type": "Polygon", "coordinates": [[
        [lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
        [lon - half, lat + half], [lon - half, lat - half]]]}


def fleet(n: int) -> list[dict]:
    """One truck per permit; corridors spread across Taicang (reproducible, no randomness)."""
    trucks = []
    for i in range(n):
        a = (121.03 + 0.0002 * (i % 100), 31.44 + 0.0003 * (i // 100))
        b = (a[0] + 0.12, a[1] + 0.07)
        trucks.append({"plate": f"苏E{i:05d}", "a": a, "b": b, "deviates": i % 10 == 3})
    return trucks


def register(trucks: list[dict]) -> None:
    engine = create_engine(SITE.database_url(CITY))
    with engine.begin() as conn:
        for t in trucks:
            o = {"id": f"o-{t['plate']}", "name": "origin", "kind": "construction",
                 "polygon": square(*t["a"])}
            d = {"id": f"d-{t['plate']}", "name": "disposal", "kind": "disposal",
                 "polygon": square(*t["b"])}
            conn.execute(insert(sites), [{**o, "city": CITY}, {**d, "city": CITY}])
            conn.execute(insert(vehicles).values(plate=t["plate"], plate_printed=t["plate"],
                                                 city=CITY))
            conn.execute(insert(permits).values(
                id=f"P-{t['plate']}", plate=t["plate"], origin=o, disposal=d,
                corridor=[list(t["a"]), list(t["b"])], width_m=40.0, windows=["22:00-05:00"],
                valid_from=date(2026, 11, 1), valid_to=date(2026, 11, 30),
                issuing_city=CITY, may_enter=[]))
    engine.dispose()


def positions(trucks: list[dict], steps: int) -> list[list[dict]]:
    """Per time step, every truck's position; deviating trucks are 400 m aside at steps 100-109."""
    out = []
    for s in range(steps):
        ts = (START + timedelta(seconds=30 * s)).isoformat()
        f = s / steps
        row = []
        for t in trucks:
            lon = t["a"][0] + (t["b"][0] - t["a"][0]) * f
            lat = t["a"][1] + (t["b"][1] - t["a"][1]) * f
            if t["deviates"] and 100 <= s < 110:
                lon, lat = lon + 0.003, lat - 0.003
            row.append({"plate": t["plate"], "ts": ts, "lon": round(lon, 7),
                        "lat": round(lat, 7), "crs": "WGS84", "speed_kmh": 40.0, "heading": 60})
        out.append(row)
    return out


def messages(steps: list[list[dict]], per_message: int) -> list[dict]:
    flat = [p for row in steps for p in row]
    return [{"positions": flat[i:i + per_message]} for i in range(0, len(flat), per_message)]


def through_service(msgs: list[dict], total: int, expected_alerts: int,
                    rate: float | None = None) -> dict:
    """Publish every message to transport.positions (as fast as possible, or paced at `rate`
    positions/s); wait until all are stored and the alerts seen on transport.events; delays
    are alert receipt − its message's publish time."""
    sent_at: dict[tuple[str, str], float] = {}
    alerts_at: list[tuple[dict, float]] = []
    with Connection(SITE.amqp_uri(CITY)) as conn:
        watch = Queue("bench.transport.alerts", Exchange("transport.events", type="topic",
                                                         durable=True),
                      routing_key="transport.alert_raised", auto_delete=True)
        ch = conn.channel()
        watch(ch).declare()
        watch(ch).purge()

        def on_alert(body, message):
            alerts_at.append((json.loads(body) if isinstance(body, str) else body,
                              time.monotonic()))
            message.ack()

        consumer = conn.Consumer(watch, callbacks=[on_alert], accept=["json"])
        consumer.consume()
        producer = conn.Producer(serializer="json")
        t0 = time.monotonic()
        sent = 0
        for m in msgs:
            if rate:
                delay = t0 + sent / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            sent += len(m["positions"])
            now = time.monotonic()
            for p in m["positions"]:
                sent_at[(p["plate"], p["ts"])] = now
            producer.publish(m, exchange="", routing_key="transport.positions",
                             delivery_mode=2)
        published = time.monotonic()
        engine = create_engine(SITE.database_url(CITY))
        stored = 0
        all_stored_at = None
        while True:
            try:
                conn.drain_events(timeout=0.2)
            except TimeoutError:
                pass
            except OSError:
                pass
            with engine.connect() as db:
                stored = db.execute(text("SELECT count(*) FROM transport.positions")).scalar()
            if stored >= total and len(alerts_at) >= expected_alerts:
                break
            if stored >= total and all_stored_at is None:
                all_stored_at = time.monotonic()
            if all_stored_at and time.monotonic() - all_stored_at > 20:
                break  # alerts missing: reported, not waited for forever
            if time.monotonic() - published > 300:
                break
        done = all_stored_at or time.monotonic()
        engine.dispose()
    delays = []
    for body, at in alerts_at:
        data = body["data"]
        key = (data["plate"], datetime.fromisoformat(data["at"]).isoformat())
        if key in sent_at:
            delays.append(at - sent_at[key])
    return {"rate": stored / (done - t0), "n": stored, "alerts": len(alerts_at),
            "publish_rate": total / (published - t0), **summary_ms(delays)}


def raw_consume(msgs: list[dict], total: int) -> dict:
    """The same messages through a bare kombu consumer (decode + ack), nothing else."""
    with Connection(SITE.amqp_uri(CITY)) as conn:
        q = Queue("bench.transport.raw", durable=True)
        ch = conn.channel()
        q(ch).declare()
        q(ch).purge()
        producer = conn.Producer(serializer="json")
        for m in msgs:
            producer.publish(m, exchange="", routing_key="bench.transport.raw", delivery_mode=2)
        count = [0]

        def on_message(body, message):
            count[0] += len(body["positions"])
            message.ack()

        consumer = conn.Consumer(q, callbacks=[on_message], accept=["json"],
                                 prefetch_count=2000)
        consumer.consume()
        t0 = time.monotonic()
        while count[0] < total:
            conn.drain_events(timeout=10)
        rate = total / (time.monotonic() - t0)
        consumer.cancel()
        q(ch).delete()
    return {"rate": rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vehicles", type=int, default=500)
    parser.add_argument("--steps", type=int, default=240)
    parser.add_argument("--per-message", type=int, default=100)
    parser.add_argument("--rate", type=float, default=None,
                        help="pace the publishing at this many positions/s (latency below "
                             "saturation); default: all at once (throughput)")
    args = parser.parse_args()

    provision.ensure_servers(SITE, allow_install=False)
    provision.drop_city(SITE, CITY)
    provision.provision_city(SITE, CITY)
    trucks = fleet(args.vehicles)
    register(trucks)
    steps = positions(trucks, args.steps)
    msgs = messages(steps, args.per_message)
    total = args.vehicles * args.steps
    expected = sum(1 for t in trucks if t["deviates"]) if args.steps > 110 else 0

    procs = launcher.start(SITE, (CITY,), ("transport",), {"LOG_LEVEL": "WARNING"},
                           run_dir=launcher.RUN_DIR / "bench-transport")
    try:
        launcher.wait_ready(procs)
        served = through_service(msgs, total, expected, args.rate)
    finally:
        launcher.stop(procs)
    raw = raw_consume(msgs, total)

    print(f"\nbench/transport on {machine()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(table([
        ("queue → ingest + evaluation + storage"
         + (f", paced at {args.rate:g}/s" if args.rate else ", all at once"),
         f"{served['rate']:.0f}",
         f"{served['p50']:.0f}", f"{served['p99']:.0f}",
         f"{served['n']} positions, {args.vehicles} trucks, {served['alerts']} alerts, "
         f"{args.per_message}/message, 1 transport process"),
        ("baseline: raw kombu consume, same messages", f"{raw['rate']:.0f}", "", "",
         f"{total} positions"),
    ], ("path", "positions/s", "alert p50 ms", "alert p99 ms", "notes")))
    print(result_line("transport", positions_rate=served["rate"],
                      alert_p50_ms=served["p50"], alert_p99_ms=served["p99"],
                      alerts=served["alerts"], expected_alerts=expected,
                      raw_kombu_rate=raw["rate"], ratio=served["rate"] / raw["rate"],
                      positions=served["n"], per_message=args.per_message,
                      vehicles=args.vehicles, paced_rate=args.rate or 0.0))


if __name__ == "__main__":
    main()

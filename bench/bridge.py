"""bench/bridge: signed events per second from Taicang to Jiading through the bridge (sign,
shovel, verify, dedup, re-publish) and the end-to-end latency, beside a raw shovel of the same
messages unsigned, measured in the same run.

    python -m bench.bridge [--events 5000] [--replicas 1]

Taicang's bridge signs `lead.handed_over` events published on its `leads.events` (as the leads
service does); Jiading's bridge verifies them and re-publishes on `bridge.events`, where this
process counts them. Own vhosts /benchb_taicang, /benchb_jiading.
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
import warnings  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from urllib.parse import quote  # noqa: E402

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

from kombu import Connection, Exchange, Producer, Queue  # noqa: E402

from bench.common import machine, result_line, summary_ms, table  # noqa: E402
from contracts.envelope import Event  # noqa: E402
from liandong import platform as launcher  # noqa: E402
from liandong import provision  # noqa: E402
from liandong.settings import Site  # noqa: E402
from services.common.topology import management_session  # noqa: E402

SITE = Site(db_prefix="liandong_benchb_", vhost_prefix="/benchb_", port_offset=4000)
CITIES = ("taicang", "jiading")


def handover(i: int) -> dict:
    lon, lat = 121.16 + (i % 100) * 0.0011, 31.36 + (i // 100 % 50) * 0.0011
    return Event(type="lead.handed_over", version=1, source="taicang/leads", city="taicang",
                 subject=str(uuid.uuid4()), data={
                     "lead_id": uuid.uuid4(), "from_city": "taicang", "to_city": "jiading",
                     "category": "illegal_dumping", "description": "基准 bench",
                     "location": {"lon": lon, "lat": lat}, "address": None,
                     "occurred_at": datetime.now(UTC), "submitted_at": datetime.now(UTC),
                     "evidence": [], "camera": None, "source_org": "bench",
                     "source_ref": f"B{i}"}).to_wire()


def run_through(exchange: str, routing_key: str, bodies: list[dict], sink_uri: str,
                sink_exchange: str, sink_type: str, key: str, rate: float | None = None) -> dict:
    """Publish `bodies` in Taicang (as fast as possible, or at `rate` per second) and time
    their arrival at a queue bound in Jiading."""
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    with Connection(sink_uri) as sink:
        channel = sink.channel()
        queue = Queue(f"bench-sink-{uuid.uuid4().hex[:6]}",
                      Exchange(sink_exchange, type=sink_type, durable=True),
                      routing_key=key, exclusive=True, auto_delete=True)
        queue(channel).declare()
        done = eventlet.event.Event()

        def on_message(body, message):
            ident = (json.loads(body) if isinstance(body, (str, bytes)) else body)["id"]
            latencies.append(time.perf_counter() - sent_at[ident])
            message.ack()
            if len(latencies) == len(bodies):
                done.send(time.perf_counter())

        consumer = sink.Consumer(queue, callbacks=[on_message], accept=["json"])
        consumer.qos(prefetch_count=500)
        consumer.consume()

        def drain():
            while not done.ready():
                try:
                    sink.drain_events(timeout=1)
                except TimeoutError:
                    pass

        drainer = eventlet.spawn(drain)
        with Connection(SITE.amqp_uri("taicang")) as src:
            producer = Producer(src.channel())
            t0 = time.perf_counter()
            for i, body in enumerate(bodies):
                if rate:
                    delay = t0 + i / rate - time.perf_counter()
                    if delay > 0:
                        eventlet.sleep(delay)
                sent_at[body["id"]] = time.perf_counter()
                producer.publish(body, exchange=exchange, routing_key=routing_key,
                                 serializer="json", delivery_mode=2)
        with eventlet.Timeout(max(60, len(bodies) / 20)):
            finished = done.wait()
        drainer.wait()
    return {"rate": len(bodies) / (finished - t0), "n": len(bodies), **summary_ms(latencies)}


def raw_shovel_link() -> None:
    """A plain shovel between the same vhosts: bench.raw.out (Taicang) → bench.raw.in (Jiading)."""
    session, base = management_session(SITE.management_url())
    src, dst = SITE.vhost("taicang"), SITE.vhost("jiading")
    with Connection(SITE.amqp_uri("taicang")) as c:
        Queue("bench.raw.out", durable=True)(c.channel()).declare()
    with Connection(SITE.amqp_uri("jiading")) as c:
        Exchange("bench.raw.in", type="fanout", durable=True)(c.channel()).declare()
    dest = (f"amqp://{SITE.rabbit_user}:{SITE.rabbit_password}@{SITE.rabbit_host}:"
            f"{SITE.rabbit_port}/{quote(dst, safe='')}")
    session.put(f"{base}/api/parameters/shovel/{quote(src, safe='')}/bench-raw", json={"value": {
        "src-protocol": "amqp091", "src-uri": "amqp:///" + quote(src, safe=""),
        "src-queue": "bench.raw.out", "dest-protocol": "amqp091", "dest-uri": dest,
        "dest-exchange": "bench.raw.in", "ack-mode": "on-confirm", "prefetch-count": 1000,
    }}).raise_for_status()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states = session.get(f"{base}/api/shovels/{quote(src, safe='')}").json()
        if any(s["name"] == "bench-raw" and s.get("state") == "running" for s in states):
            return
        time.sleep(0.2)
    raise RuntimeError("raw shovel did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--replicas", type=int, default=1, help="bridge processes per city")
    parser.add_argument("--rate", type=float, default=200,
                        help="fixed rate (events/s) for the latency measurement")
    args = parser.parse_args()

    provision.ensure_servers(SITE, allow_install=False)
    for city in CITIES:
        provision.drop_city(SITE, city)
        provision.provision_city(SITE, city)
    provision.link_cities(SITE, CITIES)
    raw_shovel_link()

    procs = launcher.start(SITE, CITIES, ("bridge",), {"LOG_LEVEL": "WARNING"},
                           run_dir=launcher.RUN_DIR / "bench-bridge",
                           replicas={"bridge": args.replicas})
    try:
        launcher.wait_ready(procs)
        run_through("leads.events", "lead.handed_over", [handover(i) for i in range(200)],
                    SITE.amqp_uri("jiading"), "bridge.events", "topic", "lead.handed_over")
        bridged = run_through("leads.events", "lead.handed_over",
                              [handover(i) for i in range(args.events)],
                              SITE.amqp_uri("jiading"), "bridge.events", "topic",
                              "lead.handed_over")
        steady = run_through("leads.events", "lead.handed_over",
                             [handover(i) for i in range(int(args.rate * 15))],
                             SITE.amqp_uri("jiading"), "bridge.events", "topic",
                             "lead.handed_over", rate=args.rate)
    finally:
        launcher.stop(procs)
    raw = run_through("", "bench.raw.out", [handover(i) for i in range(args.events)],
                      SITE.amqp_uri("jiading"), "bench.raw.in", "fanout", "")

    print(f"\nbench/bridge on {machine()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(table([
        ("signed: sign → shovel → verify → re-publish", f"{bridged['rate']:.0f}",
         f"{bridged['p50']:.1f}", f"{bridged['p99']:.1f}",
         f"{bridged['n']} events, {args.replicas} bridge process(es) per city"),
        (f"signed at a fixed {args.rate:g} events/s (latency)", f"{steady['rate']:.0f}",
         f"{steady['p50']:.1f}", f"{steady['p99']:.1f}", f"{steady['n']} events over 15 s"),
        ("baseline: raw shovel, same messages unsigned", f"{raw['rate']:.0f}",
         f"{raw['p50']:.1f}", f"{raw['p99']:.1f}", f"{raw['n']} messages"),
    ], ("path", "events/s", "p50 ms", "p99 ms", "notes")))
    print(result_line("bridge", signed_rate=bridged["rate"], signed_p50_ms=bridged["p50"],
                      signed_p99_ms=bridged["p99"], fixed_rate=args.rate,
                      fixed_p50_ms=steady["p50"], fixed_p99_ms=steady["p99"],
                      raw_shovel_rate=raw["rate"],
                      raw_p50_ms=raw["p50"], raw_p99_ms=raw["p99"],
                      ratio=bridged["rate"] / raw["rate"], events=args.events,
                      replicas=args.replicas))


if __name__ == "__main__":
    main()

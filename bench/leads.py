"""bench/leads: leads per second from HTTP POST to routed and stored, latency at a fixed rate,
and nameko's raw event rate on the same machine in the same run.

    python -m bench.leads [--seconds 20] [--concurrency 32] [--rate 50]

Runs its own city (vhost /bench_taicang, database liandong_bench_taicang) with the real gateway
and leads processes, and drives it over HTTP from green threads in this process.
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
import warnings  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from http.client import HTTPConnection  # noqa: E402

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

from bench.common import machine, result_line, summary_ms, table  # noqa: E402
from contracts.reference import CATEGORY_CODES  # noqa: E402
from liandong import platform as launcher  # noqa: E402
from liandong import provision  # noqa: E402
from liandong.settings import Site  # noqa: E402

SITE = Site(db_prefix="liandong_bench_", vhost_prefix="/bench_", port_offset=2000)
CITY = "taicang"
ORIGIN = (121.02, 31.42)  # a grid of distinct points across Taicang, 120 m apart


class Driver:
    def __init__(self, port: int, key: str):
        self.port, self.key = port, key
        self.counter = itertools.count()
        self.pool: eventlet.queue.LightQueue = eventlet.queue.LightQueue()
        self.started = datetime.now(UTC)

    def _conn(self) -> HTTPConnection:
        try:
            return self.pool.get_nowait()
        except eventlet.queue.Empty:
            return HTTPConnection("127.0.0.1", self.port, timeout=30)

    def body(self) -> bytes:
        i = next(self.counter)
        lon = ORIGIN[0] + (i % 80) * 0.00125
        lat = ORIGIN[1] + (i // 80 % 80) * 0.00110
        return json.dumps({
            "source_ref": f"B-{uuid.uuid4().hex}",
            "category": CATEGORY_CODES[i % len(CATEGORY_CODES)],
            "description": "基准测试线索 benchmark lead",
            "location": {"lon": lon, "lat": lat, "crs": "WGS84"},
            "occurred_at": (self.started - timedelta(minutes=i % 600)).isoformat(),
        }).encode()

    def post(self) -> tuple[int, float]:
        body = self.body()
        conn = self._conn()
        t0 = time.perf_counter()
        try:
            conn.request("POST", "/api/v1/leads", body, {
                "Authorization": f"Bearer {self.key}", "Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except OSError:
            conn.close()
            return 0, time.perf_counter() - t0
        self.pool.put(conn)
        return status, time.perf_counter() - t0


def sustained(driver: Driver, seconds: float, concurrency: int) -> dict:
    """Closed loop: `concurrency` clients post as fast as the platform answers."""
    deadline = time.perf_counter() + seconds
    statuses: dict[int, int] = {}
    latencies: list[float] = []

    def client():
        while time.perf_counter() < deadline:
            status, latency = driver.post()
            statuses[status] = statuses.get(status, 0) + 1
            latencies.append(latency)

    t0 = time.perf_counter()
    pool = eventlet.GreenPool(concurrency)
    for _ in range(concurrency):
        pool.spawn(client)
    pool.waitall()
    elapsed = time.perf_counter() - t0
    ok = statuses.get(201, 0)
    return {"rate": ok / elapsed, "ok": ok, "statuses": statuses, "elapsed": elapsed,
            **summary_ms(latencies)}


def fixed_rate(driver: Driver, seconds: float, rate: float) -> dict:
    """Open loop: one request every 1/rate s; latency counted from the scheduled send time."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    interval = 1.0 / rate
    start = time.perf_counter()
    n = int(seconds * rate)
    pool = eventlet.GreenPool(1000)

    def one(scheduled: float):
        status, _ = driver.post()
        latencies.append(time.perf_counter() - scheduled)
        statuses[status] = statuses.get(status, 0) + 1

    for i in range(n):
        scheduled = start + i * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            eventlet.sleep(delay)
        pool.spawn(one, scheduled)
    pool.waitall()
    return {"sent": n, "statuses": statuses, **summary_ms(latencies)}


def nameko_raw_event_rate(n: int = 5000) -> dict:
    """Baseline: nameko's own dispatch → event_handler rate on this broker (no database)."""
    from nameko import config
    from nameko.containers import ServiceContainer
    from nameko.events import event_handler
    from nameko.standalone.events import event_dispatcher

    place = "rawevents"
    provision.drop_city(SITE, place)
    provision.ensure_vhost(SITE, place)
    done = eventlet.event.Event()
    seen = {"n": 0}

    class RawConsumer:
        name = "raw_consumer"

        @event_handler("raw_producer", "tick")
        def on_tick(self, payload):
            seen["n"] += 1
            if seen["n"] == n:
                done.send(time.perf_counter())

    with config.patch({"AMQP_URI": SITE.amqp_uri(place), "max_workers": 20}):
        container = ServiceContainer(RawConsumer)
        container.start()
        dispatch = event_dispatcher()
        t0 = time.perf_counter()
        for i in range(n):
            dispatch("raw_producer", "tick", {"i": i})
        published = time.perf_counter()
        finished = done.wait()
        container.stop()
    return {"rate": n / (finished - t0), "publish_rate": n / (published - t0), "n": n}


def create_key() -> str:
    from sqlalchemy import create_engine

    from services.common.config import setting
    from services.gateway.keys import create_key as make

    engine = create_engine(SITE.database_url(CITY))
    with engine.begin() as conn:
        _, key = make(conn, CITY, "Bench Source 基准", ["source"], setting("APIKEY_PEPPER"))
    engine.dispose()
    return key


def stored_count() -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(SITE.database_url(CITY))
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM leads.leads")).scalar()
    engine.dispose()
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--leads-replicas", type=int, default=2,
                        help="leads processes (competing consumers), as k8s runs 2 replicas")
    args = parser.parse_args()

    provision.ensure_servers(SITE, allow_install=False)
    provision.drop_city(SITE, CITY)
    provision.provision_city(SITE, CITY)
    procs = launcher.start(SITE, (CITY,), ("leads", "gateway"), {"LOG_LEVEL": "WARNING"},
                           run_dir=launcher.RUN_DIR / "bench",
                           replicas={"leads": args.leads_replicas})
    try:
        launcher.wait_ready(procs)
        driver = Driver(SITE.gateway_port(CITY), create_key())
        sustained(driver, 3, args.concurrency)  # warm-up
        before = stored_count()
        load = sustained(driver, args.seconds, args.concurrency)
        stored = stored_count() - before
        steady = fixed_rate(driver, args.seconds, args.rate)
    finally:
        launcher.stop(procs)
    raw = nameko_raw_event_rate()

    print(f"\nbench/leads on {machine()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(table([
        ("sustained leads/s (POST → routed + stored)", f"{load['rate']:.0f}",
         f"{load['p50']:.1f}", f"{load['p99']:.1f}",
         f"{args.concurrency} clients, {args.leads_replicas} leads + 1 gateway processes, "
         f"{load['elapsed']:.0f} s, {load['ok']} stored "
         f"(db +{stored}), statuses {load['statuses']}"),
        (f"fixed rate {args.rate:g} leads/s", f"{args.rate:g}", f"{steady['p50']:.1f}",
         f"{steady['p99']:.1f}", f"{steady['sent']} sent, statuses {steady['statuses']}"),
        ("baseline: nameko raw events/s (dispatch → handler)", f"{raw['rate']:.0f}", "", "",
         f"{raw['n']} events, publish alone {raw['publish_rate']:.0f}/s"),
    ], ("measure", "rate/s", "p50 ms", "p99 ms", "notes")))
    print(result_line("leads", sustained_rate=load["rate"], sustained_p50_ms=load["p50"],
                      sustained_p99_ms=load["p99"], fixed_rate=float(args.rate),
                      fixed_p50_ms=steady["p50"], fixed_p99_ms=steady["p99"],
                      nameko_raw_event_rate=raw["rate"], stored=stored,
                      leads_replicas=args.leads_replicas))


if __name__ == "__main__":
    main()

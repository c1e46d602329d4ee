"""bench/supervision: the cost of one due-scan tick and the delay from a notice's due time to its
issue, with 10,000 and with 1,000,000 open deadlines in the table.

    python -m bench.supervision [--sizes 10000,1000000] [--due 100] [--ticks 30] [--stream 200]

Runs its own city (vhost /bench_taicang, database liandong_bench_taicang). For each size:
1. the deadlines table is seeded with one INSERT ... SELECT generate_series (open deadlines due
   in 30+ days) and analysed;
2. tick time, in this process, with the service's own code (`SupervisionStore.scan` + commit):
   a tick with nothing due, and a tick that claims `--due` due deadlines and issues their
   notices (with their outbox events); plus the claim query's plan;
3. due → notice delay, with the real supervision process (timer every SUPERVISION_TICK_SECONDS,
   1 s): `--stream` deadlines fall due over 10 s; delay = notice row written − step due time.
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

from nameko import config  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.common import machine, percentile, result_line, table  # noqa: E402
from liandong import platform as launcher  # noqa: E402
from liandong import provision  # noqa: E402
from liandong.settings import Site  # noqa: E402

SITE = Site(db_prefix="liandong_bench_", vhost_prefix="/bench_", port_offset=2000)
CITY = "taicang"

SEED = text("""
INSERT INTO supervision.deadlines (case_id, case_no, category, kind, seq, squad, town,
    started_at, limit_text, limit_hours, due_at, remind_at, status, steps, steps_done, next_at)
SELECT gen_random_uuid(), 'BENCH-' || g, 'exposed_garbage', 'disposal', 1,
    'taicang-squad-' || (g % 11), 'town', now(), '1 working_days', 7.5, t, t, 'pending',
    jsonb_build_array(
        jsonb_build_object('kind', 'reminder', 'level', 0, 'at',
                           to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')),
        jsonb_build_object('kind', 'order', 'level', 1, 'at',
                           to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'))),
    0, t
FROM (SELECT g, now() + make_interval(secs => :offset_s + g * :spacing_s) AS t
      FROM generate_series(1, :n) AS g) AS due
""")
CLAIM_PLAN = text("""
EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)
SELECT id FROM supervision.deadlines
WHERE deadlines.status = 'pending' AND deadlines.next_at IS NOT NULL AND next_at <= now()
ORDER BY next_at LIMIT 500 FOR UPDATE SKIP LOCKED
""")


def bench_config() -> dict:
    return {"DATABASE_URL": SITE.database_url(CITY), "AMQP_URI": SITE.amqp_uri(CITY),
            "CITY": CITY, "CLOCK_CONTROL": "false"}


class InProcess:
    """The service's scan, run here against the bench database."""

    def __init__(self):
        from sqlalchemy.orm import sessionmaker

        from services.common.clock import Clock
        from services.common.db import make_engine
        from services.supervision.models import metadata
        from services.supervision.store import SupervisionRules

        with config.patch(bench_config()):
            self.engine = make_engine()
            self.rules = SupervisionRules()
            self.rules.setup()
            self.clock = Clock()
            self.clock.setup()
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        self.tables = (metadata.tables["supervision.outbox"], metadata.tables["supervision.inbox"])

    def tick(self) -> tuple[float, int]:
        """One tick as the timer runs it: scan at now, then commit. (seconds, notices)"""
        from services.common.db import UnitOfWork
        from services.supervision.store import SupervisionStore

        with config.patch(bench_config()):
            session = self.Session()
            unit = UnitOfWork(session, self.tables, f"{CITY}/supervision", CITY, {})
            started = time.perf_counter()
            issued = SupervisionStore(unit, self.clock, self.rules).scan(self.clock.now())
            session.commit()
            elapsed = time.perf_counter() - started
            session.close()
        return elapsed, issued

    def close(self):
        self.rules.stop()
        self.engine.dispose()


def sql(statement, **params):
    with launcher_engine().begin() as conn:
        return conn.execute(text(statement) if isinstance(statement, str) else statement,
                            params)


_engine = None


def launcher_engine():
    global _engine
    if _engine is None:
        from sqlalchemy import create_engine

        _engine = create_engine(SITE.database_url(CITY))
    return _engine


def reset_and_seed(n: int) -> float:
    sql("TRUNCATE supervision.notices, supervision.deadlines, supervision.outbox "
        "RESTART IDENTITY CASCADE")
    started = time.perf_counter()
    sql(SEED, n=n, offset_s=30 * 86400, spacing_s=1)
    seconds = time.perf_counter() - started
    sql("ANALYZE supervision.deadlines")
    return seconds


def claim_plan() -> dict:
    plan = sql(CLAIM_PLAN).scalar()[0]
    nodes, node = [], plan["Plan"]
    while node:
        nodes.append(node["Node Type"] + (f" on {node['Index Name']}"
                                          if "Index Name" in node else ""))
        node = (node.get("Plans") or [None])[0]
    return {"nodes": " → ".join(nodes), "ms": plan["Execution Time"]}


def ticks(runner: InProcess, count: int) -> list[float]:
    return [runner.tick()[0] * 1000 for _ in range(count)]


def due_tick(runner: InProcess, due: int) -> tuple[float, int]:
    sql(SEED, n=due, offset_s=-3600, spacing_s=0.001)  # `due` deadlines already due
    elapsed, issued = runner.tick()
    return elapsed * 1000, issued


def stream_delay(stream: int) -> dict:
    """Start the real service; `stream` deadlines fall due over 10 s; the delay of each notice."""
    procs = launcher.start(SITE, (CITY,), ("supervision",), {"LOG_LEVEL": "WARNING"},
                           run_dir=launcher.RUN_DIR / "bench")
    try:
        launcher.wait_ready(procs)
        sql("DELETE FROM supervision.notices")
        sql(SEED, n=stream, offset_s=2, spacing_s=10 / stream)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = sql("SELECT count(*) FROM supervision.notices WHERE kind = 'order'").scalar()
            if done >= stream:
                break
            time.sleep(0.2)
        delays = [float(row[0]) * 1000 for row in sql(
            "SELECT extract(epoch FROM created_at - scheduled_at) FROM supervision.notices "
            "WHERE kind = 'order'").all()]
    finally:
        launcher.stop(procs)
    return {"n": len(delays), "p50": percentile(delays, 50), "p99": percentile(delays, 99),
            "max": max(delays, default=float("nan"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--due", type=int, default=100, help="deadlines due in the busy tick")
    parser.add_argument("--ticks", type=int, default=30, help="empty ticks timed per size")
    parser.add_argument("--stream", type=int, default=200,
                        help="deadlines falling due over 10 s for the delay measure")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    from services.common.logging import configure_logging

    configure_logging("bench", CITY, "WARNING")  # the in-process scans log like the service

    provision.ensure_servers(SITE, allow_install=False)
    provision.drop_city(SITE, CITY)
    provision.provision_city(SITE, CITY)
    results = {}
    for n in sizes:
        seeded_s = reset_and_seed(n)
        runner = InProcess()
        try:
            ticks(runner, 3)  # warm-up (connections, statement cache)
            empty = ticks(runner, args.ticks)
            plan = claim_plan()
            busy_ms, issued = due_tick(runner, args.due)
        finally:
            runner.close()
        delay = stream_delay(args.stream)
        results[n] = {"seed_s": seeded_s, "empty_p50": statistics.median(empty),
                      "empty_p99": percentile(empty, 99), "busy_ms": busy_ms, "issued": issued,
                      "plan": plan, "delay": delay}
        print(f"  {n:>9,} open deadlines: seeded in {seeded_s:.1f} s, tick "
              f"{results[n]['empty_p50']:.2f} ms, plan {plan['nodes']}", flush=True)

    print(f"\nbench/supervision on {machine()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    rows = []
    for n, r in results.items():
        rows.append((f"{n:,}", f"{r['empty_p50']:.2f} / {r['empty_p99']:.2f}",
                     f"{r['busy_ms']:.1f} ({r['issued']} notices)",
                     f"{r['delay']['p50']:.0f} / {r['delay']['p99']:.0f} / "
                     f"{r['delay']['max']:.0f}", f"{r['plan']['ms']:.3f}", r["plan"]["nodes"]))
    print(table(rows, ("open deadlines", "empty tick p50/p99 ms",
                       f"tick with {args.due} due, ms", "due→notice p50/p99/max ms",
                       "claim query ms", "claim plan")))
    line = {}
    for n, r in results.items():
        tag = "small" if n == min(sizes) else "large"
        line.update({f"open_{tag}": n, f"tick_empty_p50_ms_{tag}": r["empty_p50"],
                     f"tick_empty_p99_ms_{tag}": r["empty_p99"],
                     f"tick_{args.due}_due_ms_{tag}": r["busy_ms"],
                     f"delay_p50_ms_{tag}": r["delay"]["p50"],
                     f"delay_p99_ms_{tag}": r["delay"]["p99"]})
    print(result_line("supervision", **line))


if __name__ == "__main__":
    main()

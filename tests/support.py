"""Helpers for tests on the real broker and database: test cities, keys, event observers."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import requests
from kombu import Connection, Exchange, Queue
from sqlalchemy import create_engine, text

from contracts.reference import CITY_CODES
from liandong import platform as launcher
from liandong import provision
from liandong.settings import SERVICES, Site

# LIANDONG_TEST_ISOLATION=n gives a run its own vhosts, databases, ports and log directory, so
# two suites can run side by side on one machine (e.g. two engineers in one tree).
ISOLATION = os.environ.get("LIANDONG_TEST_ISOLATION", "")


def isolated_site(name: str, port_offset: int) -> Site:
    """The site of a test platform: vhost `/<name>_<city>`, database `liandong_<name>_<city>`."""
    n = int(ISOLATION or 0)
    tag = f"{name}{n}" if n else name
    return Site(db_prefix=f"liandong_{tag}_", vhost_prefix=f"/{tag}_",
                port_offset=port_offset + 4000 * n)  # below the ephemeral ports


TEST_SITE = isolated_site("test", 1000)
PEPPER = "liandong-local-pepper"  # deploy/nameko.yml default
RUN_DIR = Path(f"/tmp/liandong-test-run{ISOLATION}")
# Every test platform lets tests drive time (set_clock / scan RPCs of cases and supervision),
# anchors the record every 2 s and re-reads loaded calendar years every second. Small
# connection pools: 25 service processes of five cities share one local PostgreSQL
# (max_connections 100).
TEST_ENV = {"CLOCK_CONTROL": "true", "ANCHOR_INTERVAL_SECONDS": "2",
            "CALENDAR_REFRESH_SECONDS": "1", "DB_POOL_SIZE": "2",
            "DB_MAX_OVERFLOW": "3"}

# Points well inside each city (WGS84): Taicang 城厢镇, Jiading 外冈镇 field, Kunshan 玉山镇.
TAICANG = (121.1012, 31.4521)
JIADING = (121.1630, 31.3790)
OUTSIDE = (121.4900, 31.2300)  # Huangpu, Shanghai: none of the five


def wait_for(predicate: Callable, timeout: float = 15, interval: float = 0.05, what: str = ""):
    """Poll `predicate` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


class CityPlatform:
    """Test cities provisioned from scratch and their service processes."""

    def __init__(self, site: Site, cities=("taicang",), services=SERVICES,
                 extra_env: dict | None = None):
        self.site, self.cities, self.services = site, tuple(cities), tuple(services)
        self.extra_env = {**TEST_ENV, **(extra_env or {})}
        self.procs: list = []
        self._engines: dict = {}
        self._keys: dict = {}

    # lifecycle ---------------------------------------------------------------------------
    def provision(self) -> None:
        provision.ensure_servers(self.site, allow_install=False)
        for city in self.cities:
            provision.drop_city(self.site, city)
            provision.provision_city(self.site, city)
        provision.link_cities(self.site, self.cities)

    def start(self, provision_first: bool = True) -> None:
        if provision_first:
            self.provision()
        self.procs = launcher.start(self.site, self.cities, self.services, self.extra_env,
                                    run_dir=RUN_DIR)
        try:
            launcher.wait_ready(self.procs)
        except RuntimeError:
            launcher.stop(self.procs)  # leave no process behind when one fails to start
            raise

    def stop(self) -> None:
        launcher.stop(self.procs)
        for engine in self._engines.values():
            engine.dispose()

    def process(self, city: str, service: str):
        return next(p for p in self.procs if p.city == city and p.service == service)

    def restart(self, city: str, service: str, extra_env: dict | None = None):
        old = self.process(city, service)
        launcher.stop([old])
        self.procs.remove(old)
        new = launcher.start(self.site, (city,), (service,), extra_env or self.extra_env,
                             run_dir=RUN_DIR)
        launcher.wait_ready(new, 60)
        self.procs.extend(new)
        return new[0]

    def restart_fresh(self, city: str, service: str):
        """Start a service whose previous process is already gone."""
        new = launcher.start(self.site, (city,), (service,), self.extra_env, run_dir=RUN_DIR)
        launcher.wait_ready(new, 60)
        self.procs.extend(new)
        return new[0]

    # access ------------------------------------------------------------------------------
    def url(self, city: str) -> str:
        return f"http://127.0.0.1:{self.site.gateway_port(city)}"

    def service_url(self, city: str, service: str) -> str:
        return f"http://127.0.0.1:{self.site.service_port(service, city)}"

    def engine(self, city: str):
        if city not in self._engines:
            self._engines[city] = create_engine(self.site.database_url(city))
        return self._engines[city]

    def scalar(self, city: str, sql: str, **params):
        with self.engine(city).connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def key(self, city: str, org: str, *roles: str) -> str:
        """An API key of a (new or existing) organisation; cached per test session."""
        from services.gateway.keys import create_key

        cache_key = (city, org, roles)
        if cache_key not in self._keys:
            with self.engine(city).begin() as conn:
                _, key = create_key(conn, city, org, list(roles), PEPPER)
            self._keys[cache_key] = key
        return self._keys[cache_key]

    def client(self, city: str, org: str, *roles: str) -> ApiClient:
        return ApiClient(self.url(city), self.key(city, org, *roles))

    def rpc(self, city: str, service: str, method: str, *args, timeout: float = 20):
        """Call a service of a city by RPC (what tests use to freeze time or scan at an
        instant)."""
        from nameko.standalone.rpc import ClusterRpcClient

        with ClusterRpcClient(timeout=timeout, uri=self.site.amqp_uri(city)) as client:
            return getattr(getattr(client, service), method)(*args)

    def add_replica(self, city: str, service: str, replica: int = 1,
                    extra_env: dict | None = None):
        """Start one more process of a running service (a competing consumer)."""
        new = launcher.start(self.site, (city,), (service,),
                             {**self.extra_env, **(extra_env or {})}, run_dir=RUN_DIR,
                             replicas={service: replica + 1}, first_replica=replica)
        launcher.wait_ready(new, 60)
        self.procs.extend(new)
        return new[0]

    def observe(self, city: str, exchange: str = "leads.events", routing_key: str = "#"):
        return Observer(self.site.amqp_uri(city), exchange, routing_key)


class ApiClient:
    def __init__(self, base: str, key: str | None):
        self.base = base
        self.session = requests.Session()
        if key:
            self.session.headers["Authorization"] = f"Bearer {key}"

    def request(self, method: str, path: str, **kw) -> requests.Response:
        return self.session.request(method, self.base + path, timeout=30, **kw)

    def post(self, path: str, body=None, **kw) -> requests.Response:
        return self.request("POST", path, json=body, **kw)

    def get(self, path: str, **kw) -> requests.Response:
        return self.request("GET", path, **kw)


class Observer:
    """A temporary queue bound to an exchange: what was published there, in order."""

    def __init__(self, amqp_uri: str, exchange: str, routing_key: str = "#"):
        self.conn = Connection(amqp_uri)
        self.channel = self.conn.channel()
        self.queue = Queue(f"test-observer-{uuid.uuid4().hex[:8]}",
                           Exchange(exchange, type="topic", durable=True),
                           routing_key=routing_key, exclusive=True, auto_delete=True)
        self.queue(self.channel).declare()
        self.seen: list[dict] = []

    def drain(self) -> list[dict]:
        while True:
            message = self.queue(self.channel).get(no_ack=True)
            if message is None:
                return self.seen
            self.seen.append(json.loads(message.body))

    def wait(self, predicate: Callable[[dict], bool], timeout: float = 15, what: str = ""):
        return wait_for(lambda: [e for e in self.drain() if predicate(e)], timeout,
                        what=what or "an event")

    def close(self) -> None:
        self.conn.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def lead_body(point=TAICANG, category="exposed_garbage", **overrides) -> dict:
    from datetime import UTC, datetime, timedelta

    body = {
        "source_ref": f"REF-{uuid.uuid4().hex[:12]}",
        "category": category,
        "description": "小区门口暴露垃圾 Exposed garbage at the gate",
        "location": {"lon": point[0], "lat": point[1], "crs": "WGS84"},
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
        "evidence": [{"uri": "https://evidence.example/1.jpg", "sha256": "a" * 64}],
    }
    body.update(overrides)
    return body


_points = iter(range(10**6))


def unique_point(base=TAICANG, step_m: float = 150) -> tuple[float, float]:
    """A fresh point on a 150 m grid around `base` (20 x 20 cells), so tests never merge into
    each other's leads (the dedup radius is 50 m)."""
    i = next(_points) % 400
    d = step_m / 111_000
    return (base[0] + (i % 20 - 10) * d, base[1] + (i // 20 - 10) * d)


__all__ = ["CITY_CODES"]


# cases and supervision ----------------------------------------------------------------------

EVIDENCE = [{"uri": "https://evidence.example/after.jpg", "sha256": "c" * 64}]


def open_case(platform: CityPlatform, city: str = "taicang", category: str = "exposed_garbage",
              point=None) -> dict:
    """A lead submitted and accepted in `city`; returns the case it opened."""
    base = TAICANG if city == "taicang" else JIADING
    source = platform.client(city, "Case Test Source 案件测试来源", "source")
    bureau = platform.client(city, "Case Test Bureau 案件测试局", "bureau")
    lead = source.post("/api/v1/leads", lead_body(point=point or unique_point(base),
                                                  category=category)).json()
    r = bureau.post(f"/api/v1/leads/{lead['id']}/decision", {"decision": "accept"})
    assert r.status_code == 200, r.text
    return wait_for(lambda: bureau.get(f"/api/v1/cases?lead_id={lead['id']}").json()["items"],
                    what="the case of the accepted lead")[0]


def case_roles(platform: CityPlatform, city: str = "taicang") -> dict[str, ApiClient]:
    return {"squad": platform.client(city, "Case Test Squad 测试中队", "squad"),
            "supervisor": platform.client(city, "Case Test Supervisor 测试督查", "supervisor"),
            "bureau": platform.client(city, "Case Test Bureau 案件测试局", "bureau"),
            "source": platform.client(city, "Case Test Source 案件测试来源", "source")}


def supervision_of(platform: CityPlatform, case_id: str, predicate=lambda loop: True,
                   city: str = "taicang", what: str = "supervision of the case") -> dict:
    """The case's loop (deadlines, notices) once `predicate` holds for it."""
    bureau = platform.client(city, "Case Test Bureau 案件测试局", "bureau")

    def ready():
        r = bureau.get(f"/api/v1/supervision/cases/{case_id}")
        return r.json() if r.status_code == 200 and predicate(r.json()) else None

    return wait_for(ready, what=what)


def deadline(loop: dict, kind: str, seq: int = 1) -> dict | None:
    return next((d for d in loop["deadlines"] if d["kind"] == kind and d["seq"] == seq), None)

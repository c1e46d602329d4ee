"""Helpers for tests on the real broker and database: test cities, keys, event observers."""

from __future__ import annotations

import json
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

TEST_SITE = Site(db_prefix="liandong_test_", vhost_prefix="/test_", port_offset=1000)
PEPPER = "liandong-local-pepper"  # deploy/nameko.yml default
RUN_DIR = Path("/tmp/liandong-test-run")

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
        self.extra_env = extra_env or {}
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
        launcher.wait_ready(self.procs, 90)

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

"""`/healthz`, `/readyz` and `/metrics` on every service, and per-worker timing.

A service class inherits `Observable`; nameko collects inherited entrypoints and dependencies.
"""

from __future__ import annotations

import json
import time
import weakref

from kombu import Connection
from nameko.extensions import DependencyProvider
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from werkzeug.wrappers import Response

from services.common.config import setting
from services.common.entrypoints import http
from services.common.logging import Logger
from services.common.metrics import HANDLER_SECONDS


class Readiness(DependencyProvider):
    """Answers whether the broker and the database are reachable (cached for a second)."""

    def setup(self):
        from services.common.db import make_engine

        self.engine = make_engine(pool_size=1)
        self._cache: tuple[float, dict] | None = None

    def stop(self):
        self.engine.dispose()

    def check(self) -> dict:
        if self._cache and time.monotonic() - self._cache[0] < 1.0:
            return self._cache[1]
        result = {"database": _probe(self._database), "broker": _probe(self._broker)}
        self._cache = (time.monotonic(), result)
        return result

    def _database(self):
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def _broker(self):
        with Connection(setting("AMQP_URI"), connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)

    def get_dependency(self, worker_ctx):
        return self


def _probe(fn) -> str:
    try:
        fn()
        return "ok"
    except Exception as exc:  # reported, not raised: readiness is an answer, not an error
        return f"error: {type(exc).__name__}"


class WorkerTiming(DependencyProvider):
    def setup(self):
        self.started: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def worker_setup(self, worker_ctx):
        self.started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self.started.pop(worker_ctx, None)
        if started is not None:
            name = f"{self.container.service_name}.{worker_ctx.entrypoint.method_name}"
            HANDLER_SECONDS.labels(name).observe(time.perf_counter() - started)


def json_response(body, status: int = 200, content_type: str = "application/json") -> Response:
    return Response(json.dumps(body, ensure_ascii=False, default=str), status=status,
                    content_type=f"{content_type}; charset=utf-8")


class Observable:
    """Mixin: liveness, readiness and Prometheus metrics for a service process."""

    log = Logger()
    readiness = Readiness()
    timing = WorkerTiming()

    @http("GET", "/healthz")
    def healthz(self, request):
        return json_response({"status": "ok", "service": self.name, "city": setting("CITY")})

    @http("GET", "/readyz")
    def readyz(self, request):
        checks = self.readiness.check()
        ready = all(v == "ok" for v in checks.values())
        return json_response({"ready": ready, "checks": checks}, 200 if ready else 503)

    @http("GET", "/metrics")
    def metrics(self, request):
        return Response(generate_latest(), content_type=CONTENT_TYPE_LATEST)

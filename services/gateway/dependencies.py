"""Gateway dependencies: API-key authentication and the request's trace id."""

from __future__ import annotations

from nameko.extensions import DependencyProvider

from services.common.config import setting
from services.common.db import make_engine
from services.gateway import keys
from services.gateway.problems import Problem

UNAUTHENTICATED = dict(status=401, kind="unauthenticated", title="Unauthenticated 未认证",
                       headers={"WWW-Authenticate": 'Bearer realm="liandong"'})


class Authenticator(DependencyProvider):
    """`Authorization: Bearer <key>` → the organisation and its roles, or a 401 problem."""

    def setup(self):
        self.engine = make_engine(pool_size=2)
        self.pepper = setting("APIKEY_PEPPER")
        self.city = setting("CITY")
        self.cache = keys.KeyCache(ttl=float(setting("APIKEY_CACHE_SECONDS", 10)))

    def stop(self):
        self.engine.dispose()

    def get_dependency(self, worker_ctx):
        return self

    def authenticate(self, request) -> dict:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Problem(detail="send Authorization: Bearer <api key>", **UNAUTHENTICATED)
        key_hash = keys.hash_key(token.strip(), self.pepper)
        identity, hit = self.cache.get(key_hash)
        if not hit:
            with self.engine.connect() as conn:
                identity = keys.lookup(conn, key_hash, self.city)
            self.cache.put(key_hash, identity)
        if identity is None:
            raise Problem(detail="unknown or revoked API key", **UNAUTHENTICATED)
        return identity


class TraceContext(DependencyProvider):
    """Lets the request handler set the worker's trace id, which RPC calls then carry."""

    class _Setter:
        def __init__(self, worker_ctx):
            self.worker_ctx = worker_ctx

        def set(self, trace_id: str) -> None:
            self.worker_ctx.context_data["trace_id"] = trace_id
            import structlog

            structlog.contextvars.bind_contextvars(trace_id=trace_id)

    def get_dependency(self, worker_ctx):
        return self._Setter(worker_ctx)

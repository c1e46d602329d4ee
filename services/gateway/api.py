"""The gateway's request pipeline: one decorator declares an operation (for routing, roles and
the OpenAPI document) and runs it with authentication, body limits, validation, idempotency,
problem details, tracing and metrics."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass, field

from marshmallow import Schema, ValidationError
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from werkzeug.wrappers import Response

from contracts.registry import schema_instance
from services.common.config import setting
from services.common.entrypoints import http
from services.common.logging import get_logger
from services.common.metrics import HTTP_REQUESTS, HTTP_SECONDS
from services.common.rpc import call_within
from services.gateway import problems
from services.gateway.models import idempotency_keys
from services.gateway.problems import Problem

log = get_logger(__name__)
TRACE_RE = re.compile(r"^[A-Za-z0-9_.:-]{8,64}$")


@dataclass
class Operation:
    method: str
    path: str  # OpenAPI style: /api/v1/leads/{lead_id}
    summary: str
    roles: frozenset[str] | None  # None: no key needed
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    responses: dict[int, type[Schema] | None] = field(default_factory=dict)
    idempotent: bool = False
    tag: str = "leads"
    description: str = ""
    csv: bool = False  # the 200 answer can also be text/csv (`format=csv`)

    @property
    def rule(self) -> str:
        return re.sub(r"\{(\w+)\}", r"<\1>", self.path)


OPERATIONS: list[Operation] = []


def operation(method: str, path: str, summary: str, *, roles=None, body=None, query=None,
              responses=None, idempotent=False, tag="leads", description="", csv=False):
    """Declare an HTTP operation. The handler is `fn(self, ctx, **path_values)` and returns
    `(status, payload)`; `ctx` carries the caller, the validated body and query, the trace id."""
    op = Operation(method, path, summary, frozenset(roles) if roles is not None else None, body,
                   query, responses or {}, idempotent, tag, description, csv)
    OPERATIONS.append(op)

    def decorator(fn):
        @functools.wraps(fn)
        def entry(self, request, **path_values):
            return run(self, op, fn, request, path_values)

        return http(method, op.rule)(entry)

    return decorator


@dataclass
class RequestContext:
    request: object
    trace_id: str
    caller: dict | None = None
    body: dict | None = None
    raw_body: dict | None = None
    query: dict | None = None


def run(service, op: Operation, fn, request, path_values) -> Response:
    started = time.perf_counter()
    incoming = request.headers.get("X-Request-Id", "")
    trace_id = incoming if TRACE_RE.match(incoming) else uuid.uuid4().hex
    service.trace.set(trace_id)
    ctx = RequestContext(request=request, trace_id=trace_id)
    try:
        if op.roles is not None:
            ctx.caller = service.auth.authenticate(request)
            if not op.roles & set(ctx.caller["roles"]):
                raise Problem(403, "forbidden", "Forbidden 无权操作",
                              f"this operation needs one of the roles: "
                              f"{', '.join(sorted(op.roles))}")
        if op.query is not None:
            ctx.query = _validate(op.query, request.args.to_dict(), "query")
        if op.body is not None:
            ctx.raw_body = read_json(request)
            ctx.body = _validate(op.body, ctx.raw_body, "body")
        key = request.headers.get("Idempotency-Key") if op.idempotent else None
        if key:
            status, payload, replayed = idempotent_call(service, ctx, key, op,
                                                        lambda: fn(service, ctx, **path_values))
        else:
            status, payload = fn(service, ctx, **path_values)
            replayed = False
        if isinstance(payload, Response):  # an operation answering other than JSON (CSV)
            resp = payload
        else:
            resp = Response(json.dumps(payload, ensure_ascii=False, default=str), status=status,
                            content_type="application/json; charset=utf-8")
        if replayed:
            resp.headers["Idempotent-Replayed"] = "true"
    except Exception as exc:  # every error becomes problem details; none escapes as a 500 page
        problem = problems.from_exception(exc)
        if problem.status >= 500:
            log.exception("request failed", path=request.path)
        resp = problems.response(problem, trace_id, request.path)
    resp.headers["X-Request-Id"] = trace_id
    HTTP_REQUESTS.labels(op.path, str(resp.status_code)).inc()
    HTTP_SECONDS.labels(op.path).observe(time.perf_counter() - started)
    return resp


def read_json(request) -> dict:
    limit = int(setting("MAX_BODY_BYTES", 1 << 20))
    if request.content_length is not None and request.content_length > limit:
        raise Problem(413, "too-large", "Payload too large 请求体过大",
                      f"the body is over {limit} bytes")
    ctype = (request.mimetype or "").lower()
    if ctype not in ("application/json", "application/problem+json") and not ctype.endswith(
            "+json"):
        raise Problem(415, "unsupported-media-type", "Unsupported media type 不支持的格式",
                      "send the body as application/json")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise Problem(413, "too-large", "Payload too large 请求体过大",
                      f"the body is over {limit} bytes")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Problem(400, "malformed-json", "Malformed JSON JSON格式错误", str(exc)) from exc
    if not isinstance(body, dict):
        raise Problem(400, "malformed-json", "Malformed JSON JSON格式错误",
                      "the body must be a JSON object")
    return body


def _validate(schema_cls, data: dict, where: str) -> dict:
    try:
        return schema_instance(schema_cls).load(data)
    except ValidationError as exc:
        raise Problem(422, "invalid-input", "Invalid input 输入无效",
                      f"the request {where} does not match the schema",
                      exc.messages) from exc


def rpc_call(method, *args):
    """Call another service by RPC with a deadline; a silent service is a 503, not a hang."""
    timeout = float(setting("RPC_TIMEOUT", 10))
    try:
        return call_within(method, *args, timeout=timeout)
    except TimeoutError:
        raise Problem(503, "unavailable", "Service unavailable 服务暂不可用",
                      f"no answer within {timeout:g} s; retry later") from None


def idempotent_call(service, ctx: RequestContext, key: str, op: Operation, call):
    """Same key + same body: the stored answer again. Same key + other body: 422."""
    if len(key) > 200:
        raise Problem(422, "invalid-input", "Invalid input 输入无效", "Idempotency-Key too long",
                      {"Idempotency-Key": ["at most 200 characters"]})
    digest = hashlib.sha256(
        (op.method + op.path + json.dumps(ctx.raw_body, sort_keys=True)).encode()).hexdigest()
    org_id = ctx.caller["org_id"]
    session = service.db.session
    row = session.execute(select(idempotency_keys).where(
        idempotency_keys.c.org_id == org_id, idempotency_keys.c.key == key)).first()
    if row is not None:
        if row.request_hash != digest:
            raise Problem(422, "idempotency-key-reused", "Idempotency key reused 幂等键重复使用",
                          "this Idempotency-Key was used with a different request")
        return row.status, row.body, True
    status, payload = call()
    if 200 <= status < 300:
        session.execute(pg_insert(idempotency_keys).values(
            org_id=org_id, key=key, request_hash=digest, status=status,
            body=json.loads(json.dumps(payload, default=str))).on_conflict_do_nothing())
    return status, payload, False

"""RFC 9457 problem details: one table maps every error to its HTTP answer."""

from __future__ import annotations

import json

from werkzeug.wrappers import Response

from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound, OutsideJurisdiction

PROBLEM_BASE = "https://liandong.example/problems/"


class Problem(Exception):
    """An HTTP error answered as problem+json."""

    def __init__(self, status: int, kind: str, title: str, detail: str = "",
                 errors: dict | None = None, headers: dict | None = None):
        super().__init__(detail or title)
        self.status, self.kind, self.title = status, kind, title
        self.detail, self.errors, self.headers = detail, errors or {}, headers or {}


# error type → (status, problem type, title)
MAPPED_ERRORS = {
    InvalidInput: (422, "invalid-input", "Invalid input 输入无效"),
    OutsideJurisdiction: (422, "outside-jurisdiction", "Outside the five cities 不在五地辖区"),
    NotFound: (404, "not-found", "Not found 未找到"),
    Forbidden: (403, "forbidden", "Forbidden 无权操作"),
    Conflict: (409, "conflict", "Conflict 状态冲突"),
}


def from_exception(exc: Exception) -> Problem:
    if isinstance(exc, Problem):
        return exc
    for cls, (status, kind, title) in MAPPED_ERRORS.items():
        if isinstance(exc, cls):
            return Problem(status, kind, title, exc.detail, exc.errors)
    return Problem(503, "unavailable", "Service unavailable 服务暂不可用",
                   "the platform could not complete the request; retry later")


def response(problem: Problem, trace_id: str | None = None, instance: str | None = None):
    body = {"type": PROBLEM_BASE + problem.kind, "title": problem.title,
            "status": problem.status}
    if problem.detail:
        body["detail"] = problem.detail
    if problem.errors:
        body["errors"] = problem.errors
    if instance:
        body["instance"] = instance
    if trace_id:
        body["trace_id"] = trace_id
    return Response(json.dumps(body, ensure_ascii=False), status=problem.status,
                    headers=problem.headers,
                    content_type="application/problem+json; charset=utf-8")

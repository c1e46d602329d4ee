"""OpenAPI 3.1 generated from the marshmallow schemas of `contracts.http` and the operation table,
and a self-contained page of readable docs (no external scripts)."""

from __future__ import annotations

import functools
import html

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from contracts.http.common import ProblemSchema

PROBLEM_RESPONSES = {
    400: "Malformed JSON",
    401: "Missing or unknown API key",
    403: "The organisation's roles do not allow this",
    404: "Not found, or not visible to this organisation",
    409: "The resource's state does not allow this",
    413: "Body over 1 MiB",
    415: "Body is not JSON",
    422: "Validation failed (field errors in `errors`) or outside the five cities",
    503: "A service did not answer in time",
}


def _schema_name(schema) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__
    return name[:-6] if name.endswith("Schema") else name


@functools.lru_cache(maxsize=1)
def openapi_document() -> dict:
    from services.gateway.api import OPERATIONS

    spec = APISpec(
        title="Liandong 联动 API",
        version="1.0.0",
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin(schema_name_resolver=_schema_name)],
        info={"description": "Cross-region joint enforcement platform of Taicang, Kunshan, "
                             "Changshu, Jiading and Baoshan (宝嘉常昆太). Every error is RFC 9457 "
                             "problem details (application/problem+json)."},
    )
    spec.components.security_scheme("apiKey", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Problem", schema=ProblemSchema)
    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        item = {"summary": op.summary, "tags": [op.tag], "responses": {}}
        if op.description:
            item["description"] = op.description
        if op.roles is not None:
            item["security"] = [{"apiKey": []}]
            item["description"] = (item.get("description", "") +
                                   f"\n\nRoles: {', '.join(sorted(op.roles))}.").strip()
        params = [{"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
                  for name in _path_params(op.path)]
        if op.query is not None:
            params.append({"in": "query", "schema": op.query})
        if op.idempotent:
            params.append({"in": "header", "name": "Idempotency-Key", "required": False,
                           "schema": {"type": "string", "maxLength": 200},
                           "description": "repeat a POST safely: same key and body, same answer"})
        if params:
            item["parameters"] = params
        if op.body is not None:
            item["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": op.body}}}
        for status, schema in op.responses.items():
            content = {"application/json": {"schema": schema}} if schema else None
            if content and op.csv and status == 200:
                content["text/csv"] = {"schema": {"type": "string"}}
            item["responses"][str(status)] = {"description": "OK", **(
                {"content": content} if content else {})}
        for status, text in PROBLEM_RESPONSES.items():
            if op.roles is None and status in (401, 403):
                continue
            item["responses"].setdefault(str(status), {"description": text, "content": {
                "application/problem+json": {"schema": "Problem"}}})
        paths.setdefault(op.path, {})[op.method.lower()] = item
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _path_params(path: str) -> list[str]:
    import re

    return re.findall(r"\{(\w+)\}", path)


def docs_page() -> str:
    doc = openapi_document()
    rows = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            rows.append(
                f"<section><h2><code>{method.upper()} {html.escape(path)}</code></h2>"
                f"<p><b>{html.escape(op.get('summary', ''))}</b></p>"
                f"<p>{html.escape(op.get('description', ''))}</p>"
                f"<p>Answers: {', '.join(sorted(op['responses']))}</p></section>"
            )
    return (
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
        "<title>Liandong 联动 API</title><style>body{font-family:sans-serif;max-width:60em;"
        "margin:2em auto}code{background:#eee;padding:0 .3em}</style></head><body>"
        f"<h1>{html.escape(doc['info']['title'])}</h1>"
        f"<p>{html.escape(doc['info']['description'])}</p>"
        "<p>Machine-readable: <a href='/api/v1/openapi.json'>/api/v1/openapi.json</a>. "
        "Authenticate with <code>Authorization: Bearer &lt;api key&gt;</code>.</p>"
        + "".join(rows) + "</body></html>"
    )

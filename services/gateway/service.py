"""The gateway service: the HTTP API of one city's deployment (`/api/v1/...`).

Resources live in `services/gateway/resources/`, one mixin each; this class assembles them and
adds the documents and the catch-all 404.
"""

from __future__ import annotations

from werkzeug.wrappers import Response

from services.common.db import Database
from services.common.entrypoints import http
from services.common.observability import Observable
from services.gateway import models, problems
from services.gateway.api import operation
from services.gateway.dependencies import Authenticator, TraceContext
from services.gateway.openapi import docs_page, openapi_document
from services.gateway.problems import Problem
from services.gateway.resources.bridge import BridgeResource
from services.gateway.resources.cases import CasesResource
from services.gateway.resources.jointops import JointOpsResource
from services.gateway.resources.leads import LeadsResource
from services.gateway.resources.supervision import SupervisionResource
from services.gateway.resources.transport import TransportResource


class GatewayService(Observable, LeadsResource, BridgeResource, CasesResource,
                     SupervisionResource, TransportResource, JointOpsResource):
    name = "gateway"

    db = Database(models.metadata)
    auth = Authenticator()
    trace = TraceContext()

    @operation("GET", "/api/v1/openapi.json", "This API's OpenAPI 3.1 document", tag="reference")
    def openapi(self, ctx):
        return 200, openapi_document()

    @http("GET", "/docs")
    def docs(self, request):
        return Response(docs_page(), content_type="text/html; charset=utf-8")

    @http("GET,POST,PUT,PATCH,DELETE", "/api/<path:path>")
    def unknown(self, request, path):
        problem = Problem(404, "not-found", "Not found 未找到",
                          f"no operation {request.method} /api/{path}")
        return problems.response(problem, instance=request.path)

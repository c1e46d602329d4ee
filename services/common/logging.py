"""structlog JSON logs with city, service, trace_id, event_id and the aggregate id on every line.

`configure_logging()` routes both structlog and the standard library (nameko, kombu) through one
JSON renderer. `Logger` is the DependencyProvider that binds a worker's context (its call id, the
trace id from the request or event) for the duration of the worker, per green thread.
"""

from __future__ import annotations

import logging
import sys

import structlog
from nameko.extensions import DependencyProvider

_configured = False
_static: dict[str, str] = {}


def _add_static(logger, method_name, event_dict):
    # Green threads start with an empty contextvars context: process-wide fields come from here.
    for key, value in _static.items():
        event_dict.setdefault(key, value)
    return event_dict


def configure_logging(service: str | None = None, city: str | None = None,
                      level: str = "INFO") -> None:
    global _configured
    shared = [
        structlog.contextvars.merge_contextvars,
        _add_static,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    if not _configured:
        structlog.configure(
            processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=True,
        )
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        foreign_pre_chain=shared,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("kombu", "amqp", "nameko.containers", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    _static.update({k: v for k, v in (("service", service), ("city", city)) if v})
    _configured = True


def get_logger(name: str | None = None):
    return structlog.get_logger(name)


class Logger(DependencyProvider):
    """A bound logger per worker: call id, entrypoint and trace id on every line it writes."""

    def setup(self):
        from services.common.config import setting

        configure_logging(self.container.service_name, setting("CITY"),
                          setting("LOG_LEVEL", "INFO"))

    def worker_setup(self, worker_ctx):
        structlog.contextvars.bind_contextvars(
            call_id=worker_ctx.call_id,
            entrypoint=worker_ctx.entrypoint.method_name,
            trace_id=worker_ctx.context_data.get("trace_id"),
        )

    def get_dependency(self, worker_ctx):
        return structlog.get_logger(self.container.service_name)

    def worker_teardown(self, worker_ctx):
        structlog.contextvars.unbind_contextvars(
            "call_id", "entrypoint", "trace_id", "event_id", "lead_id", "subject"
        )

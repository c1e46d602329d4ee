"""Prometheus metrics shared by every service (one registry per process)."""

from prometheus_client import Counter, Gauge, Histogram

EVENTS_PUBLISHED = Counter(
    "liandong_events_published_total", "Events published from the outbox", ["type"]
)
EVENTS_HANDLED = Counter(
    "liandong_events_handled_total",
    "Events received by handlers, by outcome (applied, duplicate, retried, parked)",
    ["type", "handler", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "liandong_handler_seconds", "Worker duration per entrypoint", ["entrypoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
OUTBOX_LAG = Histogram(
    "liandong_outbox_lag_seconds", "Time from outbox commit to confirmed publication",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60),
)
OUTBOX_PENDING = Gauge("liandong_outbox_pending", "Outbox rows not yet published (last sweep)")
PARKED = Counter("liandong_parked_total", "Messages parked with an error", ["queue", "reason"])
HTTP_REQUESTS = Counter(
    "liandong_http_requests_total", "HTTP requests by route and status", ["route", "status"]
)
HTTP_SECONDS = Histogram(
    "liandong_http_request_seconds", "HTTP request duration by route", ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5),
)
LEADS = Counter("liandong_leads_total", "Leads submitted, by outcome", ["outcome", "category"])
BRIDGE_OUT = Counter("liandong_bridge_sent_total", "Signed envelopes sent to partners",
                     ["partner", "type"])
BRIDGE_IN = Counter("liandong_bridge_received_total",
                    "Envelopes from partners, by outcome (accepted or the refusal reason)",
                    ["partner", "outcome"])

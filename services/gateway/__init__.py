"""The HTTP gateway: API keys, roles, problem details, idempotency; calls services by RPC."""

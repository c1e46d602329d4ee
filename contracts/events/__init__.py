"""Event data schemas, one module per producing service. Importing registers them."""

from contracts.events import leads  # noqa: F401

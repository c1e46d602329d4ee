"""Event data schemas, one module per producing service. Importing registers them."""

from contracts.events import (
    cases,  # noqa: F401
    jointops,  # noqa: F401
    leads,  # noqa: F401
    supervision,  # noqa: F401
    transport,  # noqa: F401
)

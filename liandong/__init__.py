"""Operator tooling of Liandong: provisioning, the local five-city launcher, the demo, the CLI."""

import warnings

# eventlet announces its maintenance mode on import; nameko 3 still runs on it (see
# docs/architecture.md). Keep operators' output readable.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

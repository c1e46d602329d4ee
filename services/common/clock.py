"""The time the domain reads: `self.clock.now()` instead of `datetime.now()`.

Steps of a case, deadlines and notices are stamped with this clock. In production it is the
system clock. With `CLOCK_CONTROL=true` (the test suite and the local demo platform only; never
in docker-compose or Kubernetes) a service's `set_clock` RPC may freeze it at an instant or shift
it by an offset, so a test or the demo can walk a case across days, holidays and deadlines
without waiting. Infrastructure times (outbox, inbox, `created_at` columns) stay on the database
clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nameko.extensions import DependencyProvider

from contracts.errors import Forbidden, InvalidInput
from services.common.config import setting
from services.common.inputs import parse_instant

TRUE = ("1", "true", "yes", "on")


def enabled(value) -> bool:
    return str(value).strip().lower() in TRUE


class Clock(DependencyProvider):
    """One clock per service process (all its workers read the same time)."""

    def setup(self):
        self.control = enabled(setting("CLOCK_CONTROL", "false"))
        self.frozen: datetime | None = None
        self.offset = timedelta(0)

    def get_dependency(self, worker_ctx):
        return self

    def instant(self, at, what: str) -> datetime:
        """The instant `at` for an RPC that acts as of another time (`what`): only with
        `CLOCK_CONTROL` (tests and the demo)."""
        if not self.control:
            raise Forbidden(f"{what} at another instant needs CLOCK_CONTROL (tests and demo)")
        return parse_instant(at)

    def now(self) -> datetime:
        if self.frozen is not None:
            return self.frozen
        return datetime.now(UTC) + self.offset

    def set(self, at: str | None = None, mode: str = "frozen") -> dict:
        """Freeze at `at`, shift so that now is `at` (and runs on), or (no `at`) go back to the
        system clock."""
        if not self.control:
            raise Forbidden("the clock can only be set when CLOCK_CONTROL is on (tests and demo)")
        if at is None:
            self.frozen, self.offset = None, timedelta(0)
        else:
            instant = parse_instant(at)
            if mode == "frozen":
                self.frozen, self.offset = instant.astimezone(UTC), timedelta(0)
            elif mode == "shifted":
                self.frozen, self.offset = None, instant - datetime.now(UTC)
            else:
                raise InvalidInput("mode is frozen or shifted", {"mode": [mode]})
        return {"now": self.now().isoformat(), "frozen": self.frozen is not None,
                "offset_seconds": self.offset.total_seconds()}

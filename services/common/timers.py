"""A nameko timer whose interval is a setting, and which commits before it reports done.

    @timer("SUPERVISION_TICK_SECONDS", 1.0)
    def tick(self): ...

nameko's `@timer(interval=...)` takes its interval when the class is defined, before the
process's config is known; this one reads the setting when the container sets up. Like `rpc`
and `event_handler`, the worker's unit of work commits in `handle_result`.
"""

from __future__ import annotations

from nameko.timer import Timer

from services.common.config import setting
from services.common.db import finish_units_of_work


class ConfiguredTimer(Timer):
    def __init__(self, interval_setting: str, default: float, eager: bool = False, **kwargs):
        super().__init__(interval=default, eager=eager, **kwargs)
        self.interval_setting = interval_setting
        self.default = default

    def setup(self):
        self.interval = float(setting(self.interval_setting, self.default))
        super().setup()

    def handle_result(self, worker_ctx, result, exc_info):
        exc_info = finish_units_of_work(worker_ctx, exc_info)
        if exc_info is not None:
            result = None
        return super().handle_result(worker_ctx, result, exc_info)


timer = ConfiguredTimer.decorator

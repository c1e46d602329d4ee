"""Shared benchmark helpers: percentiles, a table, the RESULT line, the machine's description."""

from __future__ import annotations

import os
import platform
import statistics


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary_ms(latencies_s: list[float]) -> dict[str, float]:
    ms = [x * 1000 for x in latencies_s]
    return {"p50": percentile(ms, 50), "p99": percentile(ms, 99),
            "mean": statistics.fmean(ms) if ms else float("nan"), "max": max(ms, default=0)}


def machine() -> str:
    cpu = "unknown cpu"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def table(rows: list[tuple], headers: tuple) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*headers), line.format(*("-" * w for w in widths))]
    out += [line.format(*(str(x) for x in row)) for row in rows]
    return "\n".join(out)


def result_line(name: str, **values) -> str:
    parts = []
    for key, value in values.items():
        parts.append(f"{key}={value:.1f}" if isinstance(value, float) else f"{key}={value}")
    return f"RESULT {name} " + " ".join(parts)

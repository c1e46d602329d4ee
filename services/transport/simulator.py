"""A reproducible muck-truck fleet (渣土车) on plausible tracks inside the five cities: normal
trips, a route deviation, a dumping stop, an out-of-hours run and a border crossing, from a seed.

    scenario = simulate(seed=7, normal=20)
    scenario.sites, scenario.permits  # HTTP bodies for /api/v1/transport/{sites,permits}
    scenario.positions()               # every position, time-ordered (HTTP or queue bodies)
    scenario.expected                  # plate -> alert kinds the rules must raise

Positions are every 30 s (the vendors' rate) with a few metres of GPS noise; corridors join a
construction site and a disposal site of Taicang, checked against the five-city boundaries.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from services.common.geo import default_city_locator
from services.transport.domain import LOCAL_TZ

# (origin, disposal) pairs in Taicang; the border run ends in a Jiading field.
ROUTES = [((121.06, 31.47), (121.16, 31.52)), ((121.10, 31.45), (121.18, 31.48)),
          ((121.12, 31.42), (121.16, 31.52))]
JIADING_FIELD = (121.163, 31.379)
STEP = 30  # seconds between positions
NOISE_DEG = 0.00003  # about 3 m


def _square(lon, lat, half=0.001):
    return {"type": "Polygon", "coordinates": [[
        [lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
        [lon - half, lat + half], [lon - half, lat - half]]]}


@dataclass
class Scenario:
    seed: int
    sites: list[dict] = field(default_factory=list)
    permits: list[dict] = field(default_factory=list)
    tracks: dict[str, list[dict]] = field(default_factory=dict)
    expected: dict[str, set[str]] = field(default_factory=dict)

    def positions(self) -> list[dict]:
        return sorted((p for t in self.tracks.values() for p in t),
                      key=lambda p: (p["ts"], p["plate"]))


class _Truck:
    def __init__(self, rng: random.Random, plate: str, start: datetime):
        self.rng, self.plate, self.t = rng, plate, start
        self.points: list[dict] = []

    def at(self, lon: float, lat: float, speed: float) -> None:
        n = self.rng.uniform
        self.points.append({
            "plate": self.plate, "ts": self.t.isoformat(),
            "lon": round(lon + n(-NOISE_DEG, NOISE_DEG), 7),
            "lat": round(lat + n(-NOISE_DEG, NOISE_DEG), 7), "crs": "WGS84",
            "speed_kmh": 0.0 if speed == 0 else round(speed + n(-3, 3), 1),
            "heading": round(n(0, 359), 0)})
        self.t += timedelta(seconds=STEP)

    def dwell(self, where, minutes: float) -> None:
        for _ in range(int(minutes * 60 / STEP) + 1):
            self.at(*where, 0.0)

    def drive(self, a, b, minutes: float, offset=(0.0, 0.0), speed: float = 35.0) -> None:
        n = max(1, int(minutes * 60 / STEP))
        for i in range(1, n + 1):
            self.at(a[0] + (b[0] - a[0]) * i / n + offset[0],
                    a[1] + (b[1] - a[1]) * i / n + offset[1], speed)


def simulate(seed: int = 1, normal: int = 10, night: date | None = None,
             issuing_city: str = "taicang") -> Scenario:
    """The fleet of one night (22:00 local of `night`, default yesterday)."""
    rng = random.Random(seed)
    night = night or (datetime.now(LOCAL_TZ) - timedelta(days=1)).date()
    base = datetime(night.year, night.month, night.day, 22, 0, tzinfo=LOCAL_TZ)
    sc = Scenario(seed)
    for r, (a, b) in enumerate(ROUTES):
        sc.sites += [{"id": f"sim{seed}-o{r}", "name": f"工地 {r}", "kind": "construction",
                      "polygon": _square(*a)},
                     {"id": f"sim{seed}-d{r}", "name": f"消纳场 {r}", "kind": "disposal",
                      "polygon": _square(*b)}]

    def truck(n: int, kind: str, route: int, start: datetime, may_enter=()):
        plate = f"苏E{seed % 10}{n:04d}"
        a, b = ROUTES[route]
        sc.permits.append({
            "id": f"SIM{seed}-{n:04d}", "plate": plate, "origin_site": f"sim{seed}-o{route}",
            "disposal_site": f"sim{seed}-d{route}", "corridor": [list(a), list(b)],
            "width_m": 40, "windows": ["22:00-05:00"],
            "valid_from": (night - timedelta(days=30)).isoformat(),
            "valid_to": (night + timedelta(days=30)).isoformat(), "may_enter": list(may_enter)})
        return _Truck(rng, plate, start), a, b

    n = 0
    for _ in range(normal):  # normal trips, staggered over the night (some across midnight)
        route = rng.randrange(len(ROUTES))
        t, a, b = truck(n, "normal", route, base + timedelta(minutes=rng.randrange(0, 300)))
        t.dwell(a, 5)
        t.drive(a, b, rng.uniform(25, 40))
        t.dwell(b, 5)
        sc.tracks[t.plate], sc.expected[t.plate] = t.points, set()
        n += 1

    def mid(a, b, f):
        return (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)

    t, a, b = truck(n, "deviation", 0, base + timedelta(minutes=rng.randrange(30, 120)))
    t.drive(a, mid(a, b, 0.4), 12)
    t.drive(mid(a, b, 0.4), mid(a, b, 0.45), 5, offset=(0.003, -0.003))
    t.drive(mid(a, b, 0.45), b, 15)
    t.dwell(b, 5)
    sc.tracks[t.plate], sc.expected[t.plate] = t.points, {"route_deviation"}
    n += 1

    t, a, b = truck(n, "dumping", 1, base + timedelta(minutes=rng.randrange(30, 120)))
    field_at = (mid(a, b, 0.5)[0] + 0.003, mid(a, b, 0.5)[1] - 0.003)
    t.drive(a, mid(a, b, 0.5), 12)
    t.drive(mid(a, b, 0.5), field_at, 1)
    t.dwell(field_at, 8)
    t.drive(field_at, b, 15)
    sc.tracks[t.plate], sc.expected[t.plate] = t.points, {"route_deviation", "unapproved_stop"}
    n += 1

    t, a, b = truck(n, "out_of_hours", 2, base - timedelta(hours=8))  # 14:00
    t.dwell(a, 5)
    t.drive(a, b, 30)
    t.dwell(b, 5)
    sc.tracks[t.plate], sc.expected[t.plate] = t.points, {"out_of_hours"}
    n += 1

    t, a, b = truck(n, "border", 1, base + timedelta(minutes=rng.randrange(30, 120)))
    t.drive(a, JIADING_FIELD, 30)
    sc.tracks[t.plate], sc.expected[t.plate] = t.points, {"route_deviation", "city_crossing"}

    locator = default_city_locator()
    for plate, track in sc.tracks.items():
        for p in track:
            if locator.city_at(p["lon"], p["lat"]) is None:
                raise AssertionError(f"simulated point of {plate} outside the five cities")
    return sc

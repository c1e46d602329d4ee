"""The simulator is reproducible from its seed, stays inside the five cities, and each scenario
raises exactly the alerts it stands for when the rules evaluate it."""

from __future__ import annotations

from datetime import date

from shapely.geometry import shape

from services.common.geo import default_city_locator
from services.transport import domain
from services.transport.simulator import simulate

CITIES = domain.CityIndex(default_city_locator())


def evaluate_all(sc):
    sites = {s["id"]: domain.Site.from_wgs84(s["id"], s["kind"], shape(s["polygon"]))
             for s in sc.sites}
    raised = {}
    by_plate, refused = domain.parse_batch(sc.positions())
    assert refused == []
    for body in sc.permits:
        permit = domain.Permit.from_wgs84(
            id=body["id"], plate=body["plate"], origin=sites[body["origin_site"]],
            disposal=sites[body["disposal_site"]], corridor=body["corridor"],
            width_m=body["width_m"], windows=body["windows"],
            valid_from=date.fromisoformat(body["valid_from"]),
            valid_to=date.fromisoformat(body["valid_to"]), issuing_city="taicang",
            may_enter=body["may_enter"])
        out = domain.evaluate(permit.plate, True, [permit], domain.VehicleState(),
                              by_plate[permit.plate], domain.Thresholds(), CITIES,
                              list(sites.values()))
        raised[permit.plate] = {a.kind for a in out.alerts}
    return raised


def test_same_seed_same_fleet_other_seed_other_fleet():
    night = date(2026, 11, 20)
    assert simulate(3, 5, night).positions() == simulate(3, 5, night).positions()
    assert simulate(3, 5, night).positions() != simulate(4, 5, night).positions()


def test_each_scenario_raises_exactly_its_alerts():
    sc = simulate(seed=11, normal=8, night=date(2026, 11, 20))
    assert evaluate_all(sc) == sc.expected

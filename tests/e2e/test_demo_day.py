"""The five cities together, playing the lead part of the demo day (DOMAIN.md steps 1-3)."""

import pytest
import requests
from support import CityPlatform

from contracts.reference import CITY_CODES
from liandong import demo
from liandong.settings import Site

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

E2E_SITE = Site(db_prefix="liandong_e2e_", vhost_prefix="/e2e_", port_offset=3000)


@pytest.fixture(scope="module")
def five_cities():
    p = CityPlatform(E2E_SITE, CITY_CODES)
    p.start()
    yield p
    p.stop()


def test_all_five_gateways_serve(five_cities):
    for city in CITY_CODES:
        r = requests.get(f"{five_cities.url(city)}/readyz", timeout=5)
        assert r.json() == {"ready": True, "checks": {"database": "ok", "broker": "ok"}}
        health = requests.get(f"{five_cities.url(city)}/healthz", timeout=5).json()
        assert health["city"] == city


def test_demo_day_lead_part(five_cities, tmp_path):
    keys = demo.ensure_keys(E2E_SITE, tmp_path / "keys.json")
    assert len(keys) == len(demo.DEMO_ORGS)
    out = demo.play(E2E_SITE, keys, out=lambda *_: None)

    first, merged = out["first"], out["merged"]
    assert (first["status"], first["city"], first["squad"]) == ("routed", "taicang",
                                                                "taicang-chengxiang")
    assert merged["status"] == "merged" and merged["duplicate_of"] == first["id"]

    accepted = out["accepted"]
    assert accepted["status"] == "accepted"
    assert [h["action"] for h in accepted["history"]] == ["submitted", "duplicate_merged",
                                                          "accept"]
    handed = out["handed_over"]
    assert (handed["status"], handed["to_city"]) == ("handed_over", "jiading")

    # Taicang's record of the handover carries the outbound event for the bridge
    assert five_cities.scalar("taicang", "SELECT count(*) FROM leads.outbox "
                                         "WHERE type = 'lead.handed_over' AND subject = :s",
                              s=handed["id"]) == 1
    # keys are reused by a second run (the demo can be replayed)
    assert demo.ensure_keys(E2E_SITE, tmp_path / "keys.json") == keys

"""Unit tests for liandong.settings: how each city is named on the broker, the database and the
local ports."""

from __future__ import annotations

import itertools
from urllib.parse import unquote, urlsplit

import pytest
from kombu.utils.url import parse_url
from sqlalchemy.engine import make_url

from contracts.reference import CITY_CODES
from liandong.settings import SERVICES, Site


@pytest.fixture(autouse=True)
def no_port_overrides(monkeypatch):
    for city in CITY_CODES:
        monkeypatch.delenv(f"GATEWAY_PORT_{city.upper()}", raising=False)


def local_site(**kw) -> Site:
    defaults = dict(rabbit_host="127.0.0.1", rabbit_port=5672, rabbit_user="guest",
                    rabbit_password="guest", pg_host="127.0.0.1", pg_port=5432,
                    pg_user="postgres", pg_password="", db_prefix="liandong_",
                    vhost_prefix="/", port_offset=0)
    return Site(**{**defaults, **kw})


def test_vhost_and_database_per_city():
    site = local_site()
    assert site.vhost("taicang") == "/taicang"
    assert site.database("taicang") == "liandong_taicang"
    assert site.database_url("taicang") == (
        "postgresql+psycopg2://postgres@127.0.0.1:5432/liandong_taicang")


def test_amqp_uri_quotes_the_vhost():
    uri = local_site().amqp_uri("taicang")
    assert uri == "amqp://guest:guest@127.0.0.1:5672/%2Ftaicang"


def test_amqp_uri_quotes_credentials():
    uri = local_site(rabbit_user="us@r", rabbit_password="p:ss@w").amqp_uri("jiading")
    assert uri == "amqp://us%40r:p%3Ass%40w@127.0.0.1:5672/%2Fjiading"
    parts = parse_url(uri)
    assert (parts["userid"], parts["password"]) == ("us@r", "p:ss@w")
    assert (parts["hostname"], parts["port"], parts["virtual_host"]) == (
        "127.0.0.1", 5672, "/jiading")


def test_amqp_uri_with_slash_in_password_parses_back():
    parts = parse_url(local_site(rabbit_password="ab/cd").amqp_uri("taicang"))
    assert (parts["password"], parts["hostname"]) == ("ab/cd", "127.0.0.1")


def test_management_url_with_slash_in_password_parses_back():
    parts = urlsplit(local_site(rabbit_password="ab/cd").management_url())
    assert (unquote(parts.password or ""), parts.hostname, parts.port) == (
        "ab/cd", "127.0.0.1", 15672)


def test_database_url_with_slash_in_password_parses_back():
    # SQLAlchemy's URL parser tolerates the raw '/', so the database URL is fine.
    url = make_url(local_site(pg_password="ab/cd").database_url("taicang"))
    assert (url.password, url.host, url.database) == ("ab/cd", "127.0.0.1", "liandong_taicang")


def test_test_prefixes():
    site = local_site(db_prefix="liandong_test_", vhost_prefix="/test_")
    assert site.vhost("kunshan") == "/test_kunshan"
    assert site.database("kunshan") == "liandong_test_kunshan"
    assert site.amqp_uri("kunshan").endswith("/%2Ftest_kunshan")


def test_gateway_ports_in_city_order():
    site = local_site()
    assert [site.gateway_port(c) for c in CITY_CODES] == [8101, 8102, 8103, 8104, 8105]
    assert CITY_CODES[0] == "taicang" and site.gateway_port("taicang") == 8101


def test_gateway_port_override(monkeypatch):
    monkeypatch.setenv("GATEWAY_PORT_TAICANG", "9999")
    site = local_site()
    assert site.gateway_port("taicang") == 9999
    assert site.service_port("gateway", "taicang") == 9999
    assert site.gateway_port("jiading") == 8104  # only that city
    assert site.service_env("taicang", "gateway")["WEB_SERVER_ADDRESS"] == "127.0.0.1:9999"


def test_service_ports_are_distinct_across_services_and_cities():
    site = local_site()
    ports = [site.service_port(s, c) for s, c in itertools.product(SERVICES, CITY_CODES)]
    assert len(ports) == len(SERVICES) * len(CITY_CODES)
    assert len(set(ports)) == len(ports)
    assert [site.service_port("leads", c) for c in CITY_CODES] == [8201, 8202, 8203, 8204, 8205]


def test_port_offset_shifts_every_port():
    base, shifted = local_site(), local_site(port_offset=1000)
    for s, c in itertools.product(SERVICES, CITY_CODES):
        assert shifted.service_port(s, c) == base.service_port(s, c) + 1000
    assert shifted.gateway_port("taicang") == 9101


def test_service_env():
    site = local_site()
    env = site.service_env("jiading", "leads")
    assert env.pop("BRIDGE_KEY_DIR") == str(site.bridge_key_dir())
    assert site.bridge_key_dir().name == "liandong"  # one key folder per site (db prefix)
    assert env == {
        "CITY": "jiading",
        "AMQP_URI": "amqp://guest:guest@127.0.0.1:5672/%2Fjiading",
        "DATABASE_URL": "postgresql+psycopg2://postgres@127.0.0.1:5432/liandong_jiading",
        "RABBIT_MANAGEMENT_URL": "http://guest:guest@127.0.0.1:15672",
        "WEB_SERVER_ADDRESS": "127.0.0.1:8204",
    }


def test_site_reads_the_environment(monkeypatch):
    monkeypatch.setenv("LIANDONG_DB_PREFIX", "x_")
    monkeypatch.setenv("LIANDONG_VHOST_PREFIX", "/y_")
    monkeypatch.setenv("LIANDONG_PORT_OFFSET", "7")
    site = Site()
    assert site.database("baoshan") == "x_baoshan"
    assert site.vhost("baoshan") == "/y_baoshan"
    assert site.gateway_port("baoshan") == 8112

"""Make sure RabbitMQ (management + shovel plugins) and PostgreSQL are there, then create each
city's vhost and database, declare its broker topology and migrate its schemas.

Order of preference for the two servers: running local ones; Docker Compose when a Docker engine
answers; as root on Debian/Ubuntu, the distribution's packages (`deploy/local/install-servers.sh`).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

from contracts.reference import CITY_CODES
from liandong.settings import Site
from services.common.topology import management_session

REPO = Path(__file__).resolve().parents[1]
PLUGINS = ("rabbitmq_management", "rabbitmq_shovel", "rabbitmq_shovel_management")


def say(msg: str) -> None:
    print(f"[provision] {msg}", flush=True)


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(host: str, port: int, what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not port_open(host, port):
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not come up on {host}:{port} within {seconds:.0f} s")
        time.sleep(0.5)


def ensure_servers(site: Site, allow_install: bool = True) -> None:
    broker = port_open(site.rabbit_host, site.rabbit_port)
    database = port_open(site.pg_host, site.pg_port)
    if broker and database:
        say("using the running RabbitMQ and PostgreSQL")
    elif _docker_available():
        say("starting RabbitMQ and PostgreSQL with Docker Compose")
        subprocess.run(["docker", "compose", "up", "-d", "rabbitmq", "postgres"], cwd=REPO,
                       check=True)
    elif allow_install and shutil.which("apt-get"):
        say("installing/starting RabbitMQ and PostgreSQL from the distribution's packages")
        subprocess.run(["bash", str(REPO / "deploy/local/install-servers.sh")], check=True)
    else:
        raise SystemExit("RabbitMQ and PostgreSQL are not running, no Docker engine answers, and "
                         "this is not a Debian/Ubuntu machine where they can be installed.")
    wait_port(site.rabbit_host, site.rabbit_port, "RabbitMQ")
    wait_port(site.pg_host, site.pg_port, "PostgreSQL")
    ensure_plugins(site)


def _docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def ensure_plugins(site: Site) -> None:
    if not port_open(site.rabbit_host, site.rabbit_mgmt_port) or _shovel_missing(site):
        if shutil.which("rabbitmq-plugins"):
            say(f"enabling RabbitMQ plugins: {', '.join(PLUGINS)}")
            subprocess.run(["rabbitmq-plugins", "enable", *PLUGINS], check=True,
                           capture_output=True)
        else:
            say("rabbitmq-plugins not found here; the broker must have the plugins enabled")
    wait_port(site.rabbit_host, site.rabbit_mgmt_port, "RabbitMQ management API")
    _wait_management(site)


def _shovel_missing(site: Site) -> bool:
    try:
        session, base = management_session(site.management_url())
        resp = session.get(f"{base}/api/shovels", timeout=5)
        return resp.status_code != 200
    except Exception:
        return True


def _wait_management(site: Site, seconds: float = 60) -> None:
    session, base = management_session(site.management_url())
    deadline = time.monotonic() + seconds
    while True:
        try:
            if session.get(f"{base}/api/overview", timeout=5).status_code == 200:
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("RabbitMQ management API did not answer")
        time.sleep(0.5)


def ensure_vhost(site: Site, city: str) -> None:
    from urllib.parse import quote

    session, base = management_session(site.management_url())
    v = quote(site.vhost(city), safe="")
    session.put(f"{base}/api/vhosts/{v}", json={}, timeout=10).raise_for_status()
    session.put(f"{base}/api/permissions/{v}/{quote(site.rabbit_user)}",
                json={"configure": ".*", "write": ".*", "read": ".*"},
                timeout=10).raise_for_status()


def ensure_database(site: Site, city: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host=site.pg_host, port=site.pg_port, user=site.pg_user,
                            password=site.pg_password or None, dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (site.database(city),))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{site.database(city)}"')
    conn.close()


def drop_city(site: Site, city: str) -> None:
    """Remove a city's vhost and database (tests use this to start clean)."""
    from urllib.parse import quote

    import psycopg2

    session, base = management_session(site.management_url())
    session.delete(f"{base}/api/vhosts/{quote(site.vhost(city), safe='')}", timeout=30)
    conn = psycopg2.connect(host=site.pg_host, port=site.pg_port, user=site.pg_user,
                            password=site.pg_password or None, dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{site.database(city)}" WITH (FORCE)')
    conn.close()


def provision_city(site: Site, city: str) -> None:
    from services.common import topology
    from services.common.migrate import upgrade

    ensure_vhost(site, city)
    topology.apply(site.management_url(), site.vhost(city))
    ensure_database(site, city)
    upgrade(site.database_url(city))


def link_cities(site: Site, cities=CITY_CODES) -> None:
    """The bridge between every pair of `cities`: each city's key (made once), partners' public
    keys imported into each city's database, a partner user per city that may only write to
    partners' `bridge.inbound`, and a shovel per ordered pair."""
    import secrets

    from sqlalchemy import create_engine

    from services.bridge import keys, links

    directory = site.bridge_key_dir()
    bundles = {}
    for city in cities:
        keys.ensure_key(directory, city)
        bundles[city] = keys.export_bundle(directory, city)
    for city in cities:
        engine = create_engine(site.database_url(city))
        with engine.begin() as conn:
            for partner in cities:
                if partner != city:
                    keys.import_bundle(conn, bundles[partner])
        engine.dispose()
    for city in cities:
        user, password = links.bridge_user(site.vhost(city)), secrets.token_urlsafe(24)
        partners = [p for p in cities if p != city]
        links.ensure_partner_user(site.management_url(), user, password,
                                  [site.vhost(p) for p in partners])
        for partner in partners:
            dest = (f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@"
                    f"{site.rabbit_host}:{site.rabbit_port}/{quote(site.vhost(partner), safe='')}")
            links.ensure_shovel(site.management_url(), site.vhost(city), partner, dest)


def provision(site: Site, cities=CITY_CODES, install: bool = True) -> None:
    ensure_servers(site, allow_install=install)
    for city in cities:
        provision_city(site, city)
        say(f"{city}: vhost {site.vhost(city)}, database {site.database(city)}, topology, "
            f"migrations ready")
    link_cities(site, cities)
    say(f"bridge: keys, partner users and shovels between {', '.join(cities)}")

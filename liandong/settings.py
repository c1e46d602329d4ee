"""Where the local platform finds its broker and database, and how each city is named there.

Everything comes from the environment with local defaults, so the same code provisions the
developer's machine, the test suite (other prefixes, so tests never touch the demo's data) and CI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from contracts.reference import CITY_CODES

REPO = Path(__file__).resolve().parents[1]
GATEWAY_PORTS = {"taicang": 8101, "kunshan": 8102, "changshu": 8103, "jiading": 8104,
                 "baoshan": 8105}
# Each service process serves /healthz /readyz /metrics on its own port: base + city offset.
SERVICE_PORT_BASE = {"gateway": 8100, "leads": 8200, "bridge": 8500, "cases": 8300,
                     "supervision": 8400, "transport": 8600, "jointops": 8700}
SERVICES = ("leads", "bridge", "cases", "supervision", "transport", "jointops",
            "gateway")  # start order
# nameko needs the class named: a module also holds the imported `Observable` base.
SERVICE_CLASSES = {"leads": "services.leads.service:LeadsService",
                   "bridge": "services.bridge.service:BridgeService",
                   "gateway": "services.gateway.service:GatewayService",
                   "cases": "services.cases.service:CasesService",
                   "supervision": "services.supervision.service:SupervisionService",
                   "transport": "services.transport.service:TransportService",
                   "jointops": "services.jointops.service:JointOpsService"}


def env(name: str, default: str) -> str:
    return os.environ.get(name) or default


@dataclass(frozen=True)
class Site:
    rabbit_host: str = field(default_factory=lambda: env("RABBIT_HOST", "127.0.0.1"))
    rabbit_port: int = field(default_factory=lambda: int(env("RABBIT_PORT", "5672")))
    rabbit_user: str = field(default_factory=lambda: env("RABBIT_USER", "guest"))
    rabbit_password: str = field(default_factory=lambda: env("RABBIT_PASSWORD", "guest"))
    rabbit_mgmt_port: int = field(
        default_factory=lambda: int(env("RABBIT_MANAGEMENT_PORT", "15672")))
    pg_host: str = field(default_factory=lambda: env("PG_HOST", "127.0.0.1"))
    pg_port: int = field(default_factory=lambda: int(env("PG_PORT", "5432")))
    pg_user: str = field(default_factory=lambda: env("PG_USER", "postgres"))
    pg_password: str = field(default_factory=lambda: env("PG_PASSWORD", ""))
    db_prefix: str = field(default_factory=lambda: env("LIANDONG_DB_PREFIX", "liandong_"))
    vhost_prefix: str = field(default_factory=lambda: env("LIANDONG_VHOST_PREFIX", "/"))
    port_offset: int = field(default_factory=lambda: int(env("LIANDONG_PORT_OFFSET", "0")))
    key_root: str = field(default_factory=lambda: env(
        "LIANDONG_BRIDGE_KEY_ROOT", str(REPO / ".run" / "bridge-keys")))

    def bridge_key_dir(self) -> Path:
        """Where this site's cities keep their Ed25519 bridge keys (one folder per site)."""
        return Path(self.key_root) / self.db_prefix.strip("_")

    def vhost(self, city: str) -> str:
        return f"{self.vhost_prefix}{city}"

    def database(self, city: str) -> str:
        return f"{self.db_prefix}{city}"

    def amqp_uri(self, city: str) -> str:
        return (f"amqp://{quote(self.rabbit_user, safe='')}:{quote(self.rabbit_password, safe='')}@"
                f"{self.rabbit_host}:{self.rabbit_port}/{quote(self.vhost(city), safe='')}")

    def database_url(self, city: str, dbname: str | None = None) -> str:
        auth = quote(self.pg_user, safe="") + (
            f":{quote(self.pg_password, safe='')}" if self.pg_password else "")
        return (f"postgresql+psycopg2://{auth}@{self.pg_host}:{self.pg_port}/"
                f"{dbname or self.database(city)}")

    def management_url(self) -> str:
        return (f"http://{quote(self.rabbit_user, safe='')}:{quote(self.rabbit_password, safe='')}@"
                f"{self.rabbit_host}:{self.rabbit_mgmt_port}")

    def gateway_port(self, city: str) -> int:
        override = os.environ.get(f"GATEWAY_PORT_{city.upper()}")
        return int(override) if override else GATEWAY_PORTS[city] + self.port_offset

    def service_port(self, service: str, city: str, replica: int = 0) -> int:
        if service == "gateway":
            return self.gateway_port(city)
        return (SERVICE_PORT_BASE[service] + CITY_CODES.index(city) + 1 + 50 * replica
                + self.port_offset)

    def service_env(self, city: str, service: str, replica: int = 0) -> dict[str, str]:
        """The environment of one service process of one city."""
        return {
            "CITY": city,
            "AMQP_URI": self.amqp_uri(city),
            "DATABASE_URL": self.database_url(city),
            "RABBIT_MANAGEMENT_URL": self.management_url(),
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{self.service_port(service, city, replica)}",
            "BRIDGE_KEY_DIR": str(self.bridge_key_dir()),
        }


def site() -> Site:
    return Site()

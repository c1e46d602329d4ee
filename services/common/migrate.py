"""Alembic, one migration history per service schema, run programmatically.

Each service has `services/<name>/migrations/` whose `env.py` calls `run_env(metadata)`. The
version table lives in the service's own schema, so services migrate independently.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import create_engine, text

SERVICES_DIR = Path(__file__).resolve().parents[1]
# Services with a database schema, in migration order.
SCHEMA_SERVICES = ("gateway", "leads", "bridge", "cases", "supervision", "transport",
                   "jointops")


def alembic_config(service: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["service"] = service
    return cfg


def upgrade(url: str, services: tuple[str, ...] = SCHEMA_SERVICES, revision: str = "head") -> None:
    for service in services:
        command.upgrade(alembic_config(service, url), revision)


def run_env(metadata) -> None:
    """Body of every service's migrations/env.py (online mode only)."""
    schema = metadata.schema
    url = context.config.get_main_option("sqlalchemy.url")
    engine = create_engine(url)
    with engine.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection.commit()
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_name=lambda name, type_, parent: (
                type_ != "schema" or name == schema
            ),
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()

"""Configuration: one YAML file (`deploy/nameko.yml`) with environment substitution.

Inside a nameko process the values live in `nameko.config`; command-line tools load the same file
with `load_config()`, so a setting has one name and one default everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nameko import config as _nameko_config

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILE = REPO_ROOT / "deploy" / "nameko.yml"


def load_config(path: Path | None = None) -> dict[str, Any]:
    """Load the config file with `${VAR:default}` substitution from the current environment."""
    import yaml
    from nameko.cli.utils.config import setup_yaml_parser

    setup_yaml_parser()
    with open(path or CONFIG_FILE) as fh:
        return yaml.safe_load(fh)


def setting(key: str, default: Any = None) -> Any:
    """A setting of the running process (nameko's config), falling back to the config file."""
    if key in _nameko_config:
        value = _nameko_config[key]
    else:
        value = _file_config().get(key, default)
    return default if value in (None, "") and default is not None else value


_cached: dict[str, Any] | None = None


def _file_config() -> dict[str, Any]:
    global _cached
    if _cached is None:
        _cached = load_config()
    return _cached


def city() -> str:
    return str(setting("CITY"))

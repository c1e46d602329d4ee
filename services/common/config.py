"""Configuration: one YAML file (`deploy/nameko.yml`) with environment substitution.

Inside a nameko process the values live in `nameko.config`; command-line tools load the same file
with `load_config()`, so a setting has one name and one default everywhere.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import yaml
from nameko import config as _nameko_config
from nameko.cli.utils.config import IMPLICIT_ENV_VAR_MATCHER, env_var_constructor

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILE = REPO_ROOT / "deploy" / "nameko.yml"


class _ConfigLoader(yaml.SafeLoader):
    """nameko's `${VAR:default}` syntax on a loader of our own: nameko's `setup_yaml_parser`
    would change `yaml.SafeLoader` for every other YAML file read in the process."""


_ConfigLoader.add_constructor("!env_var", env_var_constructor)
_ConfigLoader.add_constructor("!raw_env_var", partial(env_var_constructor, raw=True))
_ConfigLoader.add_implicit_resolver("!env_var", IMPLICIT_ENV_VAR_MATCHER, None)


def load_config(path: Path | None = None) -> dict[str, Any]:
    """Load the config file with `${VAR:default}` substitution from the current environment."""
    with open(path or CONFIG_FILE) as fh:
        return yaml.load(fh, Loader=_ConfigLoader)  # noqa: S506 - a SafeLoader subclass


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

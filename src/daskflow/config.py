"""daskflow's configuration: a ``daskflow`` section of ``dask.config``.

The defaults ship in ``daskflow.yaml`` beside this module and are merged into
``dask.config`` at import (cheap: one small YAML file). Users override them the
Dask way: YAML under ``~/.config/dask/``, environment variables
``DASK_DASKFLOW__CLUSTER=sync``, or ``dask.config.set({"daskflow.cluster": ...})``.
Values are read when used, never frozen at import.
"""

from __future__ import annotations

import os
from typing import Any

import dask.config
import yaml

from daskflow.errors import ConfigurationError

__all__ = ["get", "get_seconds"]

_DEFAULTS_FILE = os.path.join(os.path.dirname(__file__), "daskflow.yaml")

with open(_DEFAULTS_FILE) as _f:
    _defaults = yaml.safe_load(_f)

dask.config.update_defaults(_defaults)


def _env_overrides() -> None:
    """Honour ``DASKFLOW__X__Y=v`` as well as Dask's own ``DASK_DASKFLOW__X__Y=v``."""
    for name, value in os.environ.items():
        if name.startswith("DASKFLOW__"):
            path = "daskflow." + ".".join(part.lower() for part in name[10:].split("__"))
            dask.config.set({path: yaml.safe_load(value)})


_env_overrides()


def get(key: str, default: Any = None) -> Any:
    """Read ``daskflow.<key>`` from ``dask.config``."""
    return dask.config.get(f"daskflow.{key}", default=default)


def get_seconds(key: str) -> float:
    """Read a duration (``"20ms"``, ``"10s"`` or a number of seconds) as seconds."""
    from dask.utils import parse_timedelta

    value = get(key)
    try:
        seconds = parse_timedelta(value, default="s")
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"daskflow.{key}", value, "a duration like '10s'") from exc
    if seconds is None or seconds < 0:
        raise ConfigurationError(f"daskflow.{key}", value, "a duration of 0 or more")
    return float(seconds)

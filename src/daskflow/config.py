"""daskflow's configuration: a ``daskflow`` section of ``dask.config``.

The defaults ship in ``daskflow.yaml`` beside this module and are merged into
``dask.config`` at import (cheap: one small YAML file). Users override them the
Dask way, and with Dask's precedence, highest first:

1. ``dask.config.set({"daskflow.cluster": ...})`` at run time;
2. environment variables: ``DASK_DASKFLOW__CLUSTER=sync`` (read by Dask),
   ``DASKFLOW__CLUSTER=sync``, and the short names in :data:`ENV_NAMES`
   (``DASKFLOW_STORE``, ``DASKFLOW_RESULTS``, ``DASKFLOW_JOURNAL``,
   ``DASKFLOW_DASHBOARD_PASSWORD``);
3. YAML files under ``~/.config/dask/`` (read by Dask);
4. the shipped defaults.

Like Dask's ``DASK_*`` variables, the environment is read when daskflow is
imported (:func:`refresh` reads it again); values are read from
``dask.config`` when used, never frozen at import.
"""

from __future__ import annotations

import os
from typing import Any

import dask.config
import yaml

from daskflow.errors import ConfigurationError

__all__ = ["ENV_NAMES", "get", "get_seconds", "refresh"]

#: Environment variables with short names, and the config key each one sets.
ENV_NAMES = {
    "DASKFLOW_STORE": "daskflow.store",
    "DASKFLOW_RESULTS": "daskflow.results",
    "DASKFLOW_JOURNAL": "daskflow.journal",
    "DASKFLOW_DASHBOARD_PASSWORD": "daskflow.dashboard.password",
}

_DEFAULTS_FILE = os.path.join(os.path.dirname(__file__), "daskflow.yaml")

with open(_DEFAULTS_FILE) as _f:
    # libyaml's parser where PyYAML has it: the same values, a few ms less at every
    # start (of the flow's process and of each worker process, which import this too)
    _defaults = yaml.load(_f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))

dask.config.update_defaults(_defaults)


def refresh() -> None:
    """Read daskflow's environment variables into ``dask.config`` (done at import).

    ``DASKFLOW__X__Y=v`` sets ``daskflow.x.y`` (the value read as YAML, as Dask
    reads ``DASK_*``); the names in :data:`ENV_NAMES` set their key to the
    text as it is (a path or a password is never reinterpreted). They land
    above the YAML files and below anything ``dask.config.set`` sets later.
    """
    values: dict[str, Any] = {}
    for name, value in os.environ.items():
        if name.startswith("DASKFLOW__"):
            path = "daskflow." + ".".join(part.lower() for part in name[10:].split("__"))
            values[path] = yaml.safe_load(value)
        elif name in ENV_NAMES:
            values[ENV_NAMES[name]] = value
    if values:
        dask.config.set(values)


refresh()


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

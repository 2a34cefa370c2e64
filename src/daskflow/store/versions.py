"""The store's schema versions, and how a database is recognised (no SQLAlchemy).

:func:`recognise` tells an empty database (to be created) from a daskflow
store of this version, from an older one (to be upgraded) and from anything
else, from the names of its tables and the version the store records. It
reads only, so a database that is not daskflow's, or was written by a newer
daskflow, is refused before a single byte is written. SQLite stores are
recognised through :mod:`sqlite3` alone (:mod:`daskflow.store.sqlite`);
:func:`daskflow.store.schema.inspect_schema` asks SQLAlchemy for the same
facts on other databases. The tables themselves are in
:mod:`daskflow.store.schema`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from daskflow.errors import StoreError

from .base import error_reason

__all__ = ["SCHEMA_VERSION", "TABLES", "TABLES_ADDED", "recognise"]

#: Version of the tables of :mod:`daskflow.store.schema`; stored in ``meta``.
#: Bump it (and migrate) on change.
SCHEMA_VERSION = 8

#: The names of every table of the current schema.
TABLES = frozenset(
    {
        "meta",
        "flow_runs",
        "task_runs",
        "transitions",
        "logs",
        "replayed",
        "deployments",
        "deployment_runs",
        "artifacts",
        "task_edges",
        "resource_samples",
    }
)

#: The tables each schema version added (created on upgrade).
TABLES_ADDED: dict[int, tuple[str, ...]] = {
    4: ("replayed",),
    5: ("deployments", "deployment_runs", "artifacts"),
    6: ("task_edges", "resource_samples"),
}

Found = Literal["empty", "current", "older"]


def recognise(
    names: set[str], read_version: Callable[[], str | None], *, sqlite: bool, where: str
) -> Found:
    """Say whether a database is empty, a daskflow store of this version, or an older one.

    Parameters
    ----------
    names
        The names of the database's tables.
    read_version
        Reads the ``schema_version`` the ``meta`` table holds (None: no such row).
    sqlite
        A SQLite file holds one application's tables: any other table means
        it is not ours. Other databases may hold other tables beside ours.
    where
        What error messages call the store.

    Raises
    ------
    StoreError
        For a database with tables that are not daskflow's, a store without
        a readable schema version, a layout that lacks tables, or one written
        by a newer daskflow.
    """
    ours = names & TABLES
    others = names - TABLES
    if not ours and (not others or not sqlite):
        return "empty"
    if sqlite and others:
        listed = ", ".join(sorted(others)[:5])
        raise StoreError(where, f"not a daskflow database (it holds other tables: {listed})")
    if "meta" not in names:
        raise StoreError(where, "not a daskflow database (it has no schema version)")
    try:
        value = read_version()
        version = int(value) if value is not None else None
    except Exception as exc:  # the driver's error, or a value that is no number
        raise StoreError(
            where, f"corrupt: unreadable schema version ({error_reason(exc)})"
        ) from exc
    if version is None:
        raise StoreError(where, "not a daskflow database (it has no schema version)")
    if version > SCHEMA_VERSION:
        raise StoreError(
            where,
            f"written by a newer daskflow (schema version {version}; this daskflow reads "
            f"up to {SCHEMA_VERSION}): upgrade daskflow to read it",
        )
    added_later = {name for step, new in TABLES_ADDED.items() if step > version for name in new}
    missing = TABLES - names - added_later
    if missing:
        raise StoreError(
            where, f"corrupt or unknown layout (tables missing: {', '.join(sorted(missing))})"
        )
    if version < 1:
        raise StoreError(where, f"corrupt or unknown layout (schema version {version})")
    return "current" if version == SCHEMA_VERSION else "older"

"""The SQL store's artifacts: writing a batch's artifact events, and reading them back.

Artifacts (:mod:`daskflow.artifacts`) travel with a batch of run events like
log records and are written in the same transaction, by :func:`write`:

- one SELECT (per 500 ids) of the rows the batch's events touch — for a
  batch of new artifacts it finds none, for a progress update its artifact;
- :func:`~daskflow.store.fold.merge_artifacts` (shared with the in-memory
  store) makes the rows after the events;
- one ``executemany`` INSERT of the new rows and one ``executemany`` UPDATE
  of the rows that changed.

So a batch costs a few statements however many artifacts it carries, and
an artifact costs what a log record costs on top of it: a row of an
``executemany``.

:func:`query` builds the one SELECT every read uses: a flow run's artifacts,
a key's history, one artifact by id, or the latest artifact of each key (a
window function, which SQLite has had since 3.25 and PostgreSQL always),
newest first, with the name of the task that created each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from daskflow.observers.events import ArtifactCreated, ArtifactUpdated

from .base import ArtifactRow
from .columns import clean, fit
from .fold import merge_artifacts
from .schema import artifacts, task_runs

__all__ = ["query", "row", "write"]

#: At most this many ids in one ``IN (...)``.
_CHUNK = 500
_COLUMNS = (
    "id",
    "key",
    "type",
    "data",
    "description",
    "created",
    "updated",
    "flow_run_id",
    "task_run_id",
)
_INSERT = artifacts.insert()
_UPDATE = (
    sa.update(artifacts)
    .where(artifacts.c.id == sa.bindparam("b_id"))
    .values({name: sa.bindparam(f"b_{name}") for name in _COLUMNS if name != "id"})
)

#: ``executemany(conn, statement, rows)``: the store's own (SQLite takes tuples, compiled once).
ExecuteMany = Callable[[sa.Connection, Any, list[dict[str, Any]]], None]


def write(
    conn: sa.Connection,
    events: Sequence[ArtifactCreated | ArtifactUpdated],
    executemany: ExecuteMany,
) -> None:
    """Record a batch's artifact events (in the caller's transaction)."""
    if not events:
        return
    ids = list(dict.fromkeys(event.artifact_id for event in events))
    table = artifacts
    stored: dict[str, ArtifactRow] = {}
    for chunk in _chunks(ids):
        query = sa.select(*(table.c[name] for name in _COLUMNS)).where(table.c.id.in_(chunk))
        for found in conn.execute(query.with_for_update()):
            stored[found.id] = row(found)
    after = merge_artifacts(stored, events)
    new = [_values(r) for artifact_id, r in after.items() if artifact_id not in stored]
    changed = [
        {f"b_{name}": value for name, value in _values(r).items()}
        for artifact_id, r in after.items()
        if artifact_id in stored and r != stored[artifact_id]
    ]
    executemany(conn, _INSERT, new)
    executemany(conn, _UPDATE, changed)


def query(
    *,
    flow_run_id: str | None = None,
    key: str | None = None,
    artifact_id: str | None = None,
    latest: bool = False,
    limit: int | None = None,
) -> sa.Select[Any]:
    """The SELECT of :meth:`~daskflow.store.base.RunStore.list_artifacts`, newest first."""
    a = artifacts
    where = []
    if flow_run_id is not None:
        where.append(a.c.flow_run_id == flow_run_id)
    if key is not None:
        where.append(a.c.key == key)
    if artifact_id is not None:
        where.append(a.c.id == artifact_id)
    if latest:
        where.append(a.c.key.is_not(None))
        rank = (
            sa.func.row_number()
            .over(partition_by=a.c.key, order_by=(a.c.created.desc(), a.c.seq.desc()))
            .label("rank")
        )
        ranked = sa.select(a, rank).where(*where).subquery()
        source: Any = sa.select(ranked).where(ranked.c.rank == 1).subquery()
    else:
        source = sa.select(a).where(*where).subquery()
    name = task_runs.c.task_name
    return (
        sa.select(*(source.c[column] for column in _COLUMNS), name)
        .select_from(source.outerjoin(task_runs, source.c.task_run_id == task_runs.c.id))
        .order_by(source.c.created.desc(), source.c.seq.desc())
        .limit(limit)
    )


def row(r: Any) -> ArtifactRow:
    """The public row of an ``artifacts`` result row (``task_name`` where it was read)."""
    return ArtifactRow(
        id=r.id,
        key=r.key,
        type=r.type,
        data=r.data,
        description=r.description,
        created=r.created,
        updated=r.updated,
        flow_run_id=r.flow_run_id,
        task_run_id=r.task_run_id,
        task_name=getattr(r, "task_name", None),
    )


def _values(r: ArtifactRow) -> dict[str, Any]:
    return {
        "id": r.id,
        "key": fit(r.key),
        "type": r.type,
        "data": clean(r.data),
        "description": clean(r.description),
        "created": r.created,
        "updated": r.updated,
        "flow_run_id": r.flow_run_id,
        "task_run_id": r.task_run_id,
    }


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]

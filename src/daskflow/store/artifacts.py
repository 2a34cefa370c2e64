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
newest first, with the name of the task that created each. The writes are
SQL text run on the driver (:mod:`daskflow.store.driver`); SQLAlchemy is
imported by :func:`query` only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from daskflow.observers.events import ArtifactCreated, ArtifactUpdated

from .base import ArtifactRow
from .columns import clean, fit
from .driver import Driver, Statements
from .fold import merge_artifacts

if TYPE_CHECKING:
    import sqlalchemy as sa

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
_CHANGED = _COLUMNS[1:]  # what an UPDATE sets (by id)


def write(
    conn: Driver, sql: Statements, events: Sequence[ArtifactCreated | ArtifactUpdated]
) -> None:
    """Record a batch's artifact events (in the caller's transaction)."""
    if not events:
        return
    ids = list(dict.fromkeys(event.artifact_id for event in events))
    stored: dict[str, ArtifactRow] = {}
    for chunk in _chunks(ids):
        for found in conn.rows(sql.select_in("artifacts", _COLUMNS, len(chunk)), chunk):
            stored[found[0]] = ArtifactRow(*found)
    after = merge_artifacts(stored, events)
    new = [_values(r) for artifact_id, r in after.items() if artifact_id not in stored]
    changed = [
        (*_values(r)[1:], artifact_id)
        for artifact_id, r in after.items()
        if artifact_id in stored and r != stored[artifact_id]
    ]
    conn.many(sql.insert("artifacts", _COLUMNS), new)
    conn.many(sql.update("artifacts", _CHANGED), changed)


def query(
    *,
    flow_run_id: str | None = None,
    key: str | None = None,
    artifact_id: str | None = None,
    latest: bool = False,
    limit: int | None = None,
) -> sa.Select[Any]:
    """The SELECT of :meth:`~daskflow.store.base.RunStore.list_artifacts`, newest first."""
    import sqlalchemy as sa

    from .schema import artifacts, task_runs

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


def _values(r: ArtifactRow) -> tuple[Any, ...]:
    """The row's values in ``_COLUMNS`` order, fitted and cleaned for any database."""
    return (
        r.id,
        fit(r.key),
        r.type,
        clean(r.data),
        clean(r.description),
        r.created,
        r.updated,
        r.flow_run_id,
        r.task_run_id,
    )


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]

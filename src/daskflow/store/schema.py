"""The SQL store's tables, and how an existing database is recognised.

Eleven tables (SQLAlchemy Core, no ORM)::

    meta         key, value                   ("schema_version", "8")
    flow_runs    id, names, parameters (JSON), created, status columns, heartbeat,
                 resumed_from, entrypoint, scheduled_time, cancel_requested
    task_runs    seq, id, flow_run_id, names, tags (JSON), created, status columns,
                 parent_task_run_id, transitions_implied
    transitions  seq, flow_run_id, task_run_id, state, timestamp, ... details (JSON)
    logs         seq, flow_run_id, task_run_id, timestamp, level, logger, message
    replayed     id, replayed                 (journal batches written: see store.journal)
    deployments  flow_name, name, parameters, parameter_schema, schedule, heartbeat, ...
    deployment_runs  flow_run_id, flow_name, deployment, requested, claimed_by, claimed
    artifacts    seq, id, key, type, data (JSON), description, created, updated,
                 flow_run_id, task_run_id     (daskflow.artifacts: see store.artifacts)
    task_edges   seq, flow_run_id, kind ("task" or "run"), upstream, downstream
    resource_samples  seq, flow_run_id, timestamp, worker, cpu, memory

The "status columns" of both run tables are those of
:class:`daskflow.store.fold.RunStatus` (``result`` is the stored result's
record as JSON: location, format, size, cache key). ``seq`` columns are autoincrement keys
that keep insertion order (task runs are listed in creation order). The
indexes serve the queries of the CLI and the dashboard at 1,000 flow runs and
1,000,000 task runs: task runs of a flow run in order, counted per
task name and state, and binned by start time for the timeline (a covering
index: neither touches the table), transitions of a run, logs of a flow run in time order.

:func:`inspect_schema` tells an empty database (to be created) from a
daskflow store and from anything else, reading only: a database that is not
daskflow's, or was written by a newer daskflow, raises
:class:`~daskflow.errors.StoreError` before a single byte is written. A store
of an older schema is upgraded in place by :func:`upgrade_schema`, adding
the columns later versions brought, empty: version 2 ``result``,
``resumed_from`` and ``entrypoint``; version 3 ``scheduled_time`` (the slot of
a run started by ``serve``) and ``cancel_requested``; version 4 the
``replayed`` table (ids of the journal batches written, so that a journal
replayed twice is written once); version 5 the ``deployments`` and
``deployment_runs`` tables (:mod:`daskflow.store.deployments`) and the
``artifacts`` table (:mod:`daskflow.store.artifacts`); version 6 the
``task_edges`` and ``resource_samples`` tables (the run graph,
:mod:`daskflow.store.graph`, and worker CPU and memory,
:mod:`daskflow.store.resources`); version 7 put ``start_time`` into the index
of task runs by task name and state (:data:`_INDEXES_REPLACED`), and added
``parent_task_run_id`` to task runs (the task run that started a nested one,
:mod:`daskflow.engine.nested`); version 8 ``transitions_implied`` (1: the run's
PENDING, RUNNING and COMPLETED transitions are read from its row, not written
as rows of ``transitions``: :mod:`daskflow.store.implied`).
"""

from __future__ import annotations

import sqlalchemy as sa

from daskflow.errors import StoreError

from .base import error_reason
from .versions import SCHEMA_VERSION, TABLES_ADDED, Found, recognise

__all__ = [
    "SCHEMA_VERSION",
    "artifacts",
    "create_schema",
    "deployment_runs",
    "deployments",
    "error_reason",
    "flow_runs",
    "inspect_schema",
    "logs",
    "meta",
    "metadata",
    "replayed",
    "resource_samples",
    "task_edges",
    "task_runs",
    "transitions",
    "upgrade_schema",
]

metadata = sa.MetaData()
_Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: an alias of rowid
_Id = sa.String(64)
_Time: sa.Double[float] = sa.Double()


def _status_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_time", _Time),
        sa.Column("state_message", sa.Text, nullable=False, default=""),
        sa.Column("start_time", _Time),
        sa.Column("end_time", _Time),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("worker", sa.String(255)),
        sa.Column("error_type", sa.String(255)),
        sa.Column("error_message", sa.Text),
        sa.Column("traceback", sa.Text),
        sa.Column("result", sa.Text),
    ]


meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

flow_runs = sa.Table(
    "flow_runs",
    metadata,
    sa.Column("id", _Id, primary_key=True),
    sa.Column("flow_name", sa.String(255), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("parameters", sa.Text, nullable=False),
    sa.Column("parent_flow_run_id", _Id),
    sa.Column("version", sa.String(255)),
    sa.Column("created", _Time, nullable=False),
    sa.Column("heartbeat", _Time),
    sa.Column("resumed_from", _Id),
    sa.Column("entrypoint", sa.Text),  # "path/to/file.py:flow_name": what `runs retry` loads
    sa.Column("scheduled_time", _Time),  # the schedule slot of a run started by serve
    sa.Column("cancel_requested", _Time),  # when `runs cancel` asked (the flow's process acts)
    *_status_columns(),
    sa.Index("ix_flow_runs_created", "created"),
    sa.Index("ix_flow_runs_flow_name", "flow_name", "created"),
    sa.Index("ix_flow_runs_state", "state"),
    sa.Index("ix_flow_runs_parent", "parent_flow_run_id"),
)

task_runs = sa.Table(
    "task_runs",
    metadata,
    sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
    sa.Column("id", _Id, nullable=False, unique=True),
    sa.Column("flow_run_id", _Id, nullable=False),
    sa.Column("task_name", sa.String(255), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("map_index", sa.Integer),
    sa.Column("tags", sa.Text, nullable=False),
    sa.Column("created", _Time, nullable=False),
    *_status_columns(),
    # -- version 7: the task run that started this one (a nested run), else None
    sa.Column("parent_task_run_id", _Id),
    # -- version 8: 1 when the run's plain history is read from this row (store.implied)
    sa.Column("transitions_implied", sa.Integer),
    sa.Index("ix_task_runs_flow_seq", "flow_run_id", "seq"),
    # covering for the counts per task name and state and for the timeline's bins by
    # start time (version 7 added start_time: 2x faster bins at 1,000,000 task runs)
    sa.Index(
        "ix_task_runs_flow_task_state_start", "flow_run_id", "task_name", "state", "start_time"
    ),
)

transitions = sa.Table(
    "transitions",
    metadata,
    sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
    sa.Column("flow_run_id", _Id, nullable=False),
    sa.Column("task_run_id", _Id),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("timestamp", _Time, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("worker", sa.String(255)),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("error_type", sa.String(255)),
    sa.Column("error_message", sa.Text),
    sa.Column("traceback", sa.Text),
    sa.Column("details", sa.Text, nullable=False),
    sa.Index("ix_transitions_run", "flow_run_id", "task_run_id"),
)

logs = sa.Table(
    "logs",
    metadata,
    sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
    sa.Column("flow_run_id", _Id, nullable=False),
    sa.Column("task_run_id", _Id),
    sa.Column("timestamp", _Time, nullable=False),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("logger", sa.String(255), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Index("ix_logs_flow_time", "flow_run_id", "timestamp"),
)

replayed = sa.Table(
    "replayed",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("replayed", _Time, nullable=False),
)

# -- version 5: deployments (flow.serve(name=...)) and their run requests ---------------
#: One row per served deployment: what ``daskflow deployments list`` shows, what a
#: run request is validated against, and the heartbeat of the process serving it.
deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("flow_name", sa.String(255), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("entrypoint", sa.Text),
    sa.Column("parameters", sa.Text, nullable=False),  # the defaults (JSON)
    sa.Column("parameter_schema", sa.Text, nullable=False),  # JSON schema of the signature
    sa.Column("schedule", sa.Text),  # in words; None: on demand only
    sa.Column("created", _Time, nullable=False),
    sa.Column("updated", _Time, nullable=False),
    sa.Column("heartbeat", _Time),  # the last beat of a serving process; None: stopped
    sa.Column("server", sa.String(64)),  # the serving process that beat last
)

#: One row per run request: its flow run is recorded SCHEDULED; a serving process
#: claims the row (``claimed_by``, in a transaction) and runs it under that id.
deployment_runs = sa.Table(
    "deployment_runs",
    metadata,
    sa.Column("flow_run_id", _Id, primary_key=True),
    sa.Column("flow_name", sa.String(255), nullable=False),
    sa.Column("deployment", sa.String(255), nullable=False),
    sa.Column("requested", _Time, nullable=False),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("claimed", _Time),
    sa.Index("ix_deployment_runs_queue", "flow_name", "deployment", "claimed", "requested"),
)
# -- end of version 5: deployments ----------------------------------------------------

# -- schema version 5: artifacts (daskflow.artifacts; queries in store.artifacts) --------
# ``key`` is None for an artifact without one; ``updated`` is when its data last
# changed (a progress artifact is updated in place); the run ids are None for an
# artifact created outside any run. The indexes serve a key's history, the
# latest artifact of each key, and a flow run's artifacts, newest first.
artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
    sa.Column("id", _Id, nullable=False, unique=True),
    sa.Column("key", sa.String(255)),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("created", _Time, nullable=False),
    sa.Column("updated", _Time, nullable=False),
    sa.Column("flow_run_id", _Id),
    sa.Column("task_run_id", _Id),
    sa.Index("ix_artifacts_key_created", "key", "created"),
    sa.Index("ix_artifacts_flow_created", "flow_run_id", "created"),
)

# -- version 6: the run graph and worker resources (the panel) -------------------------
#: The dependencies of a flow run: ``kind`` "task" rows join task names (one row per
#: pair and flow run, the graph at any size), "run" rows join task run ids (only among
#: a run's first task runs: a small run drawn one node per task run).
task_edges = sa.Table(
    "task_edges",
    metadata,
    sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
    sa.Column("flow_run_id", _Id, nullable=False),
    sa.Column("kind", sa.String(4), nullable=False),
    sa.Column("upstream", sa.String(255), nullable=False),
    sa.Column("downstream", sa.String(255), nullable=False),
    sa.Index("ix_task_edges_flow", "flow_run_id", "kind"),
)

#: Worker CPU (%) and memory (bytes) while a flow run runs on a cluster: one row per
#: worker about once a second.
resource_samples = sa.Table(
    "resource_samples",
    metadata,
    sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
    sa.Column("flow_run_id", _Id, nullable=False),
    sa.Column("timestamp", _Time, nullable=False),
    sa.Column("worker", sa.String(255), nullable=False),
    sa.Column("cpu", _Time, nullable=False),
    sa.Column("memory", _Time, nullable=False),
    sa.Index("ix_resource_samples_flow_time", "flow_run_id", "timestamp"),
)
# -- end of version 6: the run graph and worker resources ------------------------------

_TABLES = frozenset(metadata.tables)
#: Tables each schema version added: created on upgrade.
_TABLES_ADDED: dict[int, tuple[sa.Table, ...]] = {
    step: tuple(metadata.tables[name] for name in names) for step, names in TABLES_ADDED.items()
}


def inspect_schema(conn: sa.Connection, where: str) -> Found:
    """Say whether the database is empty, a daskflow store of this version, or an older one.

    Reads only (:func:`daskflow.store.versions.recognise`). ``where`` names
    the store in error messages.

    Raises
    ------
    StoreError
        For a file that is not a database, a database with tables that are
        not daskflow's (SQLite; other databases may hold other tables beside
        ours), a store without a readable schema version, or one written by
        a newer daskflow.
    """
    try:
        names = set(sa.inspect(conn).get_table_names())
    except sa.exc.DatabaseError as exc:
        raise StoreError(where, f"not a daskflow database ({error_reason(exc)})") from exc

    def read_version() -> str | None:
        query = sa.select(meta.c.value).where(meta.c.key == "schema_version")
        return conn.execute(query).scalar_one_or_none()

    return recognise(names, read_version, sqlite=conn.dialect.name == "sqlite", where=where)


#: Columns each schema version added: ``(table, column)``, created empty on upgrade.
_ADDED: dict[int, tuple[tuple[sa.Table, str], ...]] = {
    2: (
        (flow_runs, "result"),
        (task_runs, "result"),
        (flow_runs, "resumed_from"),
        (flow_runs, "entrypoint"),
    ),
    3: ((flow_runs, "scheduled_time"), (flow_runs, "cancel_requested")),
    7: ((task_runs, "parent_task_run_id"),),
    8: ((task_runs, "transitions_implied"),),
}


#: Indexes each schema version replaced: ``(old index name, new index)``.
_INDEXES_REPLACED: dict[int, tuple[tuple[str, str], ...]] = {
    7: (("ix_task_runs_flow_task_state", "ix_task_runs_flow_task_state_start"),),
}


def upgrade_schema(conn: sa.Connection) -> None:
    """Bring an older store up to :data:`SCHEMA_VERSION` (in the caller's transaction)."""
    version = int(
        conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar_one()
    )
    for step in range(version + 1, SCHEMA_VERSION + 1):
        for new in _TABLES_ADDED.get(step, ()):
            new.create(conn, checkfirst=True)
        for table, name in _ADDED.get(step, ()):
            if any(c["name"] == name for c in sa.inspect(conn).get_columns(table.name)):
                continue  # there already, like the tables created with checkfirst
            column = table.c[name]
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind}"))
        for old, name in _INDEXES_REPLACED.get(step, ()):
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {old}"))
            _index(name).create(conn, checkfirst=True)
    conn.execute(
        sa.update(meta).where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION))
    )


def _index(name: str) -> sa.Index:
    """The index of this name in the current schema."""
    return next(i for table in metadata.tables.values() for i in table.indexes if i.name == name)


def create_schema(conn: sa.Connection) -> None:
    """Create every table and index, and record the schema version."""
    metadata.create_all(conn)
    conn.execute(sa.insert(meta).values(key="schema_version", value=str(SCHEMA_VERSION)))

"""Deployments in the SQL run store: what is served, and the run requests made of it.

A deployment is one row of ``deployments`` (flow name and deployment name,
the default parameters, their JSON schema, the schedule in words, the
heartbeat of a process serving it), written by ``flow.serve(name=...)``.

A run request (``daskflow deployments run``, :func:`daskflow.run_deployment`)
is two things written in order: the flow run itself, recorded SCHEDULED like
a slot of ``serve`` (its id is known at once and ``daskflow runs list``
shows it), then a row of ``deployment_runs`` naming its deployment. Serving
processes poll for unclaimed rows of their deployment (an indexed read),
and **claim** them in one write transaction: the rows are selected ``FOR
UPDATE SKIP LOCKED`` on PostgreSQL (two processes skip each other's rows
instead of waiting), under SQLite's ``BEGIN IMMEDIATE`` write lock on SQLite,
and updated only where still unclaimed. Whatever the database, a request is
claimed by exactly one process, which then runs it under that flow run id.

A request no process claims stays SCHEDULED: ``mark_crashed`` leaves
unclaimed requests alone (no process holds them yet), and the claim gives
the run a heartbeat so a run that waited long is not taken for dead as it
starts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from daskflow.observers.events import FlowRunCreated, StateChanged
from daskflow.states import State, StateType

from .base import FlowRunRow
from .columns import flow_row
from .schema import deployment_runs, deployments, flow_runs

if TYPE_CHECKING:
    from .sql import SQLStore

__all__ = [
    "DeploymentRow",
    "claim_requests",
    "get_deployment",
    "list_deployments",
    "next_slot",
    "recent_runs",
    "record_deployment",
    "release_requests",
    "request_run",
    "serving_beat",
    "stop_serving",
]

#: At most this many cancelled requests are settled per claim.
_CANCELLED_PER_CLAIM = 50


@dataclass(frozen=True, slots=True)
class DeploymentRow:
    """One deployment as stored, with the number of its requests still waiting."""

    flow_name: str
    name: str
    entrypoint: str | None
    parameters: dict[str, Any]
    parameter_schema: dict[str, Any]
    schedule: str | None
    created: float
    updated: float
    heartbeat: float | None
    queued: int = 0

    @property
    def full_name(self) -> str:
        """``flow/deployment``, the name users give to ``deployments run``."""
        return f"{self.flow_name}/{self.name}"


def _row(row: Any, queued: int = 0) -> DeploymentRow:
    return DeploymentRow(
        flow_name=row.flow_name,
        name=row.name,
        entrypoint=row.entrypoint,
        parameters=json.loads(row.parameters),
        parameter_schema=json.loads(row.parameter_schema),
        schedule=row.schedule,
        created=row.created,
        updated=row.updated,
        heartbeat=row.heartbeat,
        queued=queued,
    )


def record_deployment(
    store: SQLStore,
    *,
    flow_name: str,
    name: str,
    entrypoint: str | None,
    parameters: dict[str, Any],
    parameter_schema: dict[str, Any],
    schedule: str | None,
    server: str,
    now: float | None = None,
) -> None:
    """Create or update a deployment, marked served by ``server`` from now."""
    now = time.time() if now is None else now
    d = deployments
    values = {
        "entrypoint": entrypoint,
        "parameters": json.dumps(parameters, default=str),
        "parameter_schema": json.dumps(parameter_schema, default=str),
        "schedule": schedule,
        "updated": now,
        "heartbeat": now,
        "server": server,
    }
    key = (d.c.flow_name == flow_name) & (d.c.name == name)
    with store._lock, store._write() as conn:
        dialect = conn.dialect.name
        if dialect in ("postgresql", "sqlite"):
            # one statement: two processes starting to serve one deployment at the same
            # time would both find no row to update, and the second insert would fail
            from sqlalchemy.dialects import postgresql, sqlite

            insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
            new_row = insert(d).values(flow_name=flow_name, name=name, created=now, **values)
            conn.execute(
                new_row.on_conflict_do_update(index_elements=[d.c.flow_name, d.c.name], set_=values)
            )
            return
        found = conn.execute(sa.select(d.c.name).where(key).with_for_update()).first()
        if found is None:
            conn.execute(sa.insert(d).values(flow_name=flow_name, name=name, created=now, **values))
        else:
            conn.execute(sa.update(d).where(key).values(**values))


def serving_beat(store: SQLStore, flow_name: str, name: str, server: str, now: float) -> None:
    """Say that ``server`` still serves the deployment (every few seconds)."""
    d = deployments
    with store._lock, store._write() as conn:
        conn.execute(
            sa.update(d)
            .where(d.c.flow_name == flow_name, d.c.name == name)
            .values(heartbeat=now, server=server)
        )


def stop_serving(store: SQLStore, flow_name: str, name: str, server: str) -> None:
    """``server`` stopped: clear the heartbeat if it beat last (others beat again soon)."""
    d = deployments
    with store._lock, store._write() as conn:
        conn.execute(
            sa.update(d)
            .where(d.c.flow_name == flow_name, d.c.name == name, d.c.server == server)
            .values(heartbeat=None)
        )


def _queued_counts() -> Any:
    """Unclaimed requests per deployment."""
    dr = deployment_runs
    return (
        sa.select(dr.c.flow_name, dr.c.deployment, sa.func.count().label("queued"))
        .where(dr.c.claimed.is_(None))
        .group_by(dr.c.flow_name, dr.c.deployment)
        .subquery()
    )


def list_deployments(store: SQLStore) -> list[DeploymentRow]:
    """Every deployment, by flow name then name, with its number of waiting requests."""
    d, q = deployments, _queued_counts()
    query = (
        sa.select(d, q.c.queued)
        .select_from(
            d.outerjoin(q, (q.c.flow_name == d.c.flow_name) & (q.c.deployment == d.c.name))
        )
        .order_by(d.c.flow_name, d.c.name)
    )
    with store.engine.connect() as conn:
        return [_row(r, r.queued or 0) for r in conn.execute(query)]


def get_deployment(store: SQLStore, flow_name: str, name: str) -> DeploymentRow | None:
    """One deployment, or None."""
    found = [r for r in list_deployments(store) if r.flow_name == flow_name and r.name == name]
    return found[0] if found else None


def request_run(
    store: SQLStore,
    deployment: DeploymentRow,
    parameters: dict[str, Any],
    flow_run_id: str,
    run_name: str,
    now: float | None = None,
) -> None:
    """Record a run of ``deployment`` (SCHEDULED), then the request a serving process claims.

    ``parameters`` are the run's, already validated and merged with the
    deployment's defaults.
    """
    now = time.time() if now is None else now
    created = FlowRunCreated(
        flow_run_id,
        deployment.flow_name,
        run_name,
        parameters,
        None,
        now,
        None,
        None,
        deployment.entrypoint,
    )
    scheduled = State(StateType.SCHEDULED, now, f"requested of deployment {deployment.full_name}")
    store.write([created, StateChanged(flow_run_id, None, scheduled)])
    with store._lock, store._write() as conn:
        conn.execute(
            sa.insert(deployment_runs).values(
                flow_run_id=flow_run_id,
                flow_name=deployment.flow_name,
                deployment=deployment.name,
                requested=now,
            )
        )


def claim_requests(
    store: SQLStore,
    flow_name: str,
    name: str,
    server: str,
    limit: int,
    now: float | None = None,
) -> list[tuple[str, bool]]:
    """Claim up to ``limit`` waiting requests of a deployment, oldest first, for ``server``.

    Requests whose run was asked to cancel are claimed too, whatever
    ``limit`` (the caller records them CANCELLED). A cheap read comes first:
    the write transaction is taken only when something waits.

    Returns
    -------
    list of (str, bool)
        The flow run ids claimed, each with whether cancellation was asked for.
    """
    now = time.time() if now is None else now
    dr, fr = deployment_runs, flow_runs
    mine = (dr.c.flow_name == flow_name) & (dr.c.deployment == name) & dr.c.claimed.is_(None)
    with store.engine.connect() as conn:
        if conn.execute(sa.select(dr.c.flow_run_id).where(mine).limit(1)).first() is None:
            return []
    cancelled = fr.c.cancel_requested.is_not(None)
    base = sa.select(dr.c.flow_run_id, cancelled.label("cancelled")).select_from(
        dr.join(fr, fr.c.id == dr.c.flow_run_id)
    )
    claimed: list[tuple[str, bool]] = []
    with store._lock, store._write() as conn:
        for condition, count in ((cancelled, _CANCELLED_PER_CLAIM), (~cancelled, limit)):
            if count <= 0:
                continue
            query = (
                base.where(mine, condition)
                .order_by(dr.c.requested, dr.c.flow_run_id)
                .limit(count)
                .with_for_update(of=dr, skip_locked=True)
            )
            claimed.extend((row[0], bool(row[1])) for row in conn.execute(query))
        ids = [flow_run_id for flow_run_id, _ in claimed]
        if ids:
            done = conn.execute(
                sa.update(dr)
                .where(dr.c.flow_run_id.in_(ids), dr.c.claimed.is_(None))
                .values(claimed_by=server, claimed=now)
            )
            if done.rowcount != len(ids):  # another process was first (not on our databases)
                taken = sa.select(dr.c.flow_run_id).where(
                    dr.c.flow_run_id.in_(ids), dr.c.claimed_by == server
                )
                mine_now = set(conn.execute(taken).scalars())
                claimed = [c for c in claimed if c[0] in mine_now]
                ids = [c[0] for c in claimed]
            # alive from now: a request that waited long is not taken for a dead run
            conn.execute(sa.update(fr).where(fr.c.id.in_(ids)).values(heartbeat=now))
    return claimed


def release_requests(store: SQLStore, flow_run_ids: Sequence[str], server: str) -> None:
    """Give claimed requests back (a process that stops before starting them)."""
    if not flow_run_ids:
        return
    dr = deployment_runs
    with store._lock, store._write() as conn:
        conn.execute(
            sa.update(dr)
            .where(dr.c.flow_run_id.in_(list(flow_run_ids)), dr.c.claimed_by == server)
            .values(claimed_by=None, claimed=None)
        )


def recent_runs(store: SQLStore, deployment: DeploymentRow, limit: int = 5) -> list[FlowRunRow]:
    """A deployment's newest runs: those requested of it and, if it has a schedule, its slots.

    Runs of a schedule are recorded against the flow, not the deployment
    (``serve`` records a slot's run with its time): for a deployment with a
    schedule, the flow's runs of a schedule slot that no deployment's
    request made count as its own. One query on the flow's runs, newest first.
    """
    fr, dr = flow_runs, deployment_runs
    of_flow = dr.c.flow_name == deployment.flow_name
    mine: Any = fr.c.id.in_(
        sa.select(dr.c.flow_run_id).where(of_flow, dr.c.deployment == deployment.name)
    )
    if deployment.schedule is not None:
        requested = sa.select(dr.c.flow_run_id).where(of_flow)
        mine = mine | (fr.c.scheduled_time.is_not(None) & fr.c.id.not_in(requested))
    query = (
        sa.select(fr)
        .where(fr.c.flow_name == deployment.flow_name, mine)
        .order_by(fr.c.created.desc(), fr.c.id.desc())
        .limit(limit)
    )
    with store.engine.connect() as conn:
        return [flow_row(r) for r in conn.execute(query)]


def next_slot(store: SQLStore, flow_name: str) -> float | None:
    """The time of the flow's next schedule slot: its SCHEDULED run that ``serve`` recorded."""
    fr = flow_runs
    query = sa.select(sa.func.min(fr.c.scheduled_time)).where(
        fr.c.flow_name == flow_name,
        fr.c.state == StateType.SCHEDULED.value,
        fr.c.scheduled_time.is_not(None),
    )
    with store.engine.connect() as conn:
        value = conn.execute(query).scalar()
    return None if value is None else float(value)

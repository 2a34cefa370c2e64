"""The end of a flow run's attempt: final states of its task runs, and letting them go.

:func:`conclude` decides and publishes the final state of every task run of a
runner once the flow function returned (or the attempt was cut short): what
workers reported, and what they could not — runs whose last events never
arrived (drained first), attempts that died with a worker
(:mod:`daskflow.engine.worker_loss`), runs that never started. The runner
(:mod:`daskflow.engine.runner`) submits and tracks; this module ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from daskflow.engine.backends import DistributedBackend
from daskflow.engine.call import TaskRunInfo
from daskflow.engine.hooks import call_hooks, hooks_for
from daskflow.observers.events import StateChanged, bus
from daskflow.states import State, StateType

if TYPE_CHECKING:
    from daskflow.engine.runner import FlowRunner
    from daskflow.engine.runs import TaskRun

__all__ = ["conclude", "release_futures", "task_run_info"]


def conclude(runner: FlowRunner) -> list[tuple[TaskRun, State]]:
    """Final states of all runs; publishes what workers could not report.

    That is the final state of runs whose last events never arrived, and
    the attempts that died with a worker (:mod:`daskflow.engine.worker_loss`).
    Returns the failed runs with their states.
    """
    backend = runner.backend
    rebuilt: list[StateChanged] = []
    if isinstance(backend, DistributedBackend):
        if bus.active and (
            any(r.final_event is None for r in (*runner.runs, *runner.nested))
            or len(runner.nested) < runner.nested_expected  # announcements on their way
        ):
            backend.drain_events()  # every transition, before the flow run ends
        backend.fetch_failures(runner.runs)
        if bus.active:
            rebuilt = backend.lost_attempts(
                runner.flow_run_id, runner.runs, runner.workers_lost, runner.placements or {}
            )
    failed = []
    missing: list[StateChanged] = []
    reported = {id(r) for r in runner.runs if r.final_event is not None or r.local_state}
    if bus.active and isinstance(backend, DistributedBackend):
        backend.fill_workers([r for r in runner.runs if id(r) not in reported and not r.worker])
    for run in runner.runs:
        state = runner.final_state(run)
        if state is None:
            state = State(StateType.CANCELLED, message="the flow run ended first")
        if run.local_state is None and run.final_event is None:
            run.local_state = state  # keep what the client concluded (and its time)
        if state.type.is_failed:
            failed.append((run, state))
        if id(run) in reported:
            continue
        if bus.active:
            missing.append(StateChanged(runner.flow_run_id, run.id, state, run.attempt, run.worker))
        hooks = hooks_for(run.task.options, state) if state.type.is_failed else ()
        if hooks:  # the wrapper never reached its hooks (a dead worker, a Dask error)
            call_hooks(hooks, run.task, task_run_info(runner, run), state)
    if bus.active:
        missing.extend(_unreported_nested(runner))
        bus.publish(rebuilt + missing)
    return failed


def _unreported_nested(runner: FlowRunner) -> list[StateChanged]:
    """Final states of nested runs whose end never arrived (their parent could not wait).

    A parent task run waits for the runs it started, so this is rare: a
    parent that crashed, timed out or was cancelled while they ran.
    """
    state = State(StateType.CANCELLED, message="its parent task run ended first")
    return [
        StateChanged(runner.flow_run_id, run.id, state, run.attempt, run.worker)
        for run in runner.nested
        if run.final_event is None
    ]


def task_run_info(runner: FlowRunner, run: TaskRun) -> TaskRunInfo:
    """What a task's hooks are told about ``run`` (when the client calls them)."""
    return TaskRunInfo.of(
        run.task,
        run.id,
        run.run_name,
        runner.flow_run_id,
        run.map_index,
        run.attempt,
        flow_name=runner.flow_name,
        panel_url=runner.panel_url,
    )


def release_futures(runner: FlowRunner) -> None:
    """Let the cluster forget this flow run's results."""
    if isinstance(runner.backend, DistributedBackend):
        runner.backend.release(runner.runs)

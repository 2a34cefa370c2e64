"""States as values (Prefect 3): tasks and flows that return a State, ``return_state=True``.

A task returning ``Failed(...)`` ends FAILED with that message and its
downstream UPSTREAM_FAILED; ``Completed(data=v)`` completes with ``v``; a
flow returning a failed state, or a collection holding one, fails. A direct
call ``t(x, return_state=True)`` gives the run's final State and never raises
for its failure. Each flow run ends with one ``Finished in state ...`` record.
"""

from __future__ import annotations

import logging

import pytest

from daskflow import flow, runs, task
from daskflow.errors import FailedRunError
from daskflow.states import (
    Cached,
    Cancelled,
    Completed,
    Crashed,
    Failed,
    Pending,
    Running,
    Scheduled,
    State,
    StateType,
)


@task
def toggle(fail: bool) -> State:
    if fail:
        return Failed(message="I was instructed to fail.")
    return Completed(message="I was instructed to succeed.", data=41)


@task
def plus_one(x: int) -> int:
    return x + 1


@task
def divide(x: int) -> float:
    return 1 / x


@task
def not_final() -> State:
    return Pending()


@task
def failed_with(exc: BaseException) -> State:
    return Failed(message="it broke", data=exc)


def latest(f) -> object:
    return runs(flow=f.name, limit=1)[0]


def by_name(flow_run) -> dict[str, list]:
    found: dict[str, list] = {}
    for run in flow_run.task_runs:
        found.setdefault(run.name, []).append(run)
    return found


def test_the_constructors_make_states_of_their_type_with_message_and_data():
    made = {
        f: f(message="m", data=1)
        for f in (Completed, Failed, Cancelled, Crashed, Pending, Running, Scheduled, Cached)
    }
    assert [s.type for s in made.values()] == [
        StateType.COMPLETED,
        StateType.FAILED,
        StateType.CANCELLED,
        StateType.CRASHED,
        StateType.PENDING,
        StateType.RUNNING,
        StateType.SCHEDULED,
        StateType.CACHED,
    ]
    assert all(s.message == "m" for s in made.values())
    assert Completed(data=3).result() == 3
    assert Cached().is_completed()
    assert not Crashed().is_completed()
    assert str(Completed()) == "Completed()"
    assert str(Failed(message="boom")) == "Failed('boom')"
    with pytest.raises(FailedRunError, match="no rows today"):
        Failed(message="no rows today").result()
    with pytest.raises(KeyError):
        Failed(data=KeyError("k")).result()


def test_a_returned_failed_state_fails_the_task_run_and_its_downstream(cluster):
    @flow(cluster=cluster)
    def example() -> tuple:
        failed = toggle.submit(True)
        after = plus_one.submit(failed)
        done = toggle.submit(False)
        after.wait()
        failed.wait()
        return failed.state.message, after.state.type, done.result(), plus_one(done)

    failed_message, after, value, next_value = example()
    assert failed_message == "I was instructed to fail."
    assert after is StateType.UPSTREAM_FAILED
    assert (value, next_value) == (41, 42)  # Completed(data=41): the value flows on
    runs_of = by_name(latest(example))
    states = sorted((r.state.type.value, r.error_message) for r in runs_of["toggle"])
    assert states == [("COMPLETED", None), ("FAILED", "I was instructed to fail.")]
    assert runs_of["plus_one"][0].state.type is StateType.UPSTREAM_FAILED


def test_prefects_example_a_flow_returning_a_failed_state_fails(cluster):
    @flow(cluster=cluster)
    def example() -> tuple:
        state_one = toggle(fail=True)  # the State the task returned, not raised
        state_two = toggle(fail=False)
        return state_one, state_two

    state = example(return_state=True)
    assert state.type is StateType.FAILED
    assert state.message == "1/1 states failed."
    with pytest.raises(FailedRunError, match=r"I was instructed to fail\."):
        example()
    assert latest(example).state.type is StateType.FAILED


def test_a_returned_exception_is_what_the_failed_state_raises(cluster):
    @flow(cluster=cluster)
    def f() -> object:
        return failed_with.submit(ValueError("bad row")).result()

    with pytest.raises(ValueError, match="bad row"):
        f()


def test_a_task_returning_a_state_that_is_not_final_fails_saying_so(cluster):
    @flow(cluster=cluster)
    def f() -> tuple:
        state = not_final(return_state=True)
        return state.type, state.message

    kind, message = f()
    assert kind is StateType.FAILED
    assert "Pending(), which is not final" in message


def test_return_state_on_a_direct_call_gives_the_final_state_and_never_raises(cluster):
    @flow(cluster=cluster)
    def f() -> tuple:
        ok = plus_one(1, return_state=True)
        bad = divide(0, return_state=True)
        told = toggle(False, return_state=True)
        return (
            ok.is_completed(),
            ok.result(),
            bad.type,
            bad.result(raise_on_failure=False),
            (told.type, told.message, told.result()),
        )

    completed, value, failed_type, error, told = f()
    assert (completed, value, failed_type) == (True, 2, StateType.FAILED)
    assert isinstance(error, ZeroDivisionError)
    assert told == (StateType.COMPLETED, "I was instructed to succeed.", 41)
    assert latest(f).state.type is StateType.COMPLETED  # the failure was looked at


def test_a_flow_that_returns_a_task_runs_failed_state_fails():
    @flow(cluster="sync")
    def f() -> State:
        return divide(0, return_state=True)

    with pytest.raises(ZeroDivisionError):
        f()


def test_flows_returning_states_follow_prefects_rules():
    @flow(cluster="sync")
    def gives(state: object) -> object:
        return state

    assert gives(Completed(message="fine", data=7)) == 7
    failed = gives(Failed(message="not today"), return_state=True)
    assert (failed.type, failed.message) == (StateType.FAILED, "not today")
    mixed = gives({"a": Completed(), "b": Failed(message="x")}, return_state=True)
    assert (mixed.type, mixed.message) == (StateType.FAILED, "1/2 states failed.")
    cancelled = gives([Completed(), Cancelled(message="stop")], return_state=True)
    assert cancelled.type is StateType.CANCELLED
    assert gives([Completed(), Completed()], return_state=True).is_completed()


def test_return_state_outside_a_flow_gives_the_bare_runs_state():
    state = divide(0, return_state=True)
    assert state.is_failed()
    assert isinstance(state.result(raise_on_failure=False), ZeroDivisionError)
    assert plus_one(1, return_state=True).result() == 2
    assert toggle(True).message == "I was instructed to fail."  # the returned State


def test_each_flow_run_logs_one_finished_line_in_prefects_words(cluster, observer):
    @flow(cluster=cluster)
    def many() -> int:
        return sum(plus_one.map(range(20)).result())

    @flow(cluster=cluster)
    def broken() -> float:
        return divide(0)

    many()
    broken(return_state=True)
    finished = [log for log in observer.logs if log.message.startswith("Finished in state")]
    assert [(log.message, log.level, log.task_run_id) for log in finished] == [
        ("Finished in state Completed()", logging.INFO, None),
        ("Finished in state Failed('ZeroDivisionError: division by zero')", logging.ERROR, None),
    ]


def test_a_returned_state_decides_over_task_runs_that_failed_unlooked_at(cluster):
    @flow(cluster=cluster)
    def f() -> State:
        divide.submit(0)  # never looked at: it would fail the flow run by itself
        return Completed(message="I am happy with this result")

    state = f(return_state=True)
    assert (state.type, state.message) == (StateType.COMPLETED, "I am happy with this result")

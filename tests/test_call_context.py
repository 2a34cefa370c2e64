"""What a task call picks up from where it is made (Prefect 3).

``with tags(...)`` adds tags to the task runs created inside; a flow's
``log_prints=True`` reaches the tasks that leave ``log_prints`` unset;
``wait_for=[...]`` works on direct calls; futures inside dataclasses and
pydantic models are waited on and filled in like those in lists and dicts.
"""

from __future__ import annotations

import dataclasses

import pydantic
import pytest

from daskflow import flow, runs, runtime, tags, task
from daskflow.errors import UpstreamFailedError
from daskflow.states import StateType


@task(tags=["own"])
def tagged() -> list[str]:
    return sorted(runtime.task_run.tags)


@task
def shout(x: int) -> int:
    print(f"shouting {x}")
    return x


@task(log_prints=False)
def quiet(x: int) -> int:
    print(f"keeping quiet {x}")
    return x


@task
def append(path: str, line: str) -> str:
    with open(path, "a") as f:
        f.write(line + "\n")
    return line


@task
def number(x: int) -> int:
    return x


@task
def fails() -> int:
    raise ValueError("nope")


@dataclasses.dataclass(frozen=True)
class Pair:
    left: object
    right: object
    label: str = "pair"


class Box(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(arbitrary_types_allowed=True, frozen=True)
    value: object
    items: list[object]


@task
def unpack_pair(pair: Pair) -> tuple:
    return type(pair).__name__, pair.left, pair.right, pair.label


@task
def unpack_box(box: Box) -> tuple:
    return type(box).__name__, box.value, box.items


def latest(f) -> object:
    return runs(flow=f.name, limit=1)[0]


def test_tags_blocks_add_tags_to_the_task_runs_created_inside(cluster):
    @flow(cluster=cluster)
    def f() -> list:
        with tags("a", "b"):
            first = tagged()
            with tags("c"):
                second = tagged.submit().result()
        return [first, second, tagged()]

    assert f() == [["a", "b", "own"], ["a", "b", "c", "own"], ["own"]]
    recorded = sorted(sorted(r.tags) for r in latest(f).task_runs)
    assert recorded == [["a", "b", "c", "own"], ["a", "b", "own"], ["own"]]


def test_tags_apply_to_bare_task_runs_too():
    with tags("adhoc"):
        assert tagged() == ["adhoc", "own"]
    assert tagged() == ["own"]


def test_a_flows_log_prints_reaches_tasks_that_leave_it_unset(cluster, observer):
    @flow(cluster=cluster, log_prints=True)
    def loud() -> int:
        return shout(1) + quiet(2) + sum(shout.map([3, 4]).result())

    @flow(cluster=cluster)
    def silent() -> int:
        return shout(5)

    assert loud() == 10
    assert silent() == 5
    messages = {log.message for log in observer.logs}
    assert {"shouting 1", "shouting 3", "shouting 4"} <= messages
    assert "keeping quiet 2" not in messages  # the task's own log_prints=False wins
    assert "shouting 5" not in messages  # the flow did not ask


def test_wait_for_on_a_direct_call_runs_it_after_those_futures(cluster, tmp_path):
    path = str(tmp_path / "order.txt")

    @flow(cluster=cluster)
    def f() -> list[str]:
        first = append.submit(path, "first")
        second = append(path, "second", wait_for=[first])
        return [second]

    assert f() == ["second"]
    assert (tmp_path / "order.txt").read_text().splitlines() == ["first", "second"]


def test_wait_for_a_failed_future_on_a_direct_call_is_upstream_failed(cluster):
    @flow(cluster=cluster)
    def f() -> object:
        broken = fails.submit()
        return number(1, wait_for=[broken], return_state=True).type

    assert f(return_state=True).is_failed()  # the unhandled failure fails the flow
    by_task = {r.task_name: r.state.type for r in latest(f).task_runs}
    assert by_task == {"fails": StateType.FAILED, "number": StateType.UPSTREAM_FAILED}


def test_futures_inside_a_dataclass_are_waited_for_and_filled_in(cluster):
    @flow(cluster=cluster)
    def f() -> tuple:
        pair = Pair(number.submit(1), [number.submit(2), 3], label="mine")
        return unpack_pair(pair), pair.label

    assert f() == (("Pair", 1, [2, 3], "mine"), "mine")


def test_futures_inside_a_pydantic_model_are_waited_for_and_filled_in(cluster):
    @flow(cluster=cluster)
    def f() -> tuple:
        box = Box(value=number.submit(7), items=[number.submit(8)])
        return unpack_box.submit(box).result()

    assert f() == ("Box", 7, [8])


def test_a_flow_returning_a_dataclass_of_futures_returns_their_values():
    @flow(cluster="sync")
    def f() -> Pair:
        return Pair(number.submit(1), number.submit(2))

    assert f() == Pair(1, 2)


def test_a_dataclass_holding_a_failed_future_makes_the_run_upstream_failed():
    @flow(cluster="sync")
    def f() -> None:
        unpack_pair(Pair(fails.submit(), 1))

    with pytest.raises(UpstreamFailedError, match="it started with 'fails'"):
        f()
    by_task = {r.task_name: r.state.type for r in latest(f).task_runs}
    assert by_task == {"fails": StateType.FAILED, "unpack_pair": StateType.UPSTREAM_FAILED}


def test_a_subflow_takes_its_parents_log_prints_unless_it_sets_its_own(observer):
    @flow(cluster="sync")
    def child() -> None:
        print("from the child")

    @flow(cluster="sync", log_prints=False)
    def mute_child() -> None:
        print("from the mute child")

    @flow(cluster="sync", log_prints=True)
    def parent() -> None:
        child()
        mute_child()

    parent()
    by_message = {log.message: log.flow_run_id for log in observer.logs}
    assert "from the mute child" not in by_message
    child_run = runs(flow=child.name, limit=1)[0]
    assert by_message["from the child"] == child_run.id  # logged against the subflow's run

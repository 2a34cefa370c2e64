"""Flow scenarios, each run under sync, an in-process and a 2-process LocalCluster."""

from __future__ import annotations

import pytest

from daskflow import allow_failure, flow, unmapped
from daskflow.errors import MapLengthError, UpstreamFailedError
from daskflow.states import StateType
from tests.resources.tasks import add, boom, describe, fails_twice, inc, numbers, total


def test_direct_call_returns_the_value(cluster):
    @flow(cluster=cluster)
    def f(x: int) -> int:
        return inc(inc(x))

    assert f(1) == 3


def test_submit_map_and_fan_in(cluster):
    @flow(cluster=cluster)
    def f(n: int) -> int:
        a = inc.map(range(n))
        b = add.map(a, unmapped(10))
        return total(b)

    assert f(20) == sum(i + 1 + 10 for i in range(20))


def test_chained_submit_and_futures_in_containers(cluster):
    @flow(cluster=cluster)
    def f():
        x = inc.submit(0)
        y = add.submit(x, inc.submit(x))
        z = total.submit([x, y, {"nested": 1}["nested"]])
        return {"x": x, "pair": (y, z)}

    assert f() == {"x": 1, "pair": (3, 5)}


def test_plain_python_between_tasks(cluster):
    @flow(cluster=cluster)
    def f() -> list[int]:
        out = []
        x = inc.submit(0)
        if x.result() == 1:
            for i in range(3):
                out.append(add.submit(x, i))
        return out

    assert f() == [1, 2, 3]


def test_dynamic_map_expands_at_run_time(cluster):
    @flow(cluster=cluster)
    def f(n: int) -> int:
        xs = numbers.submit(n)  # length known only when this runs
        ys = inc.map(xs)
        zs = add.map(ys, ys)
        return total(zs)

    assert f(7) == sum(2 * (i + 1) for i in range(7))


def test_map_lengths_must_match(cluster):
    @flow(cluster=cluster)
    def f():
        return add.map([1, 2, 3], [1, 2])

    with pytest.raises(MapLengthError, match="x has 3, y has 2"):
        f()


def test_upstream_failed_and_allow_failure(cluster, observer):
    @flow(cluster=cluster)
    def f():
        bad = boom.submit(1)
        inc.submit(bad)  # never looked at: its UPSTREAM_FAILED fails the flow
        describe.submit(allow_failure(bad))  # handles bad's failure deliberately

    state = f(return_state=True)
    assert state.type is StateType.FAILED
    with pytest.raises(UpstreamFailedError, match="inc"):
        state.result()
    runs = {r.task_name: r for r in observer.task_runs.values()}
    assert runs["boom"].state.type is StateType.FAILED
    assert runs["inc"].state.type is StateType.UPSTREAM_FAILED
    assert runs["inc"].attempts == 0
    assert runs["describe"].state.type is StateType.COMPLETED


def test_handled_failure_does_not_fail_the_flow(cluster):
    @flow(cluster=cluster)
    def f():
        bad = boom.submit(2)
        error = bad.result(raise_on_failure=False)
        return type(error).__name__

    assert f() == "RuntimeError"


def test_downstream_of_failure_raises_upstream_failed(cluster):
    @flow(cluster=cluster)
    def f():
        return inc.submit(boom.submit(3)).result()

    with pytest.raises(UpstreamFailedError):
        f()


def test_retries_on_the_worker(cluster, observer, tmp_path):
    @flow(cluster=cluster)
    def f(folder: str) -> str:
        return fails_twice(folder)

    assert f(str(tmp_path)) == "ok"
    (run,) = observer.task_runs.values()
    assert run.state_types == [
        StateType.PENDING,
        StateType.RUNNING,
        StateType.RETRYING,
        StateType.RUNNING,
        StateType.RETRYING,
        StateType.RUNNING,
        StateType.COMPLETED,
    ]
    assert run.attempts == 3


def test_subflow_is_linked_to_its_parent(cluster, observer):
    @flow(cluster=cluster)
    def child(x: int) -> int:
        return inc(x)

    @flow(cluster=cluster)
    def parent() -> int:
        return child(1) + child(2)

    assert parent() == 5
    flows = list(observer.flow_runs.values())
    (root,) = [r for r in flows if r.parent_flow_run_id is None]
    children = [r for r in flows if r.parent_flow_run_id == root.id]
    assert len(children) == 2
    assert all(r.state.type is StateType.COMPLETED for r in flows)


def test_return_state_never_raises(cluster):
    @flow(cluster=cluster)
    def f():
        raise ValueError("inside the flow")

    state = f(return_state=True)
    assert state.is_failed()
    assert state.error_type == "ValueError"


def test_wait_for_orders_runs_without_passing_data(cluster, observer):
    @flow(cluster=cluster)
    def f() -> int:
        first = inc.submit(1)
        after_ok = total.submit([1, 2], wait_for=[first])  # waits, takes no data from it
        total.submit([3], wait_for=[boom.submit(0)])  # waits for a failure: never runs
        return after_ok.result()

    state = f(return_state=True)
    assert state.is_failed()  # boom failed and nobody looked at it
    runs = {(r.task_name, r.state.type) for r in observer.task_runs.values()}
    assert runs == {
        ("inc", StateType.COMPLETED),
        ("total", StateType.COMPLETED),
        ("boom", StateType.FAILED),
        ("total", StateType.UPSTREAM_FAILED),
    }


def test_validate_parameters_off_passes_values_as_given(cluster):
    @flow(cluster=cluster, validate_parameters=False)
    def f(n: int) -> str:
        return type(n).__name__

    assert f("3") == "str"  # no pydantic coercion


def test_a_chain_below_a_failure_names_its_root_and_the_flow_fails_with_the_root_error(
    cluster, observer
):
    @flow(cluster=cluster)
    def f() -> None:
        inc.submit(inc.submit(boom.submit(4)))  # nothing looked at: all three unhandled

    state = f(return_state=True)
    assert state.type is StateType.FAILED
    with pytest.raises(RuntimeError, match="boom 4") as info:
        state.result()
    assert not isinstance(info.value, UpstreamFailedError)  # the user's own error, not ours
    blocked = [r for r in observer.task_runs.values() if r.task_name == "inc"]
    assert [r.state.type for r in blocked] == [StateType.UPSTREAM_FAILED] * 2
    for run in blocked:  # two hops down, the root is still named, with its error
        assert "it started with 'boom' (RuntimeError: boom 4)" in run.state.error_message

"""The SPEC's examples and promises (§1-3, §12), as a user of ``daskflow`` relies on them.

Only the public surface is used: ``import daskflow``. Flows run under
``cluster="sync"`` and on real ``LocalCluster``s (threads and worker processes)
through the ``cluster`` fixture. Tasks live at module level so that worker
processes can import them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

import daskflow
from daskflow import allow_failure, flow, quote, task, unmapped

# -- tasks (module level: importable by worker processes) -----------------------


@task(retries=3, retry_delay_seconds=[1, 2, 4])
def extract(day: str) -> pd.DataFrame:
    return pd.DataFrame({"day": [day] * 3, "value": [1.0, 2.0, 3.0]})


@task
def transform(df: pd.DataFrame, factor: float) -> pd.DataFrame:
    return df.assign(value=df["value"] * factor)


@task
def load(frames: list[pd.DataFrame]) -> int:
    return int(pd.concat(frames)["value"].sum())


@flow(name="etl")
def etl(days: list[str], factor: float = 1.0) -> int:
    raw = extract.map(days)  # fan-out: list of futures
    clean = transform.map(raw, unmapped(factor))  # depends on raw, elementwise
    return load(clean)  # fan-in: waits, returns value


@task
def inc(x: int) -> int:
    return x + 1


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@task
def boom(x: object = None) -> None:
    raise RuntimeError(f"boom {x}")


@task
def error_of(value: object) -> tuple[str, str]:
    """What a downstream task sees of an allowed failure."""
    assert isinstance(value, BaseException), value
    return type(value).__name__, str(value)


@task
def echo(value: object) -> object:
    return value


@task
def touch(folder: str, name: str = "touched") -> str:
    (Path(folder) / name).write_text("ran")
    return name


@task(name="attempts")
def count_and_fail(folder: str) -> None:
    path = Path(folder) / "attempts"
    with path.open("a") as f:
        f.write("x")
    raise ConnectionError("still down")


def on(cluster: object, fn: daskflow.Flow) -> daskflow.Flow:
    return fn.with_options(cluster=cluster)


# -- §1 defining work --------------------------------------------------------------


def test_etl_example_returns_loads_value(cluster):
    assert on(cluster, etl)(["2024-01-01", "2024-01-02"]) == 12
    assert on(cluster, etl)(["2024-01-01", "2024-01-02", "2024-01-03"], factor=2.0) == 36
    assert etl.name == "etl"


def test_task_bare_and_with_options():
    assert isinstance(inc, daskflow.Task)
    assert isinstance(extract, daskflow.Task)
    assert inc.name == "inc"
    assert count_and_fail.name == "attempts"
    assert extract.options.retries == 3
    assert list(extract.options.retry_delay_seconds) == [1, 2, 4]


def test_task_fn_is_the_undecorated_function():
    assert not isinstance(inc.fn, daskflow.Task)
    assert inc.fn.__name__ == "inc"
    assert inc.fn(1) == 2


def test_with_options_returns_a_changed_copy():
    patient = extract.with_options(retries=5)
    assert patient is not extract
    assert patient.options.retries == 5
    assert extract.options.retries == 3
    assert list(patient.options.retry_delay_seconds) == [1, 2, 4]  # others kept
    assert patient.fn is extract.fn


def test_with_options_retries_take_effect(cluster, tmp_path):
    flaky = count_and_fail.with_options(retries=2, retry_delay_seconds=0)

    @flow(cluster=cluster)
    def f(folder: str) -> None:
        flaky(folder)

    state = f(str(tmp_path), return_state=True)
    assert state.is_failed()
    assert (tmp_path / "attempts").read_text() == "xxx"  # 1 attempt + 2 retries


def test_exponential_backoff():
    delays = daskflow.exponential_backoff(2)
    assert delays[:4] == [2, 4, 8, 16]
    assert delays == [2 * 2**i for i in range(len(delays))]
    assert task(retry_delay_seconds=delays, retries=3)(inc.fn)(1) == 2


def test_outside_a_flow_a_task_is_the_plain_function():
    assert inc(1) == 2
    assert add(2, y=3) == 5
    with pytest.raises(RuntimeError, match="boom 7"):
        boom(7)


def test_submit_returns_a_task_future(cluster):
    @flow(cluster=cluster)
    def f() -> dict:
        a = inc.submit(1)
        b = inc.submit(a)
        assert isinstance(a, daskflow.TaskFuture)
        assert a.wait() is None
        state = a.state
        assert isinstance(state, daskflow.State)
        ids = {a.task_run_id, b.task_run_id}
        return {
            "type": state.type,
            "completed": state.is_completed(),
            "results": (a.result(), b.result(timeout=60)),
            "ids": len(ids) == 2 and all(isinstance(i, str) and i for i in ids),
        }

    assert f() == {
        "type": daskflow.StateType.COMPLETED,
        "completed": True,
        "results": (2, 3),
        "ids": True,
    }


def test_wait_on_a_list_of_futures(cluster):
    @flow(cluster=cluster)
    def f() -> tuple:
        futures = [inc.submit(i) for i in range(4)]
        done, not_done = daskflow.wait(futures)
        finals = all(fut.state.is_final() for fut in futures)
        return len(done), len(not_done), finals, [fut.result() for fut in futures]

    assert f() == (4, 0, True, [1, 2, 3, 4])


def test_allow_failure_gives_the_exception_downstream(cluster):
    @flow(cluster=cluster)
    def f() -> tuple[str, str]:
        bad = boom.submit(1)
        seen = error_of.submit(allow_failure(bad))
        bad.wait()
        return seen.result()

    assert f() == ("RuntimeError", "boom 1")


def test_allow_failure_alone_lets_the_flow_return_its_value(cluster):
    @flow(cluster=cluster)
    def f() -> tuple[str, str]:
        return error_of(allow_failure(boom.submit(1)))

    assert f() == ("RuntimeError", "boom 1")


def test_upstream_failure_skips_the_downstream_task(cluster, tmp_path):
    @flow(cluster=cluster)
    def f(folder: str) -> tuple:
        bad = boom.submit(1)
        skipped = touch.submit(folder, bad)
        skipped.wait()
        error = skipped.result(raise_on_failure=False)
        return bad.state.type, skipped.state.type, skipped.state.is_failed(), error

    failed, skipped_type, is_failed, error = f(str(tmp_path))
    assert failed is daskflow.StateType.FAILED
    assert skipped_type is daskflow.StateType.UPSTREAM_FAILED
    assert is_failed
    assert isinstance(error, daskflow.DaskflowError)
    assert list(tmp_path.iterdir()) == []  # the downstream task never ran


def test_quote_passes_the_value_untouched(cluster):
    frame = pd.DataFrame({"a": [1, 2, 3]})
    nested = {"xs": [1, (2, 3)], "s": {4}}

    @flow(cluster=cluster)
    def f() -> tuple:
        return echo(quote(frame)), echo(quote(nested))

    got_frame, got_nested = f()
    pd.testing.assert_frame_equal(got_frame, frame)
    assert got_nested == nested


def test_map_length_mismatch_names_both_lengths(cluster):
    @flow(cluster=cluster)
    def f():
        return add.map([1, 2, 3], [1, 2, 3, 4, 5])

    with pytest.raises(daskflow.MapLengthError) as info:
        f()
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, daskflow.DaskflowError)
    message = str(info.value)
    assert re.search(r"\b3\b", message), message
    assert re.search(r"\b5\b", message), message


def test_return_state(cluster):
    state = on(cluster, etl)(["2024-01-01"], return_state=True)
    assert isinstance(state, daskflow.State)
    assert state.type is daskflow.StateType.COMPLETED
    assert state.is_completed()
    assert state.result() == 6

    @flow(cluster=cluster)
    def failing() -> int:
        return boom(2)

    state = failing(return_state=True)  # never raises
    assert state.is_failed()
    assert state.is_final()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, RuntimeError)
    assert str(error) == "boom 2"
    with pytest.raises(RuntimeError, match="boom 2"):
        state.result()


def test_return_state_never_raises_for_a_bad_parameter():
    @flow(cluster="sync")
    def f(n: int) -> int:
        return n

    state = f("not a number", return_state=True)
    assert state.is_failed()
    with pytest.raises(daskflow.ParameterValidationError):
        state.result()


def test_bad_parameter_is_refused_before_any_task_runs(cluster, tmp_path):
    @flow(cluster=cluster)
    def f(folder: str, count: int) -> int:
        touch(folder)
        return count * 2

    with pytest.raises(daskflow.ParameterValidationError, match="count") as info:
        f(str(tmp_path), "many")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, daskflow.DaskflowError)
    assert not (tmp_path / "touched").exists()

    assert f(str(tmp_path), "3") == 6  # coerced to int, like Prefect (not "33")
    assert (tmp_path / "touched").exists()


def test_subflow_runs_inside_its_parent(cluster):
    @flow
    def child(x: int) -> int:
        return inc(x)

    @flow(cluster=cluster)
    def parent() -> int:
        return child(1) + child(2)

    assert parent() == 5


def test_result_mid_flow_and_if_on_it(cluster):
    @flow(cluster=cluster)
    def f(n: int) -> list[int]:
        x = inc.submit(n)
        if x.result() > 5:
            return [add(x, 100)]
        return [add.submit(x, i) for i in range(3)]

    assert f(10) == [111]
    assert f(0) == [1, 2, 3]


def test_dynamic_map_over_a_future_list(cluster):
    @flow(cluster=cluster)
    def f(n: int) -> tuple[int, list[int]]:
        xs = numbers.submit(n)  # its length is known only at run time
        ys = inc.map(xs)
        return total(ys), ys

    assert f(5) == (15, [1, 2, 3, 4, 5])


# -- §2 states, §12 errors -----------------------------------------------------------

FINAL = {"COMPLETED", "CACHED", "FAILED", "TIMED_OUT", "UPSTREAM_FAILED", "CRASHED", "CANCELLED"}
FAILED = {"FAILED", "TIMED_OUT", "UPSTREAM_FAILED", "CRASHED"}


def test_state_types_and_predicates():
    assert [t.name for t in daskflow.StateType] == [
        "SCHEDULED", "PENDING", "RUNNING", "RETRYING", "COMPLETED", "CACHED",
        "FAILED", "TIMED_OUT", "UPSTREAM_FAILED", "CRASHED", "CANCELLED",
    ]  # fmt: skip
    for typ in daskflow.StateType:
        state = daskflow.State(type=typ, message="m")
        assert (state.type, state.message) == (typ, "m")
        assert isinstance(state.timestamp, float)
        assert state.is_final() is (typ.name in FINAL), typ
        assert state.is_completed() is (typ.name in {"COMPLETED", "CACHED"}), typ
        assert state.is_failed() is (typ.name in FAILED), typ


def test_every_error_derives_from_daskflow_error():
    errors = [
        obj
        for obj in vars(daskflow).values()
        if isinstance(obj, type) and issubclass(obj, BaseException)
    ]
    assert {e.__name__ for e in errors} >= {
        "DaskflowError",
        "MapLengthError",
        "ParameterValidationError",
        "SerializationError",
        "ClusterConnectionError",
    }
    assert all(issubclass(e, daskflow.DaskflowError) for e in errors)
    assert issubclass(daskflow.ParameterValidationError, ValueError)
    assert issubclass(daskflow.MapLengthError, ValueError)

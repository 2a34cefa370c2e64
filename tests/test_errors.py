"""Bad input: one clear DaskflowError naming the culprit."""

from __future__ import annotations

import threading

import dask
import pytest

from daskflow import flow, task
from daskflow.errors import (
    ClusterConnectionError,
    ConfigurationError,
    NoFlowRunError,
    NotATaskError,
    ParameterValidationError,
    SerializationError,
)
from tests.resources.tasks import describe, inc


def test_unreachable_address_names_it():
    @flow(cluster="tcp://127.0.0.1:9")
    def f():
        return 1

    with (
        dask.config.set({"daskflow.connect-timeout": "1s"}),
        pytest.raises(ClusterConnectionError, match=r"tcp://127\.0\.0\.1:9"),
    ):
        f()


def test_bad_parameter_names_it_before_any_task_runs(tmp_path):
    @flow(cluster="sync")
    def f(n: int, name: str = "x") -> int:
        (tmp_path / "ran").write_text("yes")
        return n

    with pytest.raises(ParameterValidationError, match=r"'n' expects int") as info:
        f("not a number")
    assert isinstance(info.value, ValueError)
    assert not (tmp_path / "ran").exists()
    assert f("3") == 3  # coerced like Prefect


def test_unpicklable_argument_names_the_task(processes_client):
    @flow(cluster=processes_client)
    def f():
        return describe(threading.Lock())

    with pytest.raises(SerializationError, match=r"describe.*argument 0"):
        f()


def test_decorating_a_non_callable():
    with pytest.raises(NotATaskError):
        task(42)
    with pytest.raises(NotATaskError):
        flow("not a function")


def test_bad_options_are_refused_at_decoration():
    with pytest.raises(ConfigurationError, match="retries"):
        task(retries=-1)(lambda: None)
    with pytest.raises(ConfigurationError, match="retry_delay_seconds"):
        task(retry_delay_seconds="soon")(lambda: None)


def test_submit_outside_a_flow_with_bare_tracking_off():
    with dask.config.set({"daskflow.track-bare-tasks": False}):
        with pytest.raises(NoFlowRunError, match=r"inc\.submit"):
            inc.submit(1)
        assert inc(1) == 2

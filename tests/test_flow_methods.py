"""``@flow`` on instance methods, classmethods and staticmethods (Prefect 3).

The flow function receives its instance or class as Python gives it; the
run's parameters are recorded and validated without it.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import daskflow
from daskflow import flow, task
from daskflow.errors import ParameterValidationError
from daskflow.observers.events import bus


@task
def scale(x: int, factor: int) -> int:
    return x * factor


def recorded(flow_name: str) -> dict[str, Any]:
    bus.flush()
    [run] = daskflow.runs(flow=flow_name, limit=1)
    return dict(run.parameters)


def make_pipeline(cluster: object) -> tuple[type, str]:
    tag = uuid.uuid4().hex[:8]

    class Pipeline:
        label = "pipelines"

        def __init__(self, factor: int) -> None:
            self.factor = factor

        @flow(cluster=cluster, name=f"run-{tag}")
        def run(self, x: int) -> int:
            return scale(x, self.factor)

        @flow(cluster=cluster, name=f"build-{tag}")
        @classmethod
        def build(cls, x: int) -> str:
            return f"{cls.label}:{scale(x, 2)}"

        @classmethod
        @flow(cluster=cluster, name=f"build-above-{tag}")
        def build_above(cls, x: int) -> str:
            return f"{cls.label}:{scale(x, 3)}"

        @flow(cluster=cluster, name=f"negate-{tag}")
        @staticmethod
        def negate(x: int) -> int:
            return scale(x, -1)

    return Pipeline, tag


def test_a_flow_on_an_instance_method_records_its_parameters_without_self(cluster: object):
    pipeline_class, tag = make_pipeline(cluster)

    assert pipeline_class(3).run(2) == 6
    assert pipeline_class(5).run(x="4") == 20  # validated against the hints, without self
    assert recorded(f"run-{tag}") == {"x": 4}


def test_flows_on_classmethods_either_way_round_record_no_cls(cluster: object):
    pipeline_class, tag = make_pipeline(cluster)

    assert pipeline_class.build(1) == "pipelines:2"
    assert pipeline_class(0).build(2) == "pipelines:4"
    assert recorded(f"build-{tag}") == {"x": 2}
    assert pipeline_class.build_above(1) == "pipelines:3"
    assert recorded(f"build-above-{tag}") == {"x": 1}


def test_a_flow_on_a_staticmethod_works_from_the_class_and_an_instance(cluster: object):
    pipeline_class, tag = make_pipeline(cluster)

    assert pipeline_class.negate(4) == -4
    assert pipeline_class(1).negate(x=5) == -5
    assert recorded(f"negate-{tag}") == {"x": 5}


def test_a_bound_flow_keeps_its_instance_through_with_options_and_return_state():
    pipeline_class, tag = make_pipeline("sync")
    pipeline = pipeline_class(10)

    renamed = pipeline.run.with_options(name=f"renamed-{tag}")
    assert renamed(1) == 10
    assert recorded(f"renamed-{tag}") == {"x": 1}
    assert pipeline.run(2, return_state=True).result() == 20
    with pytest.raises(ParameterValidationError, match="'x'"):
        pipeline.run("not a number")

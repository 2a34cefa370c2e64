"""Prefect 3's module paths work with ``daskflow`` in place of ``prefect`` (SPEC §1).

A Prefect user changes ``prefect`` to ``daskflow`` in imports and nothing else.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import daskflow

ROOT = Path(__file__).resolve().parents[1]


def test_each_prefect_path_imports():
    from daskflow.cache_policies import (
        FLOW_PARAMETERS,
        INPUTS,
        NONE,
        RUN_ID,
        TASK_SOURCE,
        CacheKeyFnPolicy,
        CachePolicy,
    )
    from daskflow.concurrency.asyncio import concurrency as async_concurrency
    from daskflow.concurrency.asyncio import rate_limit as async_rate_limit
    from daskflow.concurrency.sync import concurrency, rate_limit
    from daskflow.context import FlowRunContext, TaskRunContext
    from daskflow.futures import wait
    from daskflow.logging import get_run_logger
    from daskflow.runtime import flow_run, task_run
    from daskflow.states import State, StateType

    assert all(
        isinstance(p, CachePolicy)
        for p in (INPUTS, TASK_SOURCE, FLOW_PARAMETERS, RUN_ID, NONE, CacheKeyFnPolicy())
    )
    assert callable(concurrency)
    assert callable(rate_limit)
    assert callable(async_concurrency)
    assert callable(async_rate_limit)
    assert TaskRunContext.get() is None
    assert FlowRunContext.get() is None
    assert wait is daskflow.wait
    assert get_run_logger is daskflow.get_run_logger
    assert flow_run.id is None
    assert task_run.id is None
    assert State is daskflow.State
    assert StateType is daskflow.StateType


def test_the_names_most_used_come_from_daskflow_itself():
    for name in (
        "flow",
        "task",
        "wait",
        "unmapped",
        "quote",
        "State",
        "get_run_logger",
        "exponential_backoff",
        "runtime",
        "is_cancelled",
        "concurrency_limit",
    ):
        assert name in daskflow.__all__, name
        assert getattr(daskflow, name) is not None


def test_runtime_needs_no_import_of_its_own_in_a_fresh_interpreter():
    code = (
        "import daskflow\n"
        "print(daskflow.runtime.flow_run.id, daskflow.runtime.task_run.attempt,"
        " daskflow.is_cancelled())\n"
        "import daskflow.runtime.flow_run as fr\n"
        "print(fr.name)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.split() == ["None", "None", "False", "None"]

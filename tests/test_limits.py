"""Concurrency limits on a 2-process cluster: never more runs of a tag at once than allowed.

Each run appends its start and end times to a file (the runs are in other
processes); the test checks how many intervals overlap — an ordering fact,
not a timing assertion.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import daskflow
from daskflow import flow, task
from daskflow.errors import ConfigurationError


def spans(folder: Path, name: str) -> list[tuple[float, float]]:
    lines = (folder / name).read_text().split()
    return [(float(a), float(b)) for a, b in (line.split(",") for line in lines)]


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    now = peak = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        now += step
        peak = max(peak, now)
    return peak


def record(folder: str, name: str, seconds: float) -> None:
    start = time.time()
    time.sleep(seconds)
    with (Path(folder) / name).open("a") as f:
        f.write(f"{start},{time.time()}\n")


@task(tags=["limited-db"])
def query(folder: str, i: int) -> int:
    record(folder, "db", 0.3)
    return i


@task(tags=["limited-a", "limited-b"])
def both(folder: str, i: int) -> int:
    record(folder, "a", 0.1)
    record(folder, "b", 0.0)
    return i


@task(tags=["limited-b"])
def only_b(folder: str, i: int) -> int:
    record(folder, "b", 0.1)
    return i


def test_a_limit_caps_running_runs_across_worker_processes(processes_client, tmp_path):
    daskflow.concurrency_limit("limited-db", 2)

    @flow(cluster=processes_client)
    def f(folder: str) -> list[int]:
        return query.map([folder] * 8, range(8)).result()

    assert f(str(tmp_path)) == list(range(8))  # 4 worker threads, 8 runs, limit 2
    assert most_at_once(spans(tmp_path, "db")) == 2


def test_several_limited_tags_do_not_deadlock(processes_client, tmp_path):
    daskflow.concurrency_limit("limited-a", 1)
    daskflow.concurrency_limit("limited-b", 1)

    @flow(cluster=processes_client, timeout_seconds=60)
    def f(folder: str) -> int:
        return sum(both.map([folder] * 4, range(4)).result()) + sum(
            only_b.map([folder] * 4, range(4)).result()
        )

    assert f(str(tmp_path)) == 12
    assert most_at_once(spans(tmp_path, "a")) == 1


def test_a_bad_limit_is_refused():
    with pytest.raises(ConfigurationError, match="whole number"):
        daskflow.concurrency_limit("x", 0)
    with pytest.raises(ConfigurationError, match="tag"):
        daskflow.concurrency_limit("", 2)

"""Limits taken from code: ``concurrency`` and ``rate_limit`` (SPEC §1 "limits").

On a 2-process cluster each holder appends its enter and exit times to a
file; the tests check how many intervals overlap (an ordering fact) and,
for rate limits, lower bounds that decay guarantees however slow the
machine.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path

import dask
import pytest

from daskflow import concurrency_limit, flow, task
from daskflow.concurrency import asyncio as async_concurrency
from daskflow.concurrency.sync import concurrency, rate_limit
from daskflow.errors import ConcurrencyTimeout, ConfigurationError


def unique(prefix: str) -> str:
    """A limit name of this test alone (limits live as long as the cluster)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def spans(folder: Path) -> list[tuple[float, float]]:
    lines = (folder / "spans").read_text().split()
    return [(float(a), float(b)) for a, b in (line.split(",") for line in lines)]


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    now = peak = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        now += step
        peak = max(peak, now)
    return peak


def hold(folder: str, seconds: float) -> None:
    start = time.time()
    time.sleep(seconds)
    with (Path(folder) / "spans").open("a") as f:
        f.write(f"{start},{time.time()}\n")


@task(batch=False)
def in_block(folder: str, name: str, i: int) -> int:
    with concurrency(name, occupy=1):
        hold(folder, 0.1)
    return i


@task(batch=False)
def tagged(folder: str, i: int) -> int:
    hold(folder, 0.1)
    return i


@task(batch=False)
def passes(folder: str, name: str, i: int) -> float:
    rate_limit(name)
    return time.time()


@task
def waits(name: str, seconds: float) -> None:
    with concurrency(name, timeout_seconds=seconds):
        pass


def test_blocks_and_tagged_runs_share_one_limit_across_processes(processes_client, tmp_path):
    name = unique("db")
    concurrency_limit(name, 1)
    folder = str(tmp_path)

    @flow(cluster=processes_client)
    def f() -> list[int]:
        blocks = in_block.map([folder] * 4, [name] * 4, range(4))
        runs = tagged.with_options(tags=[name]).map([folder] * 4, range(4))
        with concurrency(name):  # the flow function takes a slot too
            hold(folder, 0.1)
        return blocks.result() + runs.result()

    assert f() == [0, 1, 2, 3, 0, 1, 2, 3]
    intervals = spans(tmp_path)
    assert len(intervals) == 9
    assert most_at_once(intervals) == 1


def test_a_limit_of_two_lets_two_in_and_occupy_takes_several(processes_client, tmp_path):
    name = unique("pool")
    folder = str(tmp_path)

    @task(batch=False)
    def heavy(folder: str, i: int) -> int:
        with concurrency(name, occupy=2):  # the whole pool: alone
            hold(folder, 0.1)
        return i

    with dask.config.set({"daskflow.concurrency-limits": {name: {"limit": 2}}}):

        @flow(cluster=processes_client)
        def f() -> list[int]:
            return in_block.map([folder] * 6, [name] * 6, range(6)).result()

        f()
        assert most_at_once(spans(tmp_path)) == 2
        (tmp_path / "spans").unlink()

        @flow(cluster=processes_client)
        def g() -> list[int]:
            light = in_block.map([folder] * 4, [name] * 4, range(4))
            return heavy.map([folder] * 3, range(3)).result() + light.result()

        g()
        intervals = spans(tmp_path)
        assert len(intervals) == 7
        assert most_at_once(intervals) <= 2


def test_rate_limit_frees_slots_by_decay(processes_client, tmp_path):
    name = unique("api")
    concurrency_limit(name, 2, slot_decay_per_second=10)
    folder = str(tmp_path)

    @flow(cluster=processes_client)
    def f() -> list[float]:
        rate_limit(name)  # the flow function takes one too
        return [time.time(), *passes.map([folder] * 5, [name] * 5, range(5)).result()]

    times = sorted(f())
    # a burst of 2, then one slot per 0.1 s: pass k comes at least (k - 1) / 10 s after the first
    for k in range(2, 6):
        assert times[k] - times[0] >= (k - 1) / 10 - 0.02


def test_async_code_shares_the_same_limits(threads_client, tmp_path):
    name = unique("async")
    concurrency_limit(name, 1, slot_decay_per_second=100)
    folder = str(tmp_path)

    async def body(i: int) -> int:
        await async_concurrency.rate_limit(name)
        async with async_concurrency.concurrency(name):
            await asyncio.to_thread(hold, folder, 0.05)
        return i

    @flow(cluster=threads_client)
    def f() -> list[int]:
        blocks = in_block.map([folder] * 3, [name] * 3, range(3))

        async def main() -> list[int]:
            return list(await asyncio.gather(*(body(i) for i in range(3))))

        return asyncio.run(main()) + blocks.result()

    assert f() == [0, 1, 2, 0, 1, 2]
    assert most_at_once(spans(tmp_path)) == 1


def test_a_timeout_raises_a_concurrency_timeout(processes_client):
    name = unique("busy")
    concurrency_limit(name, 1)

    @flow(cluster=processes_client)
    def f() -> None:
        with concurrency(name):
            waits(name, 0.2)

    with pytest.raises(ConcurrencyTimeout, match=name):
        f()


def test_an_unknown_name_runs_unlimited_with_one_warning_or_raises_when_strict(caplog):
    name = unique("nowhere")

    @flow(cluster="sync")
    def f() -> int:
        with concurrency(name):
            rate_limit(name)
        with concurrency(name):
            pass
        return 1

    with caplog.at_level(logging.WARNING):
        assert f() == 1
    warnings = [r for r in caplog.records if name in r.getMessage()]
    assert len(warnings) == 1
    assert "runs unlimited" in warnings[0].getMessage()
    with pytest.raises(ConfigurationError, match=name), concurrency(name, strict=True):
        pass


def test_bad_uses_are_refused():
    name = unique("plain")
    concurrency_limit(name, 2)
    with pytest.raises(ConfigurationError, match="slot_decay_per_second"):
        rate_limit(name)
    with pytest.raises(ConfigurationError, match="occupy"), concurrency(name, occupy=3):
        pass
    with pytest.raises(ConfigurationError, match="slot_decay_per_second"):
        concurrency_limit(name, 2, slot_decay_per_second=0)
    with pytest.raises(ConfigurationError, match="names"), concurrency([]):
        pass

"""Tasks and flows importable by worker processes (pickled by reference)."""

from __future__ import annotations

import os
from pathlib import Path

from daskflow import task


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
def describe(value: object) -> str:
    return f"{type(value).__name__}: {value}"


def count_attempt(folder: str, name: str) -> int:
    """Record one attempt in a file (visible across worker processes)."""
    path = Path(folder) / name
    with path.open("a") as f:
        f.write("x")
    return len(path.read_text())


@task(retries=3, retry_delay_seconds=0)
def fails_twice(folder: str) -> str:
    if count_attempt(folder, "fails_twice") <= 2:
        raise ConnectionError("not yet")
    return "ok"


@task
def die_once(folder: str) -> int:
    """Kill the worker process the first time, succeed the second."""
    if count_attempt(folder, "die_once") == 1:
        os._exit(1)
    return os.getpid()


@task
def always_die() -> None:
    os._exit(1)

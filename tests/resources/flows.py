"""Small flows for the CLI tests: ``daskflow run tests/resources/flows.py:NAME``.

Self-contained on purpose: the CLI imports this file by path as the module
``flows`` and worker processes import it by that name, so it must not need
the ``tests`` package.
"""

from __future__ import annotations

from daskflow import flow, get_run_logger, task, unmapped


@task
def greet(name: str) -> str:
    get_run_logger().info("greeting %s", name)
    return f"hello {name}"


@task
def scale(x: float, factor: float) -> float:
    return x * factor


@task
def total(xs: list[float]) -> float:
    return sum(xs)


@task
def explode(reason: str) -> None:
    raise ValueError(f"exploded: {reason}")


@task(log_prints=True)
def chatty(i: int) -> int:
    print(f"chatty says {i}")
    return i


@flow
def hello(name: str = "world") -> str:
    """Greets; the task logs one record."""
    return greet(name)


@flow(name="scaled-sum")
def scaled_sum(xs: list[float], factor: float = 1.0) -> float:
    """Maps over a JSON list parameter and sums."""
    return total(scale.map(xs, unmapped(factor)))


@flow
def fails(reason: str = "on purpose") -> None:
    """A task raises: the flow run ends FAILED."""
    explode(reason)


@flow
def noisy(n: int = 3) -> int:
    """Logs from the flow function and prints from tasks (log_prints)."""
    get_run_logger().warning("noisy flow with %d tasks", n)
    return total(chatty.map(range(n)))


@task
def step(folder: str, name: str, value: int) -> int:
    """Counts its runs in FOLDER/NAME (visible across processes), returns VALUE."""
    import pathlib

    marker = pathlib.Path(folder) / name
    with marker.open("a") as f:
        f.write("x")
    return value


@task
def gate(folder: str, x: int) -> int:
    """Fails while FOLDER/closed exists."""
    import pathlib

    if (pathlib.Path(folder) / "closed").exists():
        raise RuntimeError("the gate is closed")
    return x * 10


@flow(persist_result=True)
def resumable(folder: str) -> int:
    """Two stored steps, then a gate that fails until its marker file is removed."""
    a = step(folder, "a", 1)
    b = step(folder, "b", 2)
    return gate(folder, a + b)


@flow
def unstored(folder: str) -> int:
    """Like ``resumable``, but its results are not stored: a retry runs every task again."""
    return gate(folder, step(folder, "a", 1) + step(folder, "b", 2))


not_a_flow = "just a string"

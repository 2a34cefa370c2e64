"""Flows that tests serve with ``daskflow serve`` in a subprocess."""

from __future__ import annotations

import time
from pathlib import Path

from daskflow import flow, task


@task
def wait_for_release(folder: str) -> str:
    """Mark the start, then wait (at most 60 s) for the test's "release" file."""
    Path(folder, f"started-{time.time()}").touch()
    deadline = time.time() + 60
    while not Path(folder, "release").exists() and time.time() < deadline:
        time.sleep(0.02)
    return "released"


@flow
def ticking() -> int:
    return 1


@flow
def failing() -> None:
    raise RuntimeError("fails on purpose")


@flow
def held(folder: str) -> str:
    return wait_for_release(folder)

"""Flows that tests serve as deployments (``daskflow serve --name``) in subprocesses."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Literal

from daskflow import flow


@flow
def greet(name: str, times: int = 1) -> str:
    return " ".join([f"hello {name}"] * times)


@flow
def mark(folder: str, tag: str) -> int:
    """Append this process's id to the file of ``tag``: who ran the request, how often."""
    with open(Path(folder, tag), "a") as out:
        out.write(f"{os.getpid()}\n")
    time.sleep(0.05)  # long enough that both serving processes get requests
    return os.getpid()


@flow
def failing(reason: str = "on purpose") -> None:
    raise RuntimeError(f"fails {reason}")


@flow
def nightly_report(
    day: str,
    rate: float = 0.5,
    copies: int = 1,
    regions: tuple[str, ...] = ("eu",),
    dry_run: bool = False,
    mode: Literal["full", "quick"] = "full",
    limit: int | None = None,
) -> str:
    """A parameter of each kind the panel's run form has an input for."""
    return f"{day} {rate} {copies} {','.join(regions)} {dry_run} {mode} {limit}"

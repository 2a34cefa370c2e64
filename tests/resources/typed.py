"""A flow with one parameter of each common type, for the fuzz tests.

``daskflow run tests/resources/typed.py:typed -p KEY=VALUE`` imports this
file by path as the module ``typed``; every parameter has a default, so any
one ``-p`` alone makes a complete call. Self-contained: no ``tests`` import.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from daskflow import flow


@flow(cluster="sync")
def typed(
    n: int = 1,
    x: float = 1.0,
    s: str = "s",
    tags: list[str] | None = None,
    d: dict[str, Any] | None = None,
    flag: bool = False,
    when: datetime | None = None,
    note: Optional[str] = None,  # noqa: UP045  (the spelling users still write)
) -> int:
    """Returns how many parameters were given something other than their default."""
    return sum(value is not None for value in (tags, d, when, note))

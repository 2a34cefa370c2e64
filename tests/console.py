"""What a user's terminal may show: daskflow's own lines, nothing from its libraries."""

from __future__ import annotations

import re

__all__ = ["foreign_lines"]

# daskflow's console lines: run log records ("12:04:31.207 | INFO    | Task run ...")
_OWN = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| [A-Z]+ +\| ")


def foreign_lines(stderr: str) -> list[str]:
    """The lines of ``stderr`` that are not daskflow's console lines.

    A traceback, a ``UserWarning`` from distributed, a log line of
    distributed, tornado or Bokeh: anything a normal run must not print.
    """
    return [line for line in stderr.splitlines() if line.strip() and not _OWN.match(line)]

"""A user's process and terminal: what runs it, and what it may show.

:func:`run_python` runs ``python ARGS`` as a user would, in a folder of
their own (its run store and results there); :func:`foreign_lines` is what
its stderr holds besides daskflow's own console lines.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

__all__ = ["foreign_lines", "run_python"]


def run_python(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in ``folder``, recording there, on two one-thread workers."""
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=folder,
        env={
            **os.environ,
            "DASKFLOW_STORE": str(folder / "runs.db"),
            "DASKFLOW_RESULTS": str(folder / "results"),
            "DASKFLOW__LOCAL_CLUSTER": "{n_workers: 2, threads_per_worker: 1}",
            **env,
        },
        check=False,
    )


# daskflow's console lines: run log records ("12:04:31.207 | INFO    | Task run ...")
_OWN = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| [A-Z]+ +\| ")


def foreign_lines(stderr: str) -> list[str]:
    """The lines of ``stderr`` that are not daskflow's console lines.

    A traceback, a ``UserWarning`` from distributed, a log line of
    distributed, tornado or Bokeh: anything a normal run must not print.
    """
    return [line for line in stderr.splitlines() if line.strip() and not _OWN.match(line)]

"""Live progress of flow runs: one tracker model, a terminal view and a notebook view.

- :mod:`~daskflow.progress.tracker`: :class:`RunTracker`, the observer that
  counts task runs per task name, and the :class:`ProgressSnapshot` it hands
  to views (the Bokeh panel reads the same snapshots);
- :mod:`~daskflow.progress.terminal`: ``rich`` live lines and a summary table;
- :mod:`~daskflow.progress.notebook`: an HTML display updated in place;
- :mod:`~daskflow.progress.console_logs`: :class:`ConsoleLogs`, the run's
  log records printed on the console as they arrive;
- :mod:`~daskflow.progress.display`: :func:`show_run`, which the engine
  wraps around each top-level flow run (its log lines, and
  :func:`display_for`, a view chosen by ``daskflow.progress``).

Importing this package is cheap: ``rich`` and ``IPython`` load only when a
view is shown, and the tracker when a view or a reader asks for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from daskflow.progress.console_logs import ConsoleLogs, console_level
from daskflow.progress.display import choose_view, display_for, show_run

if TYPE_CHECKING:
    from daskflow.progress.tracker import ProgressSnapshot, RunTracker, TaskProgress

__all__ = [
    "ConsoleLogs",
    "ProgressSnapshot",
    "RunTracker",
    "TaskProgress",
    "choose_view",
    "console_level",
    "display_for",
    "show_run",
]


def __getattr__(name: str) -> Any:
    # imported on first use: a flow run that shows no view (output not a terminal)
    # needs only the log lines
    if name in ("ProgressSnapshot", "RunTracker", "TaskProgress"):
        from daskflow.progress import tracker

        return getattr(tracker, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

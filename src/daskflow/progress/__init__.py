"""Live progress of flow runs: one tracker model, a terminal view and a notebook view.

- :mod:`~daskflow.progress.tracker`: :class:`RunTracker`, the observer that
  counts task runs per task name, and the :class:`ProgressSnapshot` it hands
  to views (the Bokeh panel reads the same snapshots);
- :mod:`~daskflow.progress.terminal`: ``rich`` live lines and a summary table;
- :mod:`~daskflow.progress.notebook`: an HTML display updated in place;
- :mod:`~daskflow.progress.display`: :func:`display_for`, which the engine
  wraps around each top-level flow run, choosing a view by
  ``daskflow.progress``.

Importing this package is cheap: ``rich`` and ``IPython`` load only when a
view is shown.
"""

from daskflow.progress.display import choose_view, display_for
from daskflow.progress.tracker import ProgressSnapshot, RunTracker, TaskProgress

__all__ = ["ProgressSnapshot", "RunTracker", "TaskProgress", "choose_view", "display_for"]

"""Choosing and running a progress view around one top-level flow run.

The engine wraps every top-level flow run in ``with show_run(flow_run_id,
flow_name): ...``: its log lines on the console
(:mod:`~daskflow.progress.console_logs`, config
``daskflow.logging.console-level``) and :func:`display_for`, its progress.
While the terminal view is live, the log lines go through its ``rich``
console, above the bars. What :func:`display_for` shows follows
``daskflow.progress``:

- ``auto`` (the default): the notebook view inside a Jupyter kernel, the
  terminal view when standard output is a terminal, else nothing;
- ``true``: the notebook view inside a kernel, else the terminal view (with
  no terminal to draw on, that is only the summary table);
- ``false``: nothing.

When nothing is shown :func:`display_for` returns a ``nullcontext``: no
tracker, no observer on the bus, so the engine builds no events for it.
Otherwise it registers a :class:`~daskflow.progress.tracker.RunTracker` on
the bus, starts the view, and on exit flushes the bus (so the summary counts
every transition), draws the summary and unregisters the tracker.

A progress display must never break a flow: any ``Exception`` from building,
drawing or stopping a view is logged (logger ``daskflow.progress``) and
swallowed, and the flow's own exception always passes through. ``rich`` and
``IPython`` are imported only here, when a view is actually shown.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

import dask.config

from daskflow.errors import ConfigurationError
from daskflow.observers.events import bus
from daskflow.progress.console_logs import ConsoleLogs, console_level

if TYPE_CHECKING:
    from rich.console import Console

    from daskflow.progress.tracker import RunTracker

__all__ = ["ViewKind", "choose_view", "display_for", "in_kernel", "show_run"]

logger = logging.getLogger("daskflow.progress")

ViewKind = Literal["terminal", "notebook"]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", "none", ""}


def in_kernel() -> bool:
    """True inside a Jupyter kernel (an ipykernel ``ZMQInteractiveShell``).

    Cheap: a process that has not imported ``ipykernel`` is not a kernel, and
    nothing new is imported to find that out.
    """
    if "ipykernel" not in sys.modules or "IPython" not in sys.modules:
        return False
    try:
        from ipykernel.zmqshell import ZMQInteractiveShell
        from IPython import get_ipython

        return isinstance(get_ipython(), ZMQInteractiveShell)
    except Exception:  # a half-installed or unusual IPython: not a kernel we can draw in
        return False


def _stdout_is_a_terminal() -> bool:
    try:
        return sys.stdout is not None and sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced by something odd, or closed
        return False


def choose_view(setting: Any = None) -> ViewKind | None:
    """Which view ``daskflow.progress`` asks for here, or None for none.

    Parameters
    ----------
    setting
        ``"auto"``, ``True`` or ``False`` (strings such as ``"true"`` and
        ``"off"`` too); by default the value of ``daskflow.progress``.
        An unknown value counts as ``"auto"``, with a warning.

    Examples
    --------
    >>> choose_view(False) is None
    True
    """
    if setting is None:
        setting = dask.config.get("daskflow.progress", "auto")
    if isinstance(setting, str):
        word = setting.strip().lower()
        if word in _TRUE:
            setting = True
        elif word in _FALSE:
            setting = False
        elif word != "auto":
            logger.warning("daskflow.progress: unknown value %r, using 'auto'", setting)
    if setting is False:
        return None
    if in_kernel():
        return "notebook"
    if setting is True or _stdout_is_a_terminal():
        return "terminal"
    return None


def display_for(
    flow_run_id: str, flow_name: str, *, console: Console | None = None
) -> contextlib.AbstractContextManager[None]:
    """Show the progress of one top-level flow run while the ``with`` block runs.

    Parameters
    ----------
    flow_run_id
        The flow run, already announced with ``FlowRunCreated``.
    flow_name
        Its flow's name, for the headline.
    console
        A ``rich`` console for the terminal view (tests pass one writing to a
        ``StringIO``). With one, the terminal view is used whenever
        ``daskflow.progress`` allows a view, even inside a kernel.

    Returns
    -------
    contextlib.AbstractContextManager[None]
        A ``nullcontext`` when ``daskflow.progress`` shows nothing here.

    Examples
    --------
    >>> with display_for(flow_run_id, "etl"):  # doctest: +SKIP
    ...     state = run_the_flow()
    """
    kind = choose_view()
    if kind is None:
        return contextlib.nullcontext()
    if console is not None:
        kind = "terminal"
    from daskflow.progress.tracker import RunTracker

    return _Display(kind, RunTracker(flow_run_id, flow_name), console)


class _Display:
    """The context manager of a shown view; see the module docstring."""

    def __init__(self, kind: ViewKind, tracker: RunTracker, console: Console | None) -> None:
        self.kind = kind
        self.tracker = tracker
        self._console = console
        self._view: Any = None

    def _make_view(self) -> Any:
        if self.kind == "notebook":
            from daskflow.progress.notebook import NotebookView

            return NotebookView(self.tracker)
        from daskflow.progress.terminal import TerminalView

        return TerminalView(self.tracker, console=self._console)

    def __enter__(self) -> None:
        try:
            view = self._make_view()
        except Exception:
            logger.warning("daskflow: cannot show progress", exc_info=True)
            return
        bus.register(self.tracker)
        try:
            view.start()
        except Exception:
            logger.warning("daskflow: cannot show progress", exc_info=True)
            bus.unregister(self.tracker)
            return
        self._view = view

    @property
    def live_console(self) -> Console | None:
        """The console of the terminal view while it draws live lines, else None."""
        console = getattr(self._view, "console", None)
        return console if console is not None and console.is_terminal else None

    def __exit__(self, *exc_info: object) -> None:
        view, self._view = self._view, None
        if view is None:
            return
        try:
            bus.flush()  # every transition of the run reaches the tracker first
            view.stop()
        except Exception:
            logger.warning("daskflow: cannot show the progress summary", exc_info=True)
        finally:
            bus.unregister(self.tracker)


@contextlib.contextmanager
def show_run(
    flow_run_id: str,
    flow_name: str,
    *,
    run_name: str | None = None,
    console: Console | None = None,
) -> Iterator[None]:
    """Show one top-level flow run while the ``with`` block runs: its log lines and progress.

    The log records of the run and its subflows print on the console as they
    arrive (:class:`~daskflow.progress.console_logs.ConsoleLogs`, at
    ``daskflow.logging.console-level``), above the live lines of the terminal
    view when it shows; :func:`display_for` shows the progress. On exit the
    bus is flushed, so the run's last records print before the summary.

    Parameters
    ----------
    flow_run_id
        The flow run; its ``FlowRunCreated`` is published inside the block.
    flow_name
        Its flow's name, for the progress headline.
    run_name
        Its run name, for its log lines (else learnt from its
        ``FlowRunCreated``, which ``serve`` publishes before the run starts).
    console
        A ``rich`` console for the terminal view, as for :func:`display_for`.

    Examples
    --------
    >>> with show_run(flow_run_id, "etl"):  # doctest: +SKIP
    ...     state = run_the_flow()
    """
    try:
        level = console_level()
    except ConfigurationError as exc:  # a bad setting must not stop the flow
        logger.warning("daskflow: %s; printing run logs at INFO", exc)
        level = logging.INFO
    logs = ConsoleLogs(level, flow_run_id, run_name=run_name) if level is not None else None
    shown = display_for(flow_run_id, flow_name, console=console)
    with contextlib.ExitStack() as stack:
        if logs is not None:
            bus.register(logs)
            stack.callback(bus.unregister, logs)  # flushes: the last records print
        stack.enter_context(shown)
        if logs is not None and isinstance(shown, _Display):
            logs.use_console(shown.live_console)
            stack.callback(logs.use_console, None)  # the view is gone: plain stderr
            stack.callback(bus.flush)  # the last records, above the live lines
        yield

"""``daskflow.is_cancelled()``: whether the run this code runs in was asked to stop.

Python cannot interrupt a running thread, so a long loop in a task asks::

    for chunk in chunks:
        if daskflow.is_cancelled():
            break
        work(chunk)

It reads what this process already knows (:mod:`daskflow.engine.cancellation`:
the flow's process sets its run's token; it tells the workers once, when the
run is cancelled), so a call costs a dictionary lookup and no message.
"""

from __future__ import annotations

__all__ = ["is_cancelled"]


def is_cancelled() -> bool:
    """True once the flow run this code runs in (a task run's, or a flow function's) was cancelled.

    False outside a run.

    Examples
    --------
    >>> from daskflow import is_cancelled
    >>> is_cancelled()  # outside a run
    False
    """
    from daskflow.engine.cancellation import is_cancelled as flow_run_cancelled
    from daskflow.runtime.flow_run import current_id

    flow_run_id = current_id()
    return flow_run_id is not None and flow_run_cancelled(flow_run_id)

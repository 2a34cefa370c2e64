"""Generator flows: a flow whose function ``yield``s (Prefect 3).

Calling a generator flow returns a generator, as in Prefect: its flow run
starts when the caller asks for the first value and ends (COMPLETED, with
the generator's ``return`` value) when the generator is exhausted, or when
the caller stops early (``break``, ``close()``); an exception in the flow
function ends the run FAILED and reaches the caller from ``next()``.

The flow run runs as every flow run does (:func:`~daskflow.api.flow_run.run_flow`:
records, retries, timeout, hooks), on a thread of its own, in a copy of the
caller's context (a generator flow called in a flow is its subflow). The
two threads go in lockstep through a :class:`Handoff`: the flow function
advances one value each time the caller asks for one, so values are made
only as fast as they are consumed, as with a plain generator; the caller's
code between two values runs in the caller's thread.

A flow that *returns* a generator (``return gen()``) has it consumed into a
list, as Prefect does: a flow's result must be a value.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Generator, Sequence
from typing import Any

__all__ = ["Handoff", "drive", "iterate"]

_NEXT, _CLOSE = "next", "close"

#: The handoff of the generator flow whose run this thread runs (its body drives it).
current_handoff: contextvars.ContextVar[Handoff | None] = contextvars.ContextVar(
    "daskflow_generator_handoff", default=None
)


class Handoff:
    """Values passed one at a time from a generator flow's run to its caller."""

    def __init__(self, flow: Any) -> None:
        self.flow = flow  # the generator flow whose body hands its values over
        self._asks: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._answers: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()

    # -- in the flow run's thread ------------------------------------------------------
    def drive(self, gen: Generator[Any, Any, Any]) -> Any:
        """Advance ``gen`` one value per request; its return value (None if closed early)."""
        while True:
            if self._asks.get() == _CLOSE:
                gen.close()
                return None
            try:
                value = next(gen)
            except StopIteration as stop:
                return stop.value
            self._answers.put(("value", value))

    def run(self, flow: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> None:
        """Run the flow to its end, then tell the caller how it ended."""
        from daskflow.api.flow_run import run_flow

        current_handoff.set(self)
        try:
            result = run_flow(flow, args, kwargs, False)
        except BaseException as exc:  # the caller raises it from next()
            self._answers.put(("error", exc))
        else:
            self._answers.put(("done", result))

    # -- in the caller's thread --------------------------------------------------------
    def ask(self, what: str) -> None:
        self._asks.put(what)

    def answer(self) -> tuple[str, Any]:
        return self._answers.get()


def drive(flow: Any, gen: Generator[Any, Any, Any]) -> Any:
    """What the generator a flow function gave back gives its run.

    Under a generator flow's call, its values go to the caller one by one;
    a flow that merely returned a generator (or a subflow of a generator
    flow) gets the list of its values.
    """
    handoff = current_handoff.get()
    if handoff is None or handoff.flow is not flow:
        return list(gen)
    return handoff.drive(gen)


def iterate(flow: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Generator[Any, None, Any]:
    """Run generator flow ``flow`` as its caller consumes it (see the module docstring)."""
    handoff = Handoff(flow)
    context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run,
        args=(handoff.run, flow, args, kwargs),
        name=f"daskflow-flow-{flow.name}",
        daemon=True,
    )
    thread.start()
    try:
        while True:
            handoff.ask(_NEXT)
            kind, payload = handoff.answer()
            if kind == "value":
                yield payload
            elif kind == "done":
                return payload
            else:
                raise payload
    finally:
        handoff.ask(_CLOSE)  # stopped early: the run ends; else nobody listens any more
        thread.join()

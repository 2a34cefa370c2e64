"""The event bus: batches in, batches out, on one thread, failures contained."""

from __future__ import annotations

import threading

from daskflow.observers.events import EventBus, Observer, StateChanged
from daskflow.states import State, StateType


class Recorder(Observer):
    def __init__(self) -> None:
        self.batches: list[list[object]] = []
        self.threads: set[str] = set()

    def on_events(self, events, **kwargs):
        self.threads.add(threading.current_thread().name)
        self.batches.append(list(events))


class Broken(Observer):
    def on_events(self, events, **kwargs):
        raise RuntimeError("a broken observer")


def test_events_are_delivered_in_order_on_one_thread(caplog):
    bus = EventBus()
    assert not bus.active
    bus.publish([StateChanged("f", None, State(StateType.RUNNING))])  # nobody listens: dropped
    recorder = bus.register(Recorder())
    bus.register(Broken())
    batches = [[StateChanged("f", str(i), State(StateType.PENDING))] for i in range(50)]
    for batch in batches:
        bus.publish(batch)
    assert bus.flush(timeout=10)
    delivered = [event for batch in recorder.batches for event in batch]
    assert delivered == [event for batch in batches for event in batch]  # all, in order
    assert len(recorder.batches) <= len(batches)  # queued batches go together
    assert recorder.threads == {"daskflow-events"}
    assert "a broken observer" in caplog.text

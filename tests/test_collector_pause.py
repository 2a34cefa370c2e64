"""The cyclic garbage collector waits during bulk steps, and comes back as it was."""

from __future__ import annotations

import gc
import threading

import pytest

from daskflow.engine.collector_pause import collector_paused


def test_the_collector_waits_until_the_last_pause_ends():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still runs
    assert gc.isenabled()


def test_overlapping_pauses_of_two_threads():
    first_in, second_out = threading.Event(), threading.Event()
    seen = []

    def other() -> None:
        first_in.wait()
        with collector_paused():
            pass
        seen.append(gc.isenabled())  # the main thread's pause still runs
        second_out.set()

    thread = threading.Thread(target=other)
    thread.start()
    with collector_paused():
        first_in.set()
        second_out.wait(10)
    thread.join()
    assert seen == [False]
    assert gc.isenabled()


def test_a_collector_the_program_disabled_stays_disabled():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_an_error_in_the_block_ends_the_pause():
    with pytest.raises(ValueError, match="boom"), collector_paused():
        raise ValueError("boom")
    assert gc.isenabled()

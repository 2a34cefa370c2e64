"""The pure state machine of ``daskflow.states``: no cluster, no I/O."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from daskflow.errors import CancelledRunError, CrashedError, DaskflowError
from daskflow.states import InvalidTransitionError, State, StateType, transition

S = StateType
FINAL = [S.COMPLETED, S.CACHED, S.FAILED, S.TIMED_OUT, S.UPSTREAM_FAILED, S.CRASHED, S.CANCELLED]
ALLOWED = {
    None: {S.SCHEDULED, S.PENDING},
    S.SCHEDULED: {S.PENDING, S.RUNNING, S.CANCELLED},
    S.PENDING: {S.RUNNING, S.UPSTREAM_FAILED, S.CANCELLED, S.CRASHED, S.CACHED, S.FAILED},
    S.RUNNING: {*FINAL, S.RETRYING} - {S.UPSTREAM_FAILED},
    S.RETRYING: {S.RUNNING, S.CANCELLED, S.CRASHED, S.FAILED},
}


@pytest.mark.parametrize(
    ("current", "new"), [(c, n) for c, news in ALLOWED.items() for n in sorted(news, key=str)]
)
def test_allowed_transitions(current, new):
    assert transition(current, new) is new


def test_every_other_transition_is_refused():
    for current, new in itertools.product([None, *S], S):
        if new in ALLOWED.get(current, set()):
            continue
        with pytest.raises(InvalidTransitionError) as info:
            transition(current, new)
        assert (info.value.current, info.value.new) == (current, new)


@pytest.mark.parametrize("final", FINAL)
def test_a_final_state_is_never_left(final):
    assert final.is_final
    for new in S:
        with pytest.raises(InvalidTransitionError, match=f"from {final.value} to {new.value}"):
            transition(final, new)


def test_invalid_transition_error():
    with pytest.raises(InvalidTransitionError) as info:
        transition(None, S.COMPLETED)
    assert isinstance(info.value, DaskflowError)
    assert isinstance(info.value, RuntimeError)
    assert str(info.value) == "a run cannot move from (new run) to COMPLETED"


def test_only_final_states_refuse_every_move():
    stuck = {t for t in S if not any(n in ALLOWED.get(t, set()) for n in S)}
    assert stuck == set(FINAL)


def _raise_value_error() -> None:
    raise ValueError("bad input 42")


def _caught() -> ValueError:
    try:
        _raise_value_error()
    except ValueError as exc:
        return exc
    raise AssertionError("not raised")


def test_from_exception_keeps_type_message_and_traceback():
    exc = _caught()
    state = State.from_exception(S.FAILED, exc)
    assert state.type is S.FAILED
    assert state.error_type == "ValueError"
    assert state.error_message == "bad input 42"
    assert state.message == "ValueError: bad input 42"
    assert "_raise_value_error" in state.traceback
    assert state.traceback.rstrip().endswith("ValueError: bad input 42")
    assert state.data is exc
    assert state.is_failed()
    assert state.is_final()

    custom = State.from_exception(S.TIMED_OUT, exc, message="attempt 1 of 1", timestamp=5.0)
    assert (custom.message, custom.timestamp) == ("attempt 1 of 1", 5.0)


def test_result_raises_the_failures_exception_or_returns_it():
    exc = _caught()
    state = State.from_exception(S.FAILED, exc)
    with pytest.raises(ValueError, match="bad input 42") as info:
        state.result()
    assert info.value is exc
    assert state.result(raise_on_failure=False) is exc
    assert state.exception() is exc


def test_result_of_completed_and_unfinished_states():
    done = State(S.COMPLETED).with_data({"rows": 3})
    assert done.result() == {"rows": 3}
    assert done.exception() is None
    assert State(S.CACHED, data=7).result() == 7
    assert State(S.RUNNING).result() is None
    assert State(S.RUNNING).exception() is None


def test_exception_rebuilt_when_data_was_not_kept():
    crashed = State(S.CRASHED, message="worker died 3 times")
    error = crashed.exception()
    assert isinstance(error, CrashedError)
    assert "worker died 3 times" in str(error)
    with pytest.raises(CrashedError, match="worker died 3 times"):
        crashed.result()

    assert isinstance(State(S.CANCELLED).exception(), CancelledRunError)
    assert isinstance(State(S.CANCELLED).result(raise_on_failure=False), CancelledRunError)

    failed = State(S.FAILED, error_type="KeyError", error_message="'day'")
    with pytest.raises(DaskflowError, match="KeyError: 'day'"):
        failed.result()


def test_states_are_frozen_and_data_is_not_part_of_equality():
    state = State(S.COMPLETED, timestamp=1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.type = S.FAILED  # type: ignore[misc]
    assert state.with_data(1) == state.with_data(2)
    assert state.with_data(1) is not state
    assert state.data is None
    assert repr(State(S.FAILED, message="boom")) == "State(FAILED, message='boom')"

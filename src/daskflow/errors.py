"""Every error daskflow raises on its own account.

A task's own exception reaches the user unwrapped; the classes here are for
what daskflow itself finds wrong. Each one mixes in the built-in exception a
user would already catch, keeps its subject as attributes and builds its
message once::

    DaskflowError
    ├── ParameterValidationError (ValueError)   a flow parameter fails its type hint
    ├── MapLengthError (ValueError)             .map over iterables of different lengths
    ├── NotATaskError (TypeError)               @task / @flow on something not callable
    ├── SerializationError (TypeError)          an argument or result cannot be pickled
    ├── ClusterConnectionError (ConnectionError) the cluster address cannot be reached
    ├── ConfigurationError (ValueError)         a bad value in the daskflow config
    ├── TaskRunTimeout (TimeoutError)           an attempt passed its timeout_seconds
    ├── FlowRunTimeout (TimeoutError)           a flow run passed its timeout_seconds
    ├── ConcurrencyTimeout (TimeoutError)       no slot of a limit came in timeout_seconds
    ├── UpstreamFailedError (RuntimeError)      a task did not run: an upstream failed
    ├── CrashedError (RuntimeError)             the infrastructure failed, not the code
    ├── CancelledRunError (RuntimeError)        the run was cancelled
    ├── FailedRunError (RuntimeError)           a run ended in a Failed state its code returned
    ├── ShellCommandError (RuntimeError)        a shell task's command exited non-zero
    ├── RunNotFoundError (LookupError)          no recorded flow run has this id
    ├── DeploymentNotFoundError (LookupError)   no deployment of this name in the run store
    ├── NoFlowRunError (RuntimeError)           .submit / .map / get_run_logger outside a flow
    ├── InvalidTransitionError (RuntimeError)   a state change the machine refuses (a bug)
    ├── StoreError (RuntimeError)               the run store is corrupt, newer, or not daskflow's
    ├── ResultStorageError (OSError)            a result cannot be written to or read from storage
    ├── ResumeError (ValueError)                a flow run cannot be resumed (wrong flow, not over)
    ├── CancelError (ValueError)                a flow run cannot be cancelled (it has ended)
    ├── ScheduleError (ValueError)              a bad cron string, interval or timezone for serve
    └── ArtifactError (ValueError)              a bad artifact key, table or id; no such artifact
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "ArtifactError",
    "CancelError",
    "CancelledRunError",
    "ClusterConnectionError",
    "ConcurrencyTimeout",
    "ConfigurationError",
    "CrashedError",
    "DaskflowError",
    "DeploymentNotFoundError",
    "FailedRunError",
    "FlowRunTimeout",
    "InvalidTransitionError",
    "MapLengthError",
    "NoFlowRunError",
    "NotATaskError",
    "ParameterValidationError",
    "ResultStorageError",
    "ResumeError",
    "RunNotFoundError",
    "ScheduleError",
    "SerializationError",
    "ShellCommandError",
    "StoreError",
    "TaskRunTimeout",
    "UpstreamFailedError",
]


class DaskflowError(Exception):
    """Root of every error daskflow raises itself.

    Errors cross process boundaries (a task's failure travels from a worker
    to the client), so they pickle as their message and attributes rather
    than their constructor's arguments.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), str(self), self.__dict__))


def _rebuild(cls: type[DaskflowError], message: str, attributes: dict[str, Any]) -> DaskflowError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(attributes)
    return error


class ParameterValidationError(DaskflowError, ValueError):
    """A flow parameter does not match its type hint.

    Raised before any task of the flow runs.
    """

    def __init__(self, flow_name: str, parameter: str, expected: str, detail: str) -> None:
        self.flow_name = flow_name
        self.parameter = parameter
        self.expected = expected
        super().__init__(
            f"flow {flow_name!r}: parameter {parameter!r} expects {expected}: {detail}"
        )


class MapLengthError(DaskflowError, ValueError):
    """``Task.map`` was given iterables of different lengths."""

    def __init__(self, task_name: str, lengths: dict[str, int]) -> None:
        self.task_name = task_name
        self.lengths = lengths
        listed = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        super().__init__(f"{task_name}.map: mapped arguments differ in length ({listed})")


class NotATaskError(DaskflowError, TypeError):
    """``@task`` or ``@flow`` was applied to something that is not callable."""

    def __init__(self, decorator: str, obj: object) -> None:
        self.obj = obj
        super().__init__(f"@{decorator} needs a function, got {type(obj).__name__} {obj!r:.80}")


class SerializationError(DaskflowError, TypeError):
    """An argument or a result cannot be pickled to cross to another process."""

    def __init__(self, task_name: str, what: str, cause: BaseException) -> None:
        self.task_name = task_name
        self.what = what
        super().__init__(
            f"task {task_name!r}: {what} cannot be pickled to send to the cluster "
            f"({type(cause).__name__}: {cause}); pass something picklable, or create it "
            f"inside the task"
        )


class ClusterConnectionError(DaskflowError, ConnectionError):
    """The cluster address given could not be reached in time."""

    def __init__(self, address: str, timeout: float, cause: BaseException | None = None) -> None:
        self.address = address
        self.timeout = timeout
        reason = f": {cause}" if cause else ""
        super().__init__(
            f"could not connect to a Dask scheduler at {address} within {timeout:g} s{reason}"
        )


class ConfigurationError(DaskflowError, ValueError):
    """A value in the ``daskflow`` configuration, or an option, is not usable."""

    def __init__(self, key: str, value: object, expected: str) -> None:
        self.key = key
        self.value = value
        super().__init__(f"{key}={value!r} is not valid: expected {expected}")


class TaskRunTimeout(DaskflowError, TimeoutError):
    """A task attempt ran longer than its ``timeout_seconds``."""

    def __init__(self, task_name: str, seconds: float) -> None:
        self.task_name = task_name
        self.seconds = seconds
        super().__init__(f"task {task_name!r} timed out after {seconds:g} s")


class FlowRunTimeout(DaskflowError, TimeoutError):
    """A flow run ran longer than its ``timeout_seconds``.

    ``seconds`` is None where only the deadline is known (code in the flow
    waiting on a task run when it passed).
    """

    def __init__(self, flow_name: str, seconds: float | None) -> None:
        self.flow_name = flow_name
        self.seconds = seconds
        after = "at its deadline" if seconds is None else f"after {seconds:g} s"
        super().__init__(f"flow {flow_name!r} timed out {after}")


class ConcurrencyTimeout(DaskflowError, TimeoutError):
    """``concurrency(...)`` or ``rate_limit(...)`` got no slot within ``timeout_seconds``."""

    def __init__(self, name: str, seconds: float) -> None:
        self.name = name
        self.seconds = seconds
        super().__init__(f"no slot of concurrency limit {name!r} was free within {seconds:g} s")


class UpstreamFailedError(DaskflowError, RuntimeError):
    """A task run was not started because a task it depends on failed.

    ``root`` names the task run whose failure started it all, with its
    error (``"'extract-3' (ConnectionError: timed out)"``), however many
    task runs lie between.
    """

    def __init__(
        self, task_name: str, upstream: Iterable[str] = (), root: str | None = None
    ) -> None:
        self.task_name = task_name
        self.upstream = tuple(upstream)
        self.root = root
        which = f" ({', '.join(self.upstream)})" if self.upstream else ""
        cause = f"; it started with {root}" if root else ""
        super().__init__(f"task {task_name!r} did not run: an upstream task failed{which}{cause}")


class CrashedError(DaskflowError, RuntimeError):
    """The infrastructure failed under a run: a worker died too often, the process died."""

    def __init__(self, subject: str, reason: str) -> None:
        self.subject = subject
        self.reason = reason
        super().__init__(f"{subject} crashed: {reason}")


class CancelledRunError(DaskflowError, RuntimeError):
    """The run was cancelled before it finished."""

    def __init__(self, subject: str, reason: str = "cancelled") -> None:
        self.subject = subject
        super().__init__(f"{subject} was cancelled: {reason}")


class FailedRunError(DaskflowError, RuntimeError):
    """A run ended in a failed state that its code returned (``Failed(message=...)``).

    What ``state.result()`` raises for such a state, as Prefect's ``FailedRun``.
    """

    def __init__(self, message: str) -> None:
        self.reason = message
        super().__init__(message)


class ShellCommandError(DaskflowError, RuntimeError):
    """The command of a shell task (:mod:`daskflow.shell`) exited non-zero.

    ``exit_code`` is negative when a signal ended the command (``-9``: SIGKILL);
    ``stderr_tail`` holds its last lines of standard error.
    """

    def __init__(self, command: str, exit_code: int, stderr_tail: str) -> None:
        self.command = command
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail
        how = f"exit code {exit_code}"
        if exit_code < 0:
            how += f" (killed by signal {-exit_code})"
        tail = f"; last lines of stderr:\n{stderr_tail}" if stderr_tail else " (stderr was empty)"
        super().__init__(f"command {command!r} failed with {how}{tail}")


class RunNotFoundError(DaskflowError, LookupError):
    """No flow run in the run store has this id, or this prefix names no single run.

    ``matches`` holds some of the ids a prefix matches when it is ambiguous.
    """

    def __init__(self, run_id: str, store: str | None = None, matches: Iterable[str] = ()) -> None:
        self.run_id = run_id
        self.store = store
        self.matches = list(matches)
        where = f" in the run store {store}" if store else ""
        if len(self.matches) > 1:
            listed = ", ".join(m[:12] for m in self.matches)
            message = (
                f"ambiguous run id {run_id!r}{where}: several flow runs start with it "
                f"({listed}{', ...' if len(self.matches) >= 5 else ''}); give more characters"
            )
        else:
            message = (
                f"no flow run with id {run_id!r}{where} (give a full id, or a prefix of "
                "6+ characters that only one run's id starts with)"
            )
        super().__init__(message)


class DeploymentNotFoundError(DaskflowError, LookupError):
    """No deployment of this name (``flow/deployment``) is recorded in the run store.

    ``known`` lists the deployments that are.
    """

    def __init__(self, name: str, store: str | None = None, known: Iterable[str] = ()) -> None:
        self.name = name
        self.store = store
        self.known = list(known)
        where = f" in the run store {store}" if store else ""
        shown = ", ".join(self.known[:20]) + (", ..." if len(self.known) > 20 else "")
        hint = "" if "/" in name else " (name it as FLOW/DEPLOYMENT)"
        super().__init__(
            f"no deployment {name!r}{where}{hint}; known deployments: {shown or 'none'} "
            "(flow.serve(name=...) or daskflow serve --name records one)"
        )


class NoFlowRunError(DaskflowError, RuntimeError):
    """Something that needs a running flow (``.submit``, ``get_run_logger``) ran outside one."""

    def __init__(self, what: str, hint: str = "") -> None:
        self.what = what
        super().__init__(
            f"{what} needs a running flow: call it inside a @flow function"
            + (f" ({hint})" if hint else "")
        )


class InvalidTransitionError(DaskflowError, RuntimeError):
    """A state change the state machine does not allow (a bug, not bad input)."""

    def __init__(self, current: object, new: object) -> None:
        self.current = current
        self.new = new
        name = getattr(current, "value", None) or "(new run)"
        super().__init__(f"a run cannot move from {name} to {getattr(new, 'value', new)}")


class StoreError(DaskflowError, RuntimeError):
    """The run store cannot be opened: not a daskflow database, corrupt, or newer.

    Raised before anything is written, so the store (and every run in it) is
    left exactly as it was.
    """

    def __init__(self, store: str, reason: str) -> None:
        self.store = store
        self.reason = reason
        super().__init__(f"run store {store}: {reason}")


class ResultStorageError(DaskflowError, OSError):
    """A result could not be written to, or read from, result storage."""

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(f"result storage {location}: {reason}")


class ResumeError(DaskflowError, ValueError):
    """A flow run cannot be resumed: it belongs to another flow, or has not ended."""

    def __init__(self, run_id: str, reason: str) -> None:
        self.run_id = run_id
        self.reason = reason
        super().__init__(f"cannot resume flow run {run_id}: {reason}")


class ScheduleError(DaskflowError, ValueError):
    """A schedule for ``serve`` is invalid: a bad cron string, interval or timezone.

    Raised before the serve process starts anything.
    """

    def __init__(self, what: str, value: object, reason: str) -> None:
        self.what = what
        self.value = value
        self.reason = reason
        shown = "" if value is None else f" {value!r}"
        super().__init__(f"invalid {what}{shown}: {reason}")


class CancelError(DaskflowError, ValueError):
    """A flow run cannot be cancelled: it has already ended."""

    def __init__(self, run_id: str, reason: str) -> None:
        self.run_id = run_id
        self.reason = reason
        super().__init__(f"cannot cancel flow run {run_id}: {reason}")


class ArtifactError(DaskflowError, ValueError):
    """An artifact cannot be created, updated or found.

    A key that is not lowercase letters, digits and dashes, a table that is
    not a list of dicts, a dict of lists or a DataFrame, an id that is not an
    artifact id, or (reading) no artifact of that key. ``subject`` names the
    artifact (its key, or what was given), ``reason`` what is wrong.
    """

    def __init__(self, subject: str, reason: str) -> None:
        self.subject = subject
        self.reason = reason
        super().__init__(f"artifact {subject}: {reason}")

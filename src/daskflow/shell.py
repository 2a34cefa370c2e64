"""Shell tasks: a command line run as a tracked task run.

:func:`shell_task` turns a command into a :class:`~daskflow.api.task.Task`
like any other — ``.submit``, ``.map``, retries, timeouts, hooks — whose
runs execute the command on the worker and return what it printed::

    count = shell_task("wc -l < {path}", retries=2)

    @flow
    def lines(paths: list[str]) -> list[str]:
        return count.map(path=paths).result()

The model, in four points:

- **The command is a format string; arguments fill it, quoted.** Keyword
  arguments fill named fields (``{path}``), positional arguments fill ``{}``
  or ``{0}``. Every value is formatted, then quoted with :func:`shlex.quote`,
  so a value is always one word and never shell syntax: ``"x; rm -rf ~"``
  stays a file name. The fields give the task a real signature (positional
  fields are ``arg0, arg1, ...``, named fields keyword-only), which is what
  ``task_run_name="count-{path}"``, ``.map`` and the recorded parameters
  use. Leave fields outside quotes (``grep {pattern}``, not
  ``grep '{pattern}'``): the quoting is done for you. Braces the shell
  needs are doubled: ``awk '{{print $1}}'``, ``${{HOME}}``.
- **Where it runs.** ``bash -c COMMAND`` where bash is on the ``PATH`` of
  the machine running the task, else ``/bin/sh -c COMMAND`` (POSIX), in
  ``cwd``, with ``env`` laid over that machine's environment, stdin closed.
  Bash runs a pipeline's status from its last command, as usual: start
  with ``set -o pipefail;`` to fail on any.
- **Output.** Two threads read stdout and stderr while the command runs;
  each line becomes a run log record as it comes (stdout at INFO, stderr at
  WARNING), so a long command can be followed live. The task returns stdout
  with its trailing newlines removed, like the shell's ``$(...)``. A
  non-zero exit raises :class:`~daskflow.errors.ShellCommandError` with the
  exit code and the last lines of stderr: the run ends FAILED (or is
  retried).
- **Timeouts kill.** The command runs in a session of its own. When the
  attempt has a deadline (the task's ``timeout_seconds``, read from
  :data:`~daskflow.engine.timeouts.attempt_deadline`), the whole process
  group gets SIGTERM at the deadline, SIGKILL a short grace later, and the
  attempt raises :class:`~daskflow.errors.TaskRunTimeout`: a timed-out
  command leaves no process behind (unless it started a session of its own,
  e.g. with ``setsid``).
- **Cancellation kills too.** When the task run's flow run is cancelled
  (``daskflow runs cancel``), the command's process group is stopped the same
  way within about ``CANCEL_CHECK_SECONDS`` and the run ends CANCELLED, not
  retried: a cancelled flow leaves no long command running on the workers.

Output goes through pipes, so a program that buffers its output when not on
a terminal (Python: use ``python -u``) shows its lines when it flushes, and a
command that leaves a background process holding stdout open is waited for
until that process exits (or the deadline).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import queue
import re
import shlex
import shutil
import signal
import string
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from typing import IO, Any

from daskflow.api.logger import get_run_logger
from daskflow.api.task import Task, task
from daskflow.engine.cancellation import is_cancelled
from daskflow.engine.run_logs import current_task_run
from daskflow.engine.timeouts import attempt_deadline
from daskflow.errors import (
    CancelledRunError,
    ConfigurationError,
    NoFlowRunError,
    ShellCommandError,
    TaskRunTimeout,
)

__all__ = ["ShellCommand", "shell_task"]

#: Lines of stderr kept for the error of a failed command.
STDERR_TAIL_LINES = 20
#: Seconds a timed-out command's processes get between SIGTERM and SIGKILL.
KILL_GRACE_SECONDS = 2.0
#: Seconds between two looks at whether a running command's flow run was cancelled.
CANCEL_CHECK_SECONDS = 0.25

_STDOUT, _STDERR = 0, 1
_LEVELS = {_STDOUT: logging.INFO, _STDERR: logging.WARNING}


def shell_task(
    command: str,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    name: str | None = None,
    **task_options: Any,
) -> Task[..., str]:
    """A task that runs a shell command and returns its stdout.

    Parameters
    ----------
    command
        A :meth:`str.format` string; the task's arguments fill its fields,
        each value quoted with :func:`shlex.quote`. Keyword arguments fill
        named fields, positional arguments ``{}``/``{0}`` fields. Write
        literal braces as ``{{`` and ``}}``.
    env
        Environment variables laid over the worker's environment.
    cwd
        The working directory of the command (default: the worker's).
    name
        The task's name; default ``"shell-"`` and the program's name
        (``"shell-wc"`` for ``"wc -l {path}"``).
    **task_options
        Any option of :func:`~daskflow.task`: ``retries``,
        ``timeout_seconds`` (the command is killed at the deadline),
        ``task_run_name`` (over the field names), ``tags``...

    Returns
    -------
    Task
        Its runs return the command's stdout without trailing newlines, log
        each line of stdout (INFO) and stderr (WARNING) as it comes, and
        raise :class:`~daskflow.errors.ShellCommandError` on a non-zero exit.

    Raises
    ------
    ConfigurationError
        When ``command`` is not a format string whose fields are argument
        names or positions, or an option is not valid.

    Examples
    --------
    >>> from daskflow import flow
    >>> count = shell_task("wc -l < {path}", task_run_name="count-{path}")
    >>> count.name
    'shell-wc'
    >>> @flow
    ... def lines(paths: list[str]) -> list[int]:
    ...     return [int(n) for n in count.map(path=paths).result()]
    >>> lines(["/etc/hosts", "/etc/passwd"])  # doctest: +SKIP
    [7, 31]

    Positional fields, and values that are not shell-safe:

    >>> copy = shell_task("cp {} {}", retries=2, timeout_seconds=60)
    >>> copy.fn.render("my file.csv", "backup; rm -rf ~")
    "cp 'my file.csv' 'backup; rm -rf ~'"
    """
    runner = ShellCommand(command, env, cwd)
    return task(name=name or _default_name(command), **task_options)(runner)


class _FieldSignature:
    """``__signature__`` of a :class:`ShellCommand`: its fields, or None on the class.

    (A property would be returned on the class, which :func:`inspect.signature`
    refuses.)
    """

    def __get__(self, obj: ShellCommand | None, owner: type | None = None) -> Any:
        return None if obj is None else obj._signature


class ShellCommand:
    """The function of a shell task: call it to run the command.

    ``task.fn`` of a :func:`shell_task`. Its signature lists the command's
    fields; calling it fills them (quoted), runs the command and returns
    stdout (see :mod:`daskflow.shell`). It pickles as its command, ``env``
    and ``cwd``, to run on any worker.
    """

    __slots__ = ("_signature", "command", "cwd", "env")
    __signature__ = _FieldSignature()  # what inspect.signature(task.fn) shows

    def __init__(
        self,
        command: str,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        if not isinstance(command, str):
            raise ConfigurationError("command", command, "a string")
        if env is not None and not isinstance(env, Mapping):
            raise ConfigurationError("env", env, "a mapping of variable names to strings")
        self.command = command
        self.env = {str(k): str(v) for k, v in env.items()} if env else None
        self.cwd = os.fspath(cwd) if cwd is not None else None
        self._signature = _signature_of(command)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ShellCommand, (self.command, self.env, self.cwd))

    def __repr__(self) -> str:
        return f"ShellCommand({self.command!r})"

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        return ("daskflow.shell", self.command, self.env, self.cwd)

    def render(self, *args: Any, **kwargs: Any) -> str:
        """The command line for these arguments, every value quoted.

        Raises
        ------
        TypeError
            When the arguments do not match the command's fields.
        """
        try:
            self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"shell command {self.command!r}: {exc}") from None
        return _QuotingFormatter().format(self.command, *args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        command = self.render(*args, **kwargs)
        deadline = attempt_deadline.get()
        started = time.monotonic()
        current = current_task_run.get()
        task_name = current.task_name if current is not None else "shell"
        flow_run_id = current.flow_run_id if current is not None else None
        try:
            return _run(command, self.env, self.cwd, deadline, flow_run_id)
        except subprocess.TimeoutExpired:
            assert deadline is not None
            raise TaskRunTimeout(task_name, _seconds(deadline - started)) from None
        except _Cancelled:
            reason = "its flow run was cancelled; the command was killed"
            raise CancelledRunError(f"task run {task_name!r}", reason) from None


class _Cancelled(Exception):
    """The command's flow run was cancelled: it was stopped."""


def _run(
    command: str,
    env: dict[str, str] | None,
    cwd: str | None,
    deadline: float | None,
    flow_run_id: str | None = None,
) -> str:
    """Run ``command``, log its lines, return stdout.

    Raises ``TimeoutExpired`` at ``deadline``, and :class:`_Cancelled` soon
    after ``flow_run_id`` is cancelled (checked every ``CANCEL_CHECK_SECONDS``).
    """
    log = _logger()
    _time_left(command, deadline)  # an attempt already past its deadline starts nothing
    proc = subprocess.Popen(
        [_shell(), "-c", command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env} if env else None,
        cwd=cwd,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,  # its own process group: killed as one
    )
    lines: queue.SimpleQueue[tuple[int, str | None]] = queue.SimpleQueue()
    readers = [
        threading.Thread(target=_pump, args=(pipe, stream, lines), daemon=True)
        for stream, pipe in ((_STDOUT, proc.stdout), (_STDERR, proc.stderr))
    ]
    try:
        for reader in readers:
            reader.start()
        stdout: list[str] = []
        stderr: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        open_streams = len(readers)
        while open_streams:
            try:
                stream, line = lines.get(timeout=_next_check(command, deadline, flow_run_id))
            except queue.Empty:
                if flow_run_id is not None and is_cancelled(flow_run_id):
                    raise _Cancelled from None
                _time_left(command, deadline)  # TimeoutExpired once past the deadline
                continue
            if line is None:
                open_streams -= 1
                continue
            (stdout if stream == _STDOUT else stderr).append(line)
            log.log(_LEVELS[stream], "%s", line.rstrip("\n"))
        code = proc.wait(timeout=_time_left(command, deadline))
    finally:
        if proc.returncode is None:
            _stop(proc, readers)
    if code != 0:
        tail = "".join(stderr).rstrip("\n")
        raise ShellCommandError(command, code, tail)
    return "".join(stdout).rstrip("\n")


def _pump(pipe: IO[str], stream: int, lines: queue.SimpleQueue[tuple[int, str | None]]) -> None:
    """Hand each line of ``pipe`` to ``lines`` as it comes; ``None`` at the end."""
    try:
        with pipe:
            for line in pipe:
                lines.put((stream, line))
    finally:
        lines.put((stream, None))


def _stop(proc: subprocess.Popen[str], readers: list[threading.Thread]) -> None:
    """End the command's process group: SIGTERM, a grace period, SIGKILL, reap.

    The grace ends early once every process holding the output pipes is
    gone. SIGKILL goes out before the shell is reaped, so the group id
    cannot have been reused by then.
    """
    _signal_group(proc.pid, signal.SIGTERM)
    until = time.monotonic() + KILL_GRACE_SECONDS
    for reader in readers:
        if reader.is_alive():
            reader.join(max(0.0, until - time.monotonic()))
    _signal_group(proc.pid, signal.SIGKILL)  # what ignored SIGTERM, or outlived the shell
    proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _time_left(command: str, deadline: float | None) -> float | None:
    """Seconds until ``deadline`` (None: no deadline); TimeoutExpired once past."""
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise subprocess.TimeoutExpired(command, 0)
    return left


def _next_check(command: str, deadline: float | None, flow_run_id: str | None) -> float | None:
    """How long to wait for output before looking at the deadline and cancellation again."""
    left = _time_left(command, deadline)
    if flow_run_id is None:
        return left
    return CANCEL_CHECK_SECONDS if left is None else min(left, CANCEL_CHECK_SECONDS)


def _seconds(budget: float) -> float:
    """The attempt's timeout as set (3 significant digits of the measured budget)."""
    return float(f"{budget:.3g}")


@functools.cache
def _shell() -> str:
    return shutil.which("bash") or "/bin/sh"


def _logger() -> logging.LoggerAdapter[logging.Logger]:
    """The run logger; outside a run (a plain call) this module's logger."""
    try:
        return get_run_logger()
    except NoFlowRunError:
        return logging.LoggerAdapter(logging.getLogger(__name__), {})


class _QuotingFormatter(string.Formatter):
    """:meth:`str.format` that quotes every formatted value for the shell."""

    def format_field(self, value: Any, format_spec: str) -> str:
        return shlex.quote(format(value, format_spec))


_FIELD_HEAD = re.compile(r"[^.\[]*")


def _fields(command: str) -> Iterator[str]:
    """The argument each replacement field names: ``""`` (next), ``"0"``, ``"path"``."""
    for _, field, spec, _ in string.Formatter().parse(command):
        if field is not None:
            head = _FIELD_HEAD.match(field)
            yield head.group() if head else field
            if spec:
                yield from _fields(spec)


def _signature_of(command: str) -> inspect.Signature:
    """``(arg0, arg1, /, *, name, ...)`` for a command's positional and named fields."""
    expected = "a format string whose fields are argument names or positions"
    try:
        fields = list(_fields(command))
    except ValueError as exc:
        raise ConfigurationError("command", command, f"{expected} ({exc})") from None
    automatic = sum(1 for f in fields if f == "")
    numbered = {int(f) for f in fields if f.isdigit()}
    named = list(dict.fromkeys(f for f in fields if f and not f.isdigit()))
    if automatic and numbered:
        raise ConfigurationError("command", command, f"{expected}: {{}} or {{0}}, not both")
    for field in named:
        if not field.isidentifier():
            raise ConfigurationError(
                "command", command, f"{expected}; {{{field}}} is neither (write {{{{ for a brace)"
            )
    positional = automatic or (max(numbered) + 1 if numbered else 0)
    kind = inspect.Parameter
    parameters = [kind(f"arg{i}", kind.POSITIONAL_ONLY) for i in range(positional)]
    parameters += [kind(n, kind.KEYWORD_ONLY) for n in named]
    try:
        return inspect.Signature(parameters, return_annotation=str)
    except ValueError as exc:  # a named field called arg0 next to a positional one
        raise ConfigurationError("command", command, f"{expected} ({exc})") from None


def _default_name(command: str) -> str:
    """``"shell-"`` and the program's name: ``"shell-wc"`` for ``"wc -l {path}"``."""
    for word in command.split():
        if "=" in word:  # FOO=1 python ...: an assignment, not the program
            continue
        if word.startswith("{"):
            break
        program = re.sub(r"[^\w.-]", "", os.path.basename(word))
        return f"shell-{program}" if program else "shell"
    return "shell"

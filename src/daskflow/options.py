"""The options of tasks and flows, each kind in one frozen dataclass.

``@task(...)`` and ``@flow(...)`` validate what they are given here, once, so
that a bad option is an error at decoration time, not in the middle of a run.
``with_options`` makes a copy with :func:`dataclasses.replace`.

Names go to the run store, so a name or a ``task_run_name`` /
``flow_run_name`` template must be text it can hold (no NUL, no lone
surrogate). A template is checked as a format string when decorating
(balanced braces, fields that name parameters) and kept as a
:class:`NameTemplate`, whose ``format`` never raises: a field the arguments
cannot fill (a missing name, ``{x.nope}``, ``{x:d}`` for a string, a width
of a billion) leaves the template's own text as the run's name, so a name
never fails a run or loses its record.
"""

from __future__ import annotations

import datetime
import numbers
import os
import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from daskflow.errors import ConfigurationError

__all__ = ["FlowOptions", "NameTemplate", "TaskOptions", "exponential_backoff", "with_changes"]

Hook = Callable[[Any, Any, Any], object]


def exponential_backoff(backoff_factor: float, retries: int = 10) -> list[float]:
    """Delays that double: ``[factor * 2**i for i in range(retries)]``.

    Parameters
    ----------
    backoff_factor
        The first delay, in seconds.
    retries
        How many delays to list; the last one repeats for any further retry.

    Examples
    --------
    >>> exponential_backoff(1, retries=4)
    [1, 2, 4, 8]
    """
    if not isinstance(backoff_factor, numbers.Real) or backoff_factor < 0:
        raise ConfigurationError("backoff_factor", backoff_factor, "a number of seconds >= 0")
    return [backoff_factor * 2**i for i in range(retries)]


def with_changes(options: Any, **changes: Any) -> Any:
    """A validated copy of ``options`` (task or flow) with ``changes`` applied."""
    current = {f.name: getattr(options, f.name) for f in fields(options)}
    return type(options).build(**{**current, **changes})


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(name, value, "a whole number >= 0")
    return value


def _check_seconds(name: str, value: Any, allow_none: bool = True) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value < 0:
        raise ConfigurationError(name, value, "a number of seconds >= 0")
    return float(value)


def _check_delays(value: Any) -> tuple[float, ...]:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return (_check_seconds("retry_delay_seconds", value) or 0.0,)
    if isinstance(value, Sequence) and not isinstance(value, str) and value:
        return tuple(_check_seconds("retry_delay_seconds", v) or 0.0 for v in value)
    raise ConfigurationError(
        "retry_delay_seconds", value, "a number of seconds or a non-empty list of them"
    )


def _check_hooks(
    name: str, value: Any, expected: str = "a list of functions fn(obj, run, state)"
) -> tuple[Any, ...]:
    if value is None:
        return ()
    hooks = (value,) if callable(value) else tuple(value)
    for hook in hooks:
        if not callable(hook):
            raise ConfigurationError(name, hook, expected)
    return hooks


#: The hooks tasks and flows take, each a list of functions ``fn(obj, run, state)``.
HOOKS = ("on_completion", "on_failure", "on_running", "on_crashed", "on_cancellation")


#: A task's transaction hooks, each ``fn(transaction)`` (:mod:`daskflow.transactions`).
TRANSACTION_HOOKS = ("on_commit", "on_rollback")


def _hooks(opts: dict[str, Any]) -> dict[str, tuple[Hook, ...]]:
    return {name: _check_hooks(name, opts.get(name)) for name in HOOKS}


def _check_retry_on(value: Any) -> tuple[type[BaseException], ...] | None:
    if value is None:
        return None
    types = value if isinstance(value, tuple) else (value,)
    for typ in types:
        if not (isinstance(typ, type) and issubclass(typ, BaseException)):
            raise ConfigurationError("retry_on", value, "an exception type or a tuple of them")
    return types


def _common(cls: type, kind: str, opts: dict[str, Any]) -> dict[str, Any]:
    """Refuse unknown options; validate the name and the retry options tasks and flows share."""
    known = {f.name for f in fields(cls)}
    unknown = set(opts) - known
    if unknown:
        raise ConfigurationError(
            f"{kind} option", sorted(unknown)[0], f"one of {', '.join(sorted(known))}"
        )
    values: dict[str, Any] = {"name": _check_name(opts["name"])}
    if opts.get("retries") is not None:
        values["retries"] = _check_count("retries", opts["retries"])
    if opts.get("retry_delay_seconds") is not None:
        values["retry_delay_seconds"] = _check_delays(opts["retry_delay_seconds"])
    return values


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """How a task runs: the options of :func:`daskflow.task`, which describes each."""

    name: str
    retries: int = 0
    retry_delay_seconds: tuple[float, ...] = (0.0,)
    retry_jitter_factor: float | None = None
    retry_on: tuple[type[BaseException], ...] | None = None
    retry_condition_fn: Callable[[Any, Any, Any], bool] | None = None
    timeout_seconds: float | None = None
    tags: frozenset[str] = frozenset()
    on_completion: tuple[Hook, ...] = ()
    on_failure: tuple[Hook, ...] = ()
    on_running: tuple[Hook, ...] = ()
    on_crashed: tuple[Hook, ...] = ()
    on_cancellation: tuple[Hook, ...] = ()
    on_commit: tuple[Callable[[Any], object], ...] = ()  # fn(transaction), on the client
    on_rollback: tuple[Callable[[Any], object], ...] = ()  # fn(transaction), on the client
    log_prints: bool | None = None  # None: the flow's ``log_prints``
    task_run_name: str | None = None
    resources: dict[str, float] | None = field(default=None, hash=False)
    cache_key_fn: Callable[[Any, dict[str, Any]], str | None] | None = None
    cache_policy: Any = None  # a daskflow.cache_policies.CachePolicy
    cache_expiration: float | None = None  # seconds
    refresh_cache: bool = False
    persist_result: bool | None = None  # None: the flow's choice, else True when caching
    result_storage: str | None = None  # None: the flow's, else ``daskflow.results``
    batch: bool | int | None = None  # None: config ``daskflow.batch.size``
    result_storage_key: str | None = None  # a template naming the stored result

    @classmethod
    def build(cls, **opts: Any) -> TaskOptions:
        """Validate user-given options (``None`` means "the default")."""
        values = _common(cls, "task", opts)
        values["retry_jitter_factor"] = _check_seconds(
            "retry_jitter_factor", opts.get("retry_jitter_factor")
        )
        values["retry_on"] = _check_retry_on(opts.get("retry_on"))
        fn = opts.get("retry_condition_fn")
        if fn is not None and not callable(fn):
            raise ConfigurationError("retry_condition_fn", fn, "a function fn(task, run, state)")
        values["retry_condition_fn"] = fn
        timeout = _check_seconds("timeout_seconds", opts.get("timeout_seconds"))
        if timeout == 0:
            raise ConfigurationError("timeout_seconds", 0, "a number of seconds > 0")
        values["timeout_seconds"] = timeout
        values["tags"] = _check_tags(opts.get("tags"))
        values.update(_hooks(opts))
        for name in TRANSACTION_HOOKS:
            values[name] = _check_hooks(name, opts.get(name), "a list of functions fn(transaction)")
        prints = opts.get("log_prints")
        values["log_prints"] = None if prints is None else bool(prints)
        values["task_run_name"] = _check_format("task_run_name", opts.get("task_run_name"))
        resources = opts.get("resources")
        if resources is not None and not (
            isinstance(resources, dict)
            and all(isinstance(v, numbers.Real) for v in resources.values())
        ):
            raise ConfigurationError("resources", resources, "a dict like {'GPU': 1}")
        values["resources"] = dict(resources) if resources else None
        key_fn = opts.get("cache_key_fn")
        if key_fn is not None and not callable(key_fn):
            raise ConfigurationError(
                "cache_key_fn", key_fn, "a function fn(context, arguments) -> str or None"
            )
        values["cache_key_fn"] = key_fn
        values["cache_policy"] = _check_cache_policy(opts.get("cache_policy"), key_fn)
        values["cache_expiration"] = _check_expiration(opts.get("cache_expiration"))
        values["refresh_cache"] = bool(opts.get("refresh_cache") or False)
        values["batch"] = _check_batch(opts.get("batch"))
        values.update(_result_options(opts))
        values["result_storage_key"] = _check_storage_key(opts.get("result_storage_key"))
        return cls(**values)

    @property
    def caches(self) -> bool:
        """True when runs of this task look up and store cache entries."""
        if self.cache_key_fn is not None or self.result_storage_key is not None:
            return True
        if self.cache_policy is None:  # no caching asked for: cache_policies not imported
            return False
        from daskflow.cache_policies import caches

        return caches(self.cache_policy)

    @property
    def key_fn(self) -> Callable[[Any, dict[str, Any]], str | None] | None:
        """What makes the cache key of a run: ``cache_key_fn`` or the policy (None: no caching)."""
        if self.cache_key_fn is not None:
            return self.cache_key_fn
        return self.cache_policy if self.caches else None

    def retry_delay(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (0 for the first retry)."""
        delays = self.retry_delay_seconds
        return delays[min(retry_number, len(delays) - 1)]


def _check_cache_policy(value: Any, key_fn: Any) -> Any:
    if value is None:  # the usual case: cache_policies is imported only for a policy
        return None
    from daskflow.cache_policies import check

    policy = check(value)
    if policy is not None and key_fn is not None:
        raise ConfigurationError(
            "cache_policy",
            policy,
            "either cache_policy or cache_key_fn, not both "
            "(CacheKeyFnPolicy(cache_key_fn=...) + another policy combines them)",
        )
    return policy


def _check_storage_key(value: Any) -> str | None:
    """A ``result_storage_key`` template: a relative file name with ``{...}`` fields."""
    if value is None:
        return None
    expected = (
        "a file name relative to the result storage, with fields such as "
        "'{parameters[x]}', '{flow_run.id}' or '{task_run.id}'"
    )
    if not isinstance(value, str) or not value or _UNSTORABLE.search(value):
        raise ConfigurationError("result_storage_key", _cut(value), expected)
    try:
        list(string.Formatter().parse(value))
    except ValueError as exc:
        raise ConfigurationError("result_storage_key", _cut(value), f"{expected} ({exc})") from None
    return value


def _check_batch(value: Any) -> bool | int | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value >= 1:
        return value
    raise ConfigurationError("batch", value, "True, False or a number of runs per chunk >= 1")


def _check_expiration(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value <= 0:
        raise ConfigurationError(
            "cache_expiration", value, "a datetime.timedelta (or seconds) greater than 0"
        )
    return float(value)


def _result_options(opts: dict[str, Any]) -> dict[str, Any]:
    """``persist_result`` and ``result_storage``, which tasks and flows share."""
    persist = opts.get("persist_result")
    if persist is not None and not isinstance(persist, bool):
        raise ConfigurationError("persist_result", persist, "True, False or None")
    storage = opts.get("result_storage")
    if storage is not None:
        if not isinstance(storage, (str, os.PathLike)):
            raise ConfigurationError(
                "result_storage", storage, "a folder or an fsspec URL such as 's3://bucket/x'"
            )
        storage = os.fspath(storage)
    return {"persist_result": persist, "result_storage": storage}


def _check_task_runner(value: Any, cluster: Any) -> Any:
    """A flow's ``task_runner``: a :mod:`daskflow.task_runners` runner, not with ``cluster``."""
    if value is None:
        return None
    from daskflow.task_runners import TaskRunner

    if isinstance(value, type) and issubclass(value, TaskRunner):
        value = value()  # Prefect accepts the class too
    if not isinstance(value, TaskRunner):
        raise ConfigurationError(
            "task_runner",
            value,
            "a task runner from daskflow.task_runners "
            "(ThreadPoolTaskRunner, ProcessPoolTaskRunner, DaskTaskRunner, ConcurrentTaskRunner, "
            "SequentialTaskRunner)",
        )
    if cluster is not None:
        raise ConfigurationError(
            "task_runner",
            value,
            f"either task_runner= or cluster= (here cluster={cluster!r}), not both: "
            "a task runner says where the tasks run, as cluster= does",
        )
    return value


def _check_tags(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset({value})
    tags = frozenset(value) if isinstance(value, Iterable) else None
    if tags is None or not all(isinstance(t, str) for t in tags):
        raise ConfigurationError("tags", value, "an iterable of strings")
    return tags


#: Names the run store cannot hold: NUL (PostgreSQL text) and lone surrogates (UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

#: The widest field a name template fills (a larger width or precision is refused).
_MAX_FIELD_WIDTH = 1000


def _check_name(value: Any) -> str:
    if not isinstance(value, str) or _UNSTORABLE.search(value):
        raise ConfigurationError(
            "name", _cut(value), "a string (with no NUL character or lone surrogate)"
        )
    return value


class NameTemplate(str):
    """A ``task_run_name`` / ``flow_run_name`` template whose ``format`` never raises.

    Filling in a run's name must not fail the run: when the arguments
    cannot fill a field (a missing name, an attribute they lack, a format
    spec their type refuses, a width over 1000), the name is the
    template's own text. What the store cannot hold (NUL, lone surrogates)
    is written as a backslash escape.

    Examples
    --------
    >>> NameTemplate("extract-{day}").format(day="mon")
    'extract-mon'
    >>> NameTemplate("extract-{day.nope}").format(day="mon")
    'extract-{day.nope}'
    """

    __slots__ = ()

    def format(self, /, *args: Any, **kwargs: Any) -> str:
        try:
            text = _NameFormatter().vformat(str(self), args, kwargs)
        except Exception:
            return str(self)
        return _storable(text)


class _NameFormatter(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> Any:
        if any(int(n) > _MAX_FIELD_WIDTH for n in re.findall(r"\d+", format_spec)):
            raise ValueError(f"format spec {format_spec!r} is too wide for a name")
        return super().format_field(value, format_spec)


def _cut(value: Any) -> Any:
    """A long string cut for an error message (a 10,000-character name stays readable)."""
    return value[:79] + "…" if isinstance(value, str) and len(value) > 80 else value


def _storable(text: str) -> str:
    if not _UNSTORABLE.search(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _check_format(name: str, value: Any) -> NameTemplate | None:
    """A template checked as a format string over the run's arguments."""
    if value is None:
        return None
    expected = "a format string over the parameters, like 'extract-{day}'"
    if not isinstance(value, str):
        raise ConfigurationError(name, value, expected)
    if _UNSTORABLE.search(value):
        raise ConfigurationError(name, _cut(value), expected + " (with no NUL or lone surrogate)")
    try:
        _check_fields(value)
    except ValueError as exc:
        raise ConfigurationError(name, _cut(value), f"{expected} ({exc})") from None
    return NameTemplate(value)


def _check_fields(template: str, depth: int = 0) -> None:
    """Raise ValueError for what no call could fill: bad braces, ``{}``, ``{0}``, ``!x``."""
    if depth > 1:
        raise ValueError("format specs nested too deeply")
    for _, field_name, spec, conversion in string.Formatter().parse(template):
        if field_name is None:
            continue
        if not field_name or field_name[0].isdigit():
            raise ValueError(f"{{{field_name}}} is positional: name a parameter instead")
        if conversion not in (None, "r", "s", "a"):
            raise ValueError(f"unknown conversion !{conversion}")
        if spec:
            _check_fields(spec, depth + 1)


@dataclass(frozen=True, slots=True)
class FlowOptions:
    """How a flow runs: the options of :func:`daskflow.flow`, which describes each."""

    name: str
    description: str | None = None
    version: str | None = None
    retries: int = 0
    retry_delay_seconds: tuple[float, ...] = (0.0,)
    timeout_seconds: float | None = None
    validate_parameters: bool = True
    cluster: Any = None
    task_runner: Any = None  # a daskflow.task_runners.TaskRunner, mapped onto a cluster
    on_completion: tuple[Hook, ...] = ()
    on_failure: tuple[Hook, ...] = ()
    on_running: tuple[Hook, ...] = ()
    on_crashed: tuple[Hook, ...] = ()
    on_cancellation: tuple[Hook, ...] = ()
    flow_run_name: str | None = None
    log_prints: bool | None = None  # None: the parent flow run's (a subflow), else off
    persist_result: bool | None = None  # the default of its tasks
    result_storage: str | None = None  # the default of its tasks

    @classmethod
    def build(cls, **opts: Any) -> FlowOptions:
        """Validate user-given options (``None`` means "the default")."""
        values = _common(cls, "flow", opts)
        for key in ("description", "version"):
            values[key] = opts.get(key)
        timeout = _check_seconds("timeout_seconds", opts.get("timeout_seconds"))
        if timeout == 0:
            raise ConfigurationError("timeout_seconds", 0, "a number of seconds > 0")
        values["timeout_seconds"] = timeout
        if opts.get("validate_parameters") is not None:
            values["validate_parameters"] = bool(opts["validate_parameters"])
        values["cluster"] = opts.get("cluster")
        values["task_runner"] = _check_task_runner(opts.get("task_runner"), values["cluster"])
        values.update(_hooks(opts))
        values["flow_run_name"] = _check_format("flow_run_name", opts.get("flow_run_name"))
        prints = opts.get("log_prints")
        values["log_prints"] = None if prints is None else bool(prints)
        values.update(_result_options(opts))
        return cls(**values)

    def cluster_for_run(self) -> Any:
        """A context manager giving the ``cluster`` value of one flow run.

        That of its task runner, or of a cluster ``{class, kwargs, adapt}``
        mapping (this option or the ``daskflow.cluster`` config): one is made
        for each flow run and closed when it ends, as Prefect's
        ``DaskTaskRunner`` does (:meth:`~daskflow.task_runners.DaskTaskRunner.from_mapping`).
        """
        if self.task_runner is not None:
            return self.task_runner.cluster_for_run()
        import contextlib

        from daskflow import config

        cluster = self.cluster if self.cluster is not None else config.get("cluster", None)
        if isinstance(cluster, Mapping):
            from daskflow.task_runners import DaskTaskRunner

            return DaskTaskRunner.from_mapping(cluster).cluster_for_run()
        return contextlib.nullcontext(self.cluster)

    def retry_delay(self, retry_number: int) -> float:
        """Seconds to wait before flow retry ``retry_number`` (0 for the first)."""
        delays = self.retry_delay_seconds
        return delays[min(retry_number, len(delays) - 1)]

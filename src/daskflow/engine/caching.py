"""Results around an attempt: reuse one before running, store one after.

A task run whose task persists results, caches, or is being resumed carries
a :class:`ResultPolicy` on its :class:`~daskflow.engine.call.CallSpec`
(other runs carry None and pay nothing). The attempt wrapper, where the run
executes, asks :func:`prepare` before the first attempt:

1. a resumed run whose earlier result was stored (``spec.reuse``) loads it
   and ends ``CACHED``;
2. a run whose own result is already stored ran before on a worker that
   died: Dask is recomputing it to replace the lost value, so the stored
   value is loaded and returned *silently* (the run already ended, once);
3. a caching run computes its key with ``cache_key_fn(context, arguments)``
   (a key function that raises disables caching for that run with a
   warning), or fills in its ``result_storage_key`` template, and, unless
   ``refresh_cache``, a live cache entry ends the run ``CACHED`` with the
   stored value, which flows downstream.

As in Prefect 3, a run that persists its result with no cache option at
all (``persist_result=True`` alone, or a flow's) keys on
``cache_policies.DEFAULT`` (``INPUTS + TASK_SOURCE + RUN_ID``): the same
call again within one flow run is ``CACHED``; when its inputs cannot be
hashed it simply does not cache (no warning: nobody asked for a cache).
A ``result_storage_key`` (``"{parameters[x]}.pkl"``, with ``flow_run`` and
``task_run`` from :mod:`daskflow.runtime` too) is both the file the value is
written to and the cache key, so a later run with the same key reads it
back; with ``cache_policy=NONE`` it only names the file.

After a COMPLETED attempt :func:`store` writes the value (when the policy
persists) under the run's id and, with a key, as the cache entry. A value
that cannot be stored is logged as a warning; the run still completes with
its value. Everything happens on the worker: a remote worker reads and
writes result storage directly, and the events carry the record to the run
store (``details["result"]``).

Stored values are signed and checked before they are loaded
(:mod:`daskflow.results.signing`). The client reads the store's key when it
resolves a policy, and the policy carries it to the workers. A stored value
that is refused (tampered, foreign, unsigned) or unreadable is never reused:
the run logs one warning and runs, and its new result replaces the entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from daskflow.results.storage import StoredResult

__all__ = ["Prepared", "ResultPolicy", "policy_for", "prepare", "store"]

logger = logging.getLogger("daskflow.results")


@dataclass(frozen=True, slots=True)
class ResultPolicy:
    """What to do with the results of one task's runs (resolved on the client).

    Attributes
    ----------
    storage
        The result storage URL.
    persist
        Store each completed result.
    cache_key_fn, expiration, refresh
        The task's caching options (``expiration`` in seconds).
    key
        The key the storage's results are signed with, read on the client
        when the policy is made (None: read it there now) and carried to the
        workers with the policy; ``b""`` for a policy that stores nothing.
    storage_key
        The task's ``result_storage_key`` template, or None.
    quiet
        The key function is the implicit default policy: a key it cannot
        compute turns caching off for the run without a warning.
    """

    storage: str
    persist: bool
    cache_key_fn: Callable[[Any, dict[str, Any]], str | None] | None = None
    expiration: float | None = None
    refresh: bool = False
    key: bytes | None = field(default=None, repr=False)
    storage_key: str | None = None
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.key is None:  # made on the client: workers get the key it read
            from daskflow.results.signing import key_for

            object.__setattr__(self, "key", key_for(self.storage))


def policy_for(options: Any, flow_persist: bool | None, flow_storage: str | None) -> ResultPolicy:
    """The policy of a task with ``options`` in a flow with these defaults."""
    from daskflow.results.storage import default_storage_url

    persist = options.persist_result
    if persist is None:
        persist = flow_persist if flow_persist is not None else options.caches
    storage = options.result_storage or flow_storage or default_storage_url()
    if not persist:
        return ResultPolicy(storage=storage, persist=False, key=b"")
    from daskflow.cache_policies import DEFAULT, NONE

    key_fn = options.key_fn
    storage_key = options.result_storage_key
    refresh = options.refresh_cache
    quiet = False
    if storage_key is not None:  # the file name is the key (Prefect: it wins over the others)
        key_fn = None
        refresh = refresh or options.cache_policy is NONE
    elif key_fn is None and options.cache_policy is None:  # no cache option: Prefect 3's default
        key_fn, quiet = DEFAULT, True
    return ResultPolicy(
        storage=storage,
        persist=True,
        cache_key_fn=key_fn,
        expiration=options.cache_expiration,
        refresh=refresh,
        storage_key=storage_key,
        quiet=quiet,
    )


@dataclass(slots=True)
class Prepared:
    """What :func:`prepare` found: a value to reuse, or the cache key to store under."""

    key: str | None = None
    hit: bool = False
    silent: bool = False  # a recomputation after a lost worker: no new events
    value: Any = None
    details: dict[str, Any] | None = None
    message: str = ""


def prepare(
    spec: Any, args: Sequence[Any], kwargs: dict[str, Any], info: Callable[[], Any]
) -> Prepared:
    """Look for a value to reuse before running (see the module docstring).

    ``info()`` builds the context handed to ``cache_key_fn`` (only when needed).
    """
    from daskflow.results.storage import StoredResult, storage_for

    policy: ResultPolicy = spec.results
    storage = storage_for(policy.storage, policy.key)
    reuse = spec.reuse
    if reuse is not None:
        record = StoredResult.from_dict(reuse["record"])
        value = _read(spec, storage, record)
        if value is not _MISSING:
            return Prepared(
                key=record.cache_key,
                hit=True,
                value=value,
                details={"result": asdict(record), "reused_from": reuse["task_run_id"]},
                message=f"result reused from task run {reuse['task_run_id']}",
            )
    if policy.persist:
        own = storage.find(spec.task_run_id)
        if own is not None:
            value = _read(spec, storage, own)
            if value is not _MISSING:
                return Prepared(hit=True, silent=True, value=value)
    key = _cache_key(spec, policy, args, kwargs, info)
    if key is not None and not policy.refresh:
        entry = storage.lookup(key)
        if entry is not None:
            value = _read(spec, storage, entry)
            if value is not _MISSING:
                return Prepared(
                    key=key,
                    hit=True,
                    value=value,
                    details={"result": asdict(entry)},
                    message="cache hit",
                )
    return Prepared(key=key)


def store(spec: Any, key: str | None, value: Any) -> dict[str, Any] | None:
    """Store a completed run's value; the event details naming it, or None."""
    policy: ResultPolicy = spec.results
    if not policy.persist:
        return None
    from daskflow.results.storage import storage_for

    if _is_collection(value):
        _warn(spec, "a Dask collection stays on the cluster: it is not written to storage")
        return None
    try:
        record = storage_for(policy.storage, policy.key).write(
            spec.task_run_id,
            value,
            cache_key=key,
            expiration=policy.expiration,
            file_name=key if policy.storage_key is not None else None,
        )
    except Exception as exc:  # a value cloudpickle cannot write, a full disk, ...
        _warn(spec, f"its result could not be stored ({type(exc).__name__}: {exc})")
        return None
    return {"result": asdict(record)}


_MISSING = object()


def _read(spec: Any, storage: Any, record: StoredResult) -> Any:
    """The stored value, or ``_MISSING`` (with a warning in the run's logs): run instead."""
    try:
        return storage.read(record)
    except Exception as exc:  # refused, unreadable, or a value that fails to unpickle
        _warn(spec, f"its stored result is not reused, the task runs again: {exc}")
        return _MISSING


def _cache_key(
    spec: Any,
    policy: ResultPolicy,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    info: Callable[[], Any],
) -> str | None:
    if policy.storage_key is not None:
        return _storage_key(spec, policy.storage_key, args, kwargs)
    if policy.cache_key_fn is None:
        return None
    context = info()
    try:
        key = policy.cache_key_fn(context, context.parameters)
    except Exception as exc:
        if not policy.quiet:
            _warn(
                spec,
                f"caching is off for this run: cache_key_fn raised {type(exc).__name__}: {exc}",
            )
        return None
    if key is not None and not isinstance(key, str):
        _warn(spec, f"caching is off for this run: cache_key_fn returned {type(key).__name__}")
        return None
    return key


def _storage_key(
    spec: Any, template: str, args: Sequence[Any], kwargs: dict[str, Any]
) -> str | None:
    """``result_storage_key`` filled in; None (with a warning) when it cannot be.

    The fields are Prefect's: ``parameters`` (the run's arguments, defaults
    included) and the ``flow_run`` and ``task_run`` of :mod:`daskflow.runtime`.
    A name that would leave the result storage (absolute, or with ``..``) is
    refused.
    """
    import inspect

    from daskflow.runtime import flow_run, task_run

    try:
        bound = inspect.signature(spec.task.fn).bind(*args, **kwargs)
        bound.apply_defaults()
        parameters = dict(bound.arguments)
        name = template.format(parameters=parameters, flow_run=flow_run, task_run=task_run)
    except Exception as exc:
        _warn(
            spec,
            f"its result_storage_key {template!r} cannot be filled in "
            f"({type(exc).__name__}: {exc}): the result is not stored under it",
        )
        return None
    parts = name.replace("\\", "/").split("/")
    if not name or name.startswith("/") or ".." in parts or ":" in parts[0]:
        _warn(spec, f"its result_storage_key {name!r} leaves the result storage: not used")
        return None
    return name


def _is_collection(value: Any) -> bool:
    return hasattr(value, "__dask_graph__") and callable(value.__dask_graph__)


def _warn(spec: Any, what: str) -> None:
    from daskflow.engine.run_logs import get_run_logger

    try:
        get_run_logger().warning("task run %s: %s", spec.run_name, what)
    except Exception:
        logger.warning("daskflow: task run %s: %s", spec.run_name, what)

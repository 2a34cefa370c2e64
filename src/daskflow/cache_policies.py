"""Cache policies for ``@task(cache_policy=...)``, as in Prefect 3.

A policy says what a task run's cache key is made of:

- :data:`INPUTS`: the arguments the run is called with (``INPUTS - "debug"``
  leaves the argument ``debug`` out);
- :data:`TASK_SOURCE`: the task's source code (the inputs are ignored: any
  call reuses the entry until the code changes);
- :data:`FLOW_PARAMETERS`: the parameters of the flow run it runs in;
- :data:`RUN_ID`: the id of that flow run (reuse within one flow run only);
- :data:`NONE` (also :data:`NO_CACHE`): no caching at all;
- :data:`DEFAULT`: ``INPUTS + TASK_SOURCE + RUN_ID``, what a task that
  persists its result with no cache option keys on (as in Prefect 3);
- :class:`CacheKeyFnPolicy`: a ``cache_key_fn(context, arguments)`` as a policy.

Policies combine with ``+`` (``INPUTS + TASK_SOURCE`` keys on both). Each
key starts with the task's name, so two tasks never share an entry. Keys
are hashed with Dask's ``tokenize``, like :func:`daskflow.cache.task_input_hash`:
deterministic across processes for pandas, NumPy and Arrow objects and plain
Python values.

A policy is called where the run executes, as ``policy(context, arguments)``,
the same way as a ``cache_key_fn``: the engine treats both alike (a key
that cannot be computed turns caching off for that one run, with a warning).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT",
    "FLOW_PARAMETERS",
    "INPUTS",
    "NONE",
    "NO_CACHE",
    "RUN_ID",
    "TASK_SOURCE",
    "CacheKeyFnPolicy",
    "CachePolicy",
    "CompoundCachePolicy",
    "FlowParameters",
    "Inputs",
    "RunId",
    "TaskSource",
]


class CachePolicy:
    """What a task run's cache key is made of (see the module docstring).

    Subclasses implement :meth:`part`; calling a policy gives the full key.
    """

    def part(self, context: Any, arguments: dict[str, Any]) -> Any:
        """This policy's share of the key (any value ``tokenize`` hashes), or None."""
        raise NotImplementedError

    def __call__(self, context: Any, arguments: dict[str, Any]) -> str | None:
        """The cache key of a run: the task's name and the token of :meth:`part`."""
        import dask
        from dask.base import tokenize

        with dask.config.set({"tokenize.ensure-deterministic": True}):
            part = self.part(context, arguments)
            if part is None:
                return None
            return f"{context.task.name}-{tokenize(type(self).__name__, part)}"

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        if isinstance(other, _NoCache):
            return self
        mine = self.policies if isinstance(self, CompoundCachePolicy) else (self,)
        theirs = other.policies if isinstance(other, CompoundCachePolicy) else (other,)
        return CompoundCachePolicy(tuple(dict.fromkeys((*mine, *theirs))))


@dataclass(frozen=True)
class Inputs(CachePolicy):
    """Keys on the run's arguments, except those named in ``exclude``."""

    exclude: tuple[str, ...] = ()

    def part(self, context: Any, arguments: dict[str, Any]) -> Any:
        if not self.exclude:
            return arguments
        return {k: v for k, v in arguments.items() if k not in self.exclude}

    def __sub__(self, name: str) -> Inputs:
        """The same policy leaving out the argument ``name``."""
        if not isinstance(name, str):
            return NotImplemented
        return Inputs(exclude=(*self.exclude, name))


@dataclass(frozen=True)
class TaskSource(CachePolicy):
    """Keys on the task's source code: editing the task makes new entries."""

    def part(self, context: Any, arguments: dict[str, Any]) -> Any:
        from daskflow.cache import _code_of

        return _code_of(context.task)


@dataclass(frozen=True)
class FlowParameters(CachePolicy):
    """Keys on the parameters of the flow run the task runs in (None outside one)."""

    def part(self, context: Any, arguments: dict[str, Any]) -> Any:
        from daskflow.runtime import flow_run

        return flow_run.parameters


@dataclass(frozen=True)
class RunId(CachePolicy):
    """Keys on the flow run's id: runs reuse entries only within one flow run."""

    def part(self, context: Any, arguments: dict[str, Any]) -> Any:
        return context.flow_run_id


@dataclass(frozen=True)
class CacheKeyFnPolicy(CachePolicy):
    """A ``cache_key_fn(context, arguments) -> str | None`` as a policy."""

    cache_key_fn: Callable[[Any, dict[str, Any]], str | None] | None = None

    def part(self, context: Any, arguments: dict[str, Any]) -> Any:
        if self.cache_key_fn is None:
            return None
        return self.cache_key_fn(context, arguments)


@dataclass(frozen=True)
class CompoundCachePolicy(CachePolicy):
    """Several policies at once (made by ``+``): keys on all of their parts.

    A part that is None is left out; when all are, the run does not cache.
    """

    policies: tuple[CachePolicy, ...] = field(default=())

    def part(self, context: Any, arguments: dict[str, Any]) -> Any:
        parts = [(type(p).__name__, p.part(context, arguments)) for p in self.policies]
        kept = [p for p in parts if p[1] is not None]
        return kept or None

    def __sub__(self, name: str) -> CompoundCachePolicy:
        """The same policy with its :class:`Inputs` leaving out the argument ``name``."""
        return CompoundCachePolicy(
            tuple(p - name if isinstance(p, Inputs) else p for p in self.policies)
        )


class _NoCache(CachePolicy):
    """No caching: :data:`NONE`."""

    def part(self, context: Any, arguments: dict[str, Any]) -> Any:
        return None

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        return other

    def __repr__(self) -> str:
        return "NONE"

    def __reduce__(self) -> str:
        return "NONE"


INPUTS = Inputs()
TASK_SOURCE = TaskSource()
FLOW_PARAMETERS = FlowParameters()
RUN_ID = RunId()
NONE: CachePolicy = _NoCache()
NO_CACHE = NONE  # Prefect 3's name for it
DEFAULT: CachePolicy = INPUTS + TASK_SOURCE + RUN_ID


def caches(policy: CachePolicy | None) -> bool:
    """True when ``policy`` makes keys (it is neither None nor :data:`NONE`)."""
    return policy is not None and not isinstance(policy, _NoCache)


def check(policy: Any) -> CachePolicy | None:
    """``policy`` when it is one; else a ConfigurationError naming what was given."""
    from daskflow.errors import ConfigurationError

    if policy is None or isinstance(policy, CachePolicy):
        return policy
    raise ConfigurationError(
        "cache_policy",
        policy,
        "a policy from daskflow.cache_policies (INPUTS, TASK_SOURCE, FLOW_PARAMETERS, "
        "RUN_ID, NONE, CacheKeyFnPolicy(...)) or several joined with +",
    )

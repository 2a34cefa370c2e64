"""Finding futures in task arguments and turning them into graph edges.

When a flow calls a task, its arguments may hold futures of earlier task
runs, directly or inside lists, tuples, dicts and sets. :func:`build_call`
walks the arguments **once**, on the client, and makes a
:class:`~daskflow.engine.call.CallSpec` template: each future becomes a
:class:`~daskflow.engine.call.Slot` and its run joins the call's upstream
list, which becomes the Dask task's dependencies.

The walk stays cheap for big arguments: it only enters the built-in
containers (exact types) and the fields of dataclasses and pydantic models
(a type known to have fields: one dict lookup per type), never DataFrames,
arrays or other objects, and ``quote(x)`` passes ``x`` without looking
inside at all.

An object (not a plain value or a built-in container) of at least
``daskflow.submit.scatter-threshold`` bytes by ``dask.sizeof`` — a DataFrame
passed from the flow, an array — becomes a :class:`DataSlot`: the backend
sends it to the cluster on its own, once, as Dask's advice to ``scatter``
large objects says, instead of inside the graph (where distributed would warn
"Sending large graph" and send it again with every batch that uses it).

The future classes of the user API subclass :class:`RunRef` (one run) and
:class:`RunGroupRef` (a map's runs), so this layer recognises them without
importing the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from daskflow.engine.call import CallSpec, DataSlot, Fields, ItemSlot, Slot, fields_of, with_fields
from daskflow.engine.runs import TaskRun

__all__ = [
    "RunGroupRef",
    "RunItem",
    "RunRef",
    "Walked",
    "allow_failure",
    "build_call",
    "quote",
    "unmapped",
]

T = TypeVar("T")

_PLAIN = frozenset({int, float, str, bytes, bool, type(None), complex})


class RunRef:
    """Base of objects that stand for one task run's value (``TaskFuture``)."""

    __slots__ = ()
    _run: TaskRun


class RunGroupRef:
    """Base of objects that stand for a list of runs' values (``MappedFuture``)."""

    __slots__ = ()

    def _expanded_runs(self) -> list[TaskRun] | None:
        """The runs, or None while the width is still unknown."""
        raise NotImplementedError

    def _failed_source(self) -> TaskRun | None:
        """A run whose failure kept this group from expanding, if any."""
        return None


class unmapped(Generic[T]):
    """Pass ``value`` whole to every element of a ``.map``.

    Examples
    --------
    >>> add.map([1, 2, 3], unmapped(10))  # doctest: +SKIP
    """

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value


class allow_failure(Generic[T]):
    """Let the downstream task run even if this upstream failed.

    The downstream task then receives the upstream's exception as the value.
    """

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value


class quote(Generic[T]):
    """Pass ``value`` untouched: daskflow does not look inside it for futures."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value


class RunItem:
    """Element ``item`` of one run's value: an element of a map over a future."""

    __slots__ = ("item", "run")

    def __init__(self, run: TaskRun, item: int) -> None:
        self.run = run
        self.item = item


class Walked:
    """An argument walked already (the static arguments of a map, walked once)."""

    __slots__ = ("found", "template")

    def __init__(self, template: Any, found: bool) -> None:
        self.template = template
        self.found = found


class Collector:
    """Gathers the upstream runs of one call while its arguments are walked."""

    __slots__ = ("allowed", "data", "dynamic", "index", "upstream")

    def __init__(self) -> None:
        self.upstream: list[TaskRun] = []
        self.index: dict[tuple[int, bool], int] = {}
        self.dynamic: list[RunGroupRef] = []
        #: positions of runs passed through ``allow_failure`` (in ``wait_for`` too)
        self.allowed: list[int] = []
        #: large arguments, sent to the cluster on their own (:class:`DataSlot`)
        self.data: list[Any] = []

    def copy(self) -> Collector:
        other = Collector()
        other.upstream = list(self.upstream)
        other.index = dict(self.index)
        other.dynamic = list(self.dynamic)
        other.allowed = list(self.allowed)
        other.data = list(self.data)
        return other

    def position(self, run: TaskRun, allow: bool) -> int:
        key = (id(run), allow)
        i = self.index.get(key)
        if i is None:
            i = self.index[key] = len(self.upstream)
            self.upstream.append(run)
            if allow:
                self.allowed.append(i)
        return i

    def slot(self, run: TaskRun, allow: bool) -> Slot:
        return Slot(self.position(run, allow), allow)

    def item_slot(self, run: TaskRun, item: int) -> ItemSlot:
        return ItemSlot(self.position(run, False), item)

    def walk(self, obj: Any, allow: bool = False) -> tuple[Any, bool]:
        """``(template, holds_a_slot)`` for one argument."""
        typ = type(obj)
        if typ in _PLAIN:
            return obj, False
        if typ is Walked:
            return obj.template, obj.found
        if typ is RunItem:
            return self.item_slot(obj.run, obj.item), True
        if isinstance(obj, RunRef):
            if allow:  # passing a failure on deliberately handles it
                obj._run.handled = True
            return self.slot(obj._run, allow), True
        if isinstance(obj, RunGroupRef):
            runs = obj._expanded_runs()
            if runs is None:
                self.dynamic.append(obj)
                return obj, True
            source = obj._failed_source()
            if source is not None:
                self.position(source, allow)
            return [self.slot(r, allow) for r in runs], True
        if typ is allow_failure:
            return self.walk(obj.value, allow=True)
        if typ is quote:
            return obj.value, False
        if typ is unmapped:
            return self.walk(obj.value, allow)
        if typ is list or typ is tuple or typ is set or typ is frozenset:
            items = [self.walk(v, allow) for v in obj]
            if any(found for _, found in items):
                return typ(t for t, _ in items), True
            return obj, False
        if typ is dict:
            pairs = [(k, self.walk(v, allow)) for k, v in obj.items()]
            if any(found for _, (_, found) in pairs):
                return {k: t for k, (t, _) in pairs}, True
            return obj, False
        names = fields_of(typ)
        if names is not None:  # a dataclass or pydantic model: its fields may hold futures
            return self._walk_fields(obj, names, allow)
        if is_large(obj):
            self.data.append(obj)
            return DataSlot(len(self.data) - 1), True
        return obj, False

    def _walk_fields(self, obj: Any, names: tuple[str, ...], allow: bool) -> tuple[Any, bool]:
        templates: dict[str, Any] = {}
        for name in names:
            value = getattr(obj, name, _ABSENT)
            if value is _ABSENT:  # a dataclass field with init=False not set yet
                continue
            template, found = self.walk(value, allow)
            if found:
                templates[name] = template
        if not templates:
            return obj, False
        return Fields(with_fields(obj, templates), tuple(templates)), True


_ABSENT = object()


def is_large(obj: Any) -> bool:
    """At least ``daskflow.submit.scatter-threshold`` bytes, by ``dask.sizeof``."""
    from dask.sizeof import sizeof

    try:
        return sizeof(obj) >= _scatter_threshold()
    except Exception:  # a sizeof that fails: sent inside the graph, as before
        return False


def _scatter_threshold() -> float:
    from dask.utils import parse_bytes

    from daskflow import config

    value = config.get("submit.scatter-threshold", "1MiB")
    return float("inf") if value is None else parse_bytes(value)


def build_call(
    collector: Collector,
    task: Any,
    flow_run_id: str,
    task_run_id: str,
    run_name: str,
    map_index: int | None,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    wait_for: Sequence[Any] | None = None,
) -> tuple[CallSpec, list[TaskRun]]:
    """The spec and upstream runs of one call.

    ``collector`` may already hold upstream runs (the static arguments of a
    map, walked once for all its elements); a direct future argument becomes a
    slot filled without walking, a container holding futures is marked to be
    walked again on the worker.
    """
    nested: set[int | str] = set()
    new_args = []
    for i, arg in enumerate(args):
        template, found = collector.walk(arg)
        if found and not isinstance(template, Slot):
            nested.add(i)
        new_args.append(template)
    new_kwargs = {}
    for name, value in kwargs.items():
        template, found = collector.walk(value)
        if found and not isinstance(template, Slot):
            nested.add(name)
        new_kwargs[name] = template
    for dep in wait_for or ():
        collector.walk(dep)
    spec = CallSpec(
        task=task,
        flow_run_id=flow_run_id,
        task_run_id=task_run_id,
        run_name=run_name,
        map_index=map_index,
        args=tuple(new_args),
        kwargs=new_kwargs,
        nested=frozenset(nested),
        allowed=frozenset(collector.allowed) if collector.allowed else frozenset(),
        data=tuple(collector.data),
    )
    return spec, collector.upstream

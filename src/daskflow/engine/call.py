"""What one task run needs on the worker: the call, with holes for upstream values.

A task call inside a flow may take futures anywhere in its arguments. The graph
layer turns those arguments into a *template* once, on the client: every
future becomes a :class:`Slot` naming its position in the run's flat tuple of
upstream values, and the upstream keys become the Dask task's only
dependencies. On the worker, :meth:`CallSpec.bind` fills the slots back in.
Only the arguments that hold a slot inside a container are walked again; the
common cases (no futures, or a future passed directly) cost nothing.

Dataclasses and pydantic models are containers too (as in Prefect): one whose
fields hold futures travels as :class:`Fields`, a shallow copy with the
slots in those fields, and is copied again on the worker with the values
filled in. Which types have fields is asked once per type (:func:`fields_of`).

:class:`TaskRunInfo` is the read-only view of a task run handed to hooks and
``retry_condition_fn``.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, fields
from itertools import islice
from typing import Any

__all__ = [
    "CallSpec",
    "DataSlot",
    "Fields",
    "FlowRunInfo",
    "ItemSlot",
    "Slot",
    "TaskRunInfo",
    "fields_of",
    "fill_slots",
    "with_fields",
]


class Slot:
    """A hole in an argument template for upstream value number ``index``.

    ``allow_failure`` slots receive the upstream's exception when it failed,
    instead of making the run ``UPSTREAM_FAILED``.
    """

    __slots__ = ("allow_failure", "index")

    def __init__(self, index: int, allow_failure: bool = False) -> None:
        self.index = index
        self.allow_failure = allow_failure

    def fill(self, upstream: Sequence[Any]) -> Any:
        return upstream[self.index]

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.index, self.allow_failure))

    def __repr__(self) -> str:
        return f"Slot({self.index})"


class ItemSlot(Slot):
    """Element ``item`` of upstream value ``index``: one element of a dynamic map."""

    __slots__ = ("item",)

    def __init__(self, index: int, item: int, allow_failure: bool = False) -> None:
        super().__init__(index, allow_failure)
        self.item = item

    def fill(self, upstream: Sequence[Any]) -> Any:
        return nth_item(upstream[self.index], self.item)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.index, self.item, self.allow_failure))


class DataSlot(Slot):
    """A large argument sent to the cluster on its own (``client.scatter``).

    Its value is the ``index``-th value counted from the *end* of the
    upstream values: the backend appends a call's scattered arguments after
    its upstream runs, last first (:attr:`CallSpec.data`), so the position
    does not depend on how many upstream runs the call has.
    """

    __slots__ = ()

    def fill(self, upstream: Sequence[Any]) -> Any:
        return upstream[len(upstream) - 1 - self.index]


def nth_item(value: Any, i: int) -> Any:
    """Element ``i`` of an iterable: by index for sequences, by position otherwise."""
    iloc = getattr(value, "iloc", None)
    if iloc is not None:  # pandas Series: positional, not label, indexing
        return iloc[i]
    try:
        return value[i]
    except (TypeError, KeyError):
        return next(islice(iter(value), i, None))


_FIELDS: dict[type, tuple[str, ...] | None] = {}


def fields_of(typ: type) -> tuple[str, ...] | None:
    """The field names of a dataclass or pydantic model type; None for other types.

    Asked once per type (then a dict lookup); pydantic is only looked at when
    the program imported it already (a model cannot exist otherwise).
    """
    try:
        return _FIELDS[typ]
    except KeyError:
        pass
    names: tuple[str, ...] | None = None
    if dataclasses.is_dataclass(typ):
        names = tuple(f.name for f in dataclasses.fields(typ))
    else:
        pydantic = sys.modules.get("pydantic")
        if pydantic is not None and isinstance(typ, type) and issubclass(typ, pydantic.BaseModel):
            names = tuple(typ.model_fields)  # type: ignore[attr-defined]
    _FIELDS[typ] = names
    return names


def with_fields(obj: Any, values: dict[str, Any]) -> Any:
    """A shallow copy of a dataclass or pydantic model with some fields replaced.

    No ``__init__`` or validation runs: the fields already passed them (frozen
    dataclasses and models included).
    """
    model_copy = getattr(obj, "model_copy", None)
    if model_copy is not None and not dataclasses.is_dataclass(obj):
        return model_copy(update=values)
    new = copy.copy(obj)
    for name, value in values.items():
        object.__setattr__(new, name, value)
    return new


class Fields:
    """A dataclass or pydantic model whose fields ``names`` hold slots.

    ``base`` is a shallow copy of the object with the templates in those
    fields; :meth:`fill` copies it again with the values filled in.
    """

    __slots__ = ("base", "names")

    def __init__(self, base: Any, names: tuple[str, ...]) -> None:
        self.base = base
        self.names = names

    def fill(self, upstream: Sequence[Any]) -> Any:
        base = self.base
        return with_fields(base, {n: fill_slots(getattr(base, n), upstream) for n in self.names})

    def __reduce__(self) -> tuple[Any, ...]:
        return (Fields, (self.base, self.names))


def fill_slots(obj: Any, upstream: Sequence[Any]) -> Any:
    """Rebuild ``obj`` (lists, tuples, dicts, sets, :class:`Fields`) with its slots filled."""
    if isinstance(obj, Slot):
        return obj.fill(upstream)
    typ = type(obj)
    if typ is Fields:
        return obj.fill(upstream)
    if typ is list:
        return [fill_slots(v, upstream) for v in obj]
    if typ is tuple:
        return tuple(fill_slots(v, upstream) for v in obj)
    if typ is dict:
        return {k: fill_slots(v, upstream) for k, v in obj.items()}
    if typ is set or typ is frozenset:
        return typ(fill_slots(v, upstream) for v in obj)
    return obj


@dataclass(slots=True)
class CallSpec:
    """One task run's call, as shipped to the worker inside the Dask task.

    Parameters
    ----------
    task
        The ``Task`` being run (its ``fn``, ``name`` and ``options``).
    flow_run_id, task_run_id
        Ids of the flow run and of this task run.
    run_name
        The task run's display name.
    map_index
        Position in a ``.map``, or None.
    args, kwargs
        Argument templates (may hold :class:`Slot`).
    nested
        Which args (ints) and kwargs (strs) hold a slot *inside* a container
        and must be walked by :func:`fill_slots`; direct slots are filled
        without walking.
    fail_with
        An exception that fails this run at once without calling the task
        (used when a dynamic map could not expand).
    results
        A :class:`~daskflow.engine.caching.ResultPolicy` when results are
        stored, cached or reused; None otherwise (nothing to do).
    reuse
        For a resumed run: ``{"task_run_id": ..., "record": ...}`` of the
        earlier run's stored result.
    flow_name, panel_url
        The flow's name and the run's page in the daskflow panel, for hooks
        (alerts name them); set when the run is submitted.
    limits
        ``(tag, n)`` concurrency limits the run takes a slot of, in order
        (see :mod:`daskflow.engine.limits`).
    allowed
        Positions among the upstream values of runs passed through
        ``allow_failure`` in ``wait_for=[...]`` (they fill no slot): the call
        runs when they failed.
    data
        Large arguments (``daskflow.submit.scatter-threshold``) that
        :class:`DataSlot` stands for, in slot order. Only on the client:
        the distributed backend scatters them and sends the spec without
        them; the values arrive after the upstream values, last first.
    """

    task: Any
    flow_run_id: str
    task_run_id: str
    run_name: str
    map_index: int | None
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    nested: frozenset[int | str] = frozenset()
    fail_with: BaseException | None = None
    results: Any = None
    reuse: dict[str, Any] | None = None
    flow_name: str | None = None
    panel_url: str | None = None
    limits: tuple[tuple[str, int], ...] = ()
    allowed: frozenset[int] = frozenset()
    parent: str | None = None
    data: tuple[Any, ...] = ()  # last: never shipped (see __reduce__)

    def __reduce__(self) -> tuple[Any, ...]:
        # by position, without the defaults at the end: about half the bytes of the
        # dataclass's own pickle (field names), for each task of every graph; the large
        # arguments (``data``) never travel inside the spec, they are scattered
        values = [getattr(self, name) for name in _SHIPPED]
        while len(values) > _REQUIRED and values[-1] == _DEFAULTS[len(values) - 1]:
            values.pop()
        return (CallSpec, tuple(values))

    def bind(self, upstream: Sequence[Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The real ``(args, kwargs)`` once the upstream values are known."""
        if not upstream:
            return self.args, self.kwargs
        nested = self.nested
        args = tuple(
            a.fill(upstream)
            if isinstance(a, Slot)
            else (fill_slots(a, upstream) if i in nested else a)
            for i, a in enumerate(self.args)
        )
        kwargs = {
            k: v.fill(upstream)
            if isinstance(v, Slot)
            else (fill_slots(v, upstream) if k in nested else v)
            for k, v in self.kwargs.items()
        }
        return args, kwargs

    def slots(self) -> list[Slot]:
        """Every slot of the templates (walks them: only for the rare failure path)."""
        found: list[Slot] = []

        def visit(obj: Any) -> None:
            if isinstance(obj, Slot):
                found.append(obj)
            elif type(obj) in (list, tuple, set, frozenset):
                for v in obj:
                    visit(v)
            elif type(obj) is dict:
                for v in obj.values():
                    visit(v)
            elif type(obj) is Fields:
                for name in obj.names:
                    visit(getattr(obj.base, name))

        visit(self.args)
        visit(self.kwargs)
        return found


_SHIPPED = [f.name for f in fields(CallSpec) if f.name != "data"]
_DEFAULTS = [f.default for f in fields(CallSpec) if f.name != "data"]
_REQUIRED = sum(1 for f in fields(CallSpec) if f.default is MISSING)


@dataclass(frozen=True, slots=True)
class TaskRunInfo:
    """A read-only view of a task run, given to hooks and ``retry_condition_fn``."""

    id: str
    name: str
    task_name: str
    flow_run_id: str
    map_index: int | None
    tags: frozenset[str]
    attempt: int
    parameters: dict[str, Any]
    task: Any = None  # the Task itself (``task.fn``, ``task.name``): cache key functions use it
    flow_name: str | None = None
    panel_url: str | None = None  # the flow run's page in the daskflow panel, if served

    @classmethod
    def of(
        cls,
        task: Any,
        run_id: str,
        run_name: str,
        flow_run_id: str,
        map_index: int | None,
        attempt: int,
        parameters: dict[str, Any] | None = None,
        flow_name: str | None = None,
        panel_url: str | None = None,
    ) -> TaskRunInfo:
        """The view of a run of ``task`` (its name and tags come from the task)."""
        return cls(
            run_id,
            run_name,
            task.name,
            flow_run_id,
            map_index,
            task.options.tags,
            attempt,
            parameters or {},
            task,
            flow_name,
            panel_url,
        )


@dataclass(frozen=True, slots=True)
class FlowRunInfo:
    """A read-only view of a flow run, given to flow hooks."""

    id: str
    name: str
    flow_name: str
    parameters: dict[str, Any]
    parent_flow_run_id: str | None
    attempt: int
    panel_url: str | None = None  # the run's page in the daskflow panel, if served

"""Flow parameters: bound to the signature and checked against type hints.

With ``validate_parameters=True`` (the default) the parameters are validated
and coerced with pydantic *before any task runs*, the way Prefect does; a
value that does not fit is a :class:`~daskflow.errors.ParameterValidationError`
naming the parameter and the type it expects, in one line whatever the value
(long values are cut, values whose ``repr`` fails are shown by type).

Each annotated parameter gets its own pydantic ``TypeAdapter``, built once
per flow function and cached (pydantic is imported only when a call passes
an annotated parameter): unlike one model with a field per parameter,
this works for any parameter name (``json``, ``model_config``, ``_private``)
and lets one unresolvable annotation leave only its own parameter unchecked.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Sequence
from typing import Any

from daskflow.errors import ParameterValidationError

__all__ = ["bind_parameters", "cut", "parameter_hints", "shown"]

#: How much of a value a message shows.
_SHOWN = 80


def shown(value: Any, limit: int = _SHOWN) -> str:
    """``repr(value)`` cut to ``limit`` characters, never raising (for messages).

    Examples
    --------
    >>> shown("x" * 200, limit=12)
    "'xxxxxxxxxx…"
    """
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cut(name: str, limit: int = 60) -> str:
    """``name`` cut to ``limit`` characters (a parameter name as an error names it).

    Examples
    --------
    >>> cut("a" * 100, limit=5)
    'aaaa…'
    """
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _one_line(text: str) -> str:
    return " ".join(text.split())


@functools.lru_cache(maxsize=256)
def parameter_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """The resolved type hint of each annotated parameter of ``fn``.

    A hint that cannot be resolved (a forward reference to a name that does
    not exist) is left out: that parameter is not checked.
    """
    try:
        resolved = typing.get_type_hints(fn)
    except Exception:  # one bad annotation: resolve the others one by one
        resolved = {}
        namespace = getattr(fn, "__globals__", {})
        for name, annotation in getattr(fn, "__annotations__", {}).items():
            try:
                resolved[name] = typing.get_type_hints(
                    _Annotated(name, annotation), globalns=namespace
                )[name]
            except Exception:
                continue
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    return {
        name: resolved[name]
        for name, param in parameters.items()
        if name in resolved
        and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
        and not isinstance(resolved[name], str)
    }


class _Annotated:
    """An object with one annotation, for resolving it alone with ``get_type_hints``."""

    def __init__(self, name: str, annotation: Any) -> None:
        self.__annotations__ = {name: annotation}


@functools.lru_cache(maxsize=256)
def _adapters(fn: Callable[..., Any]) -> dict[str, Any]:
    """A pydantic ``TypeAdapter`` per annotated parameter of ``fn``."""
    import pydantic

    config = pydantic.ConfigDict(arbitrary_types_allowed=True)
    adapters: dict[str, Any] = {}
    for name, hint in parameter_hints(fn).items():
        try:
            adapters[name] = pydantic.TypeAdapter(hint, config=config)
        except pydantic.PydanticUserError:
            try:  # a model or dataclass brings its own config
                adapters[name] = pydantic.TypeAdapter(hint)
            except Exception:
                continue
        except Exception:  # a hint pydantic cannot check: leave the value as given
            continue
    return adapters


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _binding_error(
    flow_name: str,
    signature: inspect.Signature,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    exc: TypeError,
) -> ParameterValidationError:
    """The error for arguments that do not bind: it names the parameter at fault."""
    params = signature.parameters
    listed = cut(", ".join(params), 200) or "none"
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    unknown = [
        k
        for k in kwargs
        if k not in params
        or params[k].kind in (params[k].POSITIONAL_ONLY, params[k].VAR_POSITIONAL)
    ]
    if unknown and not takes_any:
        return ParameterValidationError(
            flow_name,
            cut(unknown[0]),
            "a name the flow takes",
            f"no such parameter; the flow's parameters are: {listed}",
        )
    missing = [
        n
        for n, p in params.items()
        if p.default is p.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and n not in kwargs
    ][len(args) :]
    name = missing[0] if missing else "(arguments)"
    return ParameterValidationError(flow_name, name, "a value", _one_line(str(exc)))


def bind_parameters(
    flow_name: str,
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    validate: bool,
) -> inspect.BoundArguments:
    """Bind ``args``/``kwargs`` to ``fn``'s signature, validated and coerced.

    Raises
    ------
    ParameterValidationError
        A missing or unexpected argument, or one that does not fit its hint.
    """
    flow_name = cut(flow_name, 80)  # for messages: a long name would hide the one at fault
    signature = inspect.signature(fn)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise _binding_error(flow_name, signature, args, kwargs, exc) from None
    if validate:
        _validate(flow_name, fn, bound)
    bound.apply_defaults()  # the run records every parameter, defaults included
    return bound


def _validate(flow_name: str, fn: Callable[..., Any], bound: inspect.BoundArguments) -> None:
    """Check and coerce each bound argument that has a type hint, in place."""
    hints = parameter_hints(fn)
    if not any(name in hints for name in bound.arguments):
        return  # nothing to check: pydantic is not even imported
    import pydantic

    adapters = _adapters(fn)
    for name, value in list(bound.arguments.items()):
        adapter = adapters.get(name)
        if adapter is None:
            continue
        try:
            bound.arguments[name] = adapter.validate_python(value)
        except pydantic.ValidationError as exc:
            error = exc.errors()[0]
            where = "".join(f"[{shown(part, 20)}]" for part in error.get("loc", ()))
            detail = f"got {shown(value)}" + (f", at {where}" if where else "")
            raise ParameterValidationError(
                flow_name,
                name,
                _type_name(parameter_hints(fn)[name]),
                f"{detail} ({_one_line(str(error['msg']))})",
            ) from None
        except Exception as exc:  # a validator of the user's type raised something else
            raise ParameterValidationError(
                flow_name,
                name,
                _type_name(parameter_hints(fn)[name]),
                f"got {shown(value)} ({type(exc).__name__}: {_one_line(str(exc))[:200]})",
            ) from None

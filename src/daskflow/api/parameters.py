"""Flow parameters: bound to the signature and checked against type hints.

With ``validate_parameters=True`` (the default) the parameters are validated
and coerced with pydantic *before any task runs*, the way Prefect does; a
value that does not fit is a :class:`~daskflow.errors.ParameterValidationError`
naming the parameter and the type it expects. The pydantic model is built
once per flow function and cached.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Sequence
from typing import Any

from daskflow.errors import ParameterValidationError

__all__ = ["bind_parameters"]


@functools.lru_cache(maxsize=256)
def _model_for(fn: Callable[..., Any]) -> Any:
    """A pydantic model with one field per annotated parameter, or None."""
    import pydantic

    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = getattr(fn, "__annotations__", {})
    fields: dict[str, Any] = {}
    for name, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or name not in hints:
            continue
        default = ... if param.default is param.empty else param.default
        fields[name] = (hints[name], default)
    if not fields:
        return None
    config = pydantic.ConfigDict(arbitrary_types_allowed=True)
    return pydantic.create_model(f"{fn.__name__}_parameters", __config__=config, **fields)


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


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
    signature = inspect.signature(fn)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        missing = [
            n
            for n, p in signature.parameters.items()
            if p.default is p.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            and n not in kwargs
        ][len(args) :]
        name = missing[0] if missing else "(arguments)"
        raise ParameterValidationError(flow_name, name, "a value", str(exc)) from None
    if not validate:
        bound.apply_defaults()
        return bound
    model = _model_for(fn)
    if model is None:
        bound.apply_defaults()
        return bound
    import pydantic

    values = {k: v for k, v in bound.arguments.items() if k in model.model_fields}
    try:
        validated = model.model_validate(values)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error.get("loc") else "(parameters)"
        annotation = model.model_fields[name].annotation if name in model.model_fields else Any
        raise ParameterValidationError(
            flow_name, name, _type_name(annotation), f"got {values.get(name)!r} ({error['msg']})"
        ) from None
    for name in values:
        bound.arguments[name] = getattr(validated, name)
    bound.apply_defaults()  # the run records every parameter, defaults included
    return bound

"""Tracebacks that read like the user's own code.

A task that fails on a worker raises, in the flow, the exception it raised
there: with the worker's frames (tracebacks do not pickle: :func:`ship`
sends their places), the user's files and line numbers, and none of
daskflow's own frames — the attempt wrapper, the runner, ``Flow.__call__``.
Three pieces:

- :func:`prepare_task_traceback`, on the worker when an attempt fails: drops
  daskflow's frames and names the real file of code that was shipped by
  value. cloudpickle sends functions defined in a script's ``__main__`` or a
  notebook cell by value and renames their code's file ``"<dynamic-code>"``;
  the task carries the files its code came from (``Task.code_files``, read
  where it was defined), so the frame says ``etl.py, line 12`` again and,
  where the worker can read that file, shows the line.
- :func:`ship` / :func:`rebuild`: the traceback across the pickle, as
  ``(file, function, line)`` per frame, raised again from stand-in frames.
- :func:`user_frames` at the API's edges (``Flow.__call__``,
  ``.result()``): re-raised with daskflow's frames unlinked, so Python,
  IPython and ``daskflow run`` print the user's frames only;
  :func:`format_exception` does the same for the traceback text kept in
  states and the run store.

Config ``daskflow.internal-frames: true`` keeps daskflow's frames (for
debugging daskflow itself).
"""

from __future__ import annotations

import functools
import itertools
import os
import traceback
from collections.abc import Callable
from pathlib import Path
from types import CodeType, TracebackType
from typing import Any, ParamSpec, TypeVar

__all__ = [
    "code_files",
    "format_exception",
    "hide_internal_frames",
    "prepare_task_traceback",
    "rebuild",
    "ship",
    "user_frames",
]

P = ParamSpec("P")
R = TypeVar("R")

_PACKAGE = str(Path(__file__).resolve().parent) + os.sep
_DYNAMIC = "<dynamic-code>"  # cloudpickle's name for the file of code sent by value


def _is_internal(filename: str) -> bool:
    return filename.startswith(_PACKAGE)


def _hiding() -> bool:
    from daskflow import config

    return not config.get("internal-frames", False)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during, each once."""
    found: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or any(item is seen for seen in found):
            continue
        found.append(item)
        todo += [item.__cause__, item.__context__]
    return found


def _without_internal(tb: TracebackType | None) -> TracebackType | None:
    """The chain of ``tb`` with daskflow's entries unlinked (the entries are reused)."""
    kept = []
    while tb is not None:
        if not _is_internal(tb.tb_frame.f_code.co_filename):
            kept.append(tb)
        tb = tb.tb_next
    for entry, after in itertools.pairwise(kept):
        entry.tb_next = after
    if not kept:
        return None
    kept[-1].tb_next = None
    return kept[0]


def hide_internal_frames(exc: BaseException) -> None:
    """Unlink daskflow's frames from the tracebacks of ``exc`` and its chain.

    Called in an ``except`` block right before a bare ``raise``: the frame
    of that block goes too, as a bare ``raise`` adds no frame.
    """
    if _hiding():
        for item in _chain(exc):
            item.__traceback__ = _without_internal(item.__traceback__)


def user_frames(fn: Callable[P, R]) -> Callable[P, R]:
    """An API entry point whose exceptions show the user's frames only.

    What ``fn`` raises leaves it with daskflow's frames unlinked
    (:func:`hide_internal_frames`), this wrapper's own included.
    """

    @functools.wraps(fn)
    def entry(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except BaseException as exc:
            hide_internal_frames(exc)
            raise

    return entry


def format_exception(exc: BaseException) -> str:
    """``traceback.format_exception(exc)`` without daskflow's frames."""
    summary = traceback.TracebackException.from_exception(exc)
    if _hiding():
        todo: list[traceback.TracebackException | None] = [summary]
        seen: set[int] = set()
        while todo:
            item = todo.pop()
            if item is None or id(item) in seen:
                continue
            seen.add(id(item))
            frames = [f for f in item.stack if not _is_internal(f.filename)]
            item.stack = traceback.StackSummary.from_list(frames)
            todo += [item.__cause__, item.__context__, *(item.exceptions or ())]
    return "".join(summary.format())


def code_files(fn: Any) -> dict[str, str]:
    """``"name:first_line" -> file`` for the code ``fn`` runs that lives in a file.

    The function, the functions and classes' methods of its module it refers
    to by name (recursively), and the code nested in them (inner functions,
    lambdas, comprehensions): what cloudpickle sends along by value.
    """
    files: dict[str, str] = {}
    namespace = getattr(fn, "__globals__", {})
    todo: list[Any] = [getattr(fn, "__code__", None)]
    seen: set[int] = set()
    while todo:
        code = todo.pop()
        if not isinstance(code, CodeType) or id(code) in seen:
            continue
        seen.add(id(code))
        files[f"{code.co_name}:{code.co_firstlineno}"] = code.co_filename
        todo += [c for c in code.co_consts if isinstance(c, CodeType)]
        for name in code.co_names:
            value = namespace.get(name)
            value = getattr(value, "fn", value)  # a Task or Flow: its function
            if isinstance(value, type):
                todo += [getattr(m, "__code__", None) for m in vars(value).values()]
            else:
                todo.append(getattr(value, "__code__", None))
    return {key: path for key, path in files.items() if path != _DYNAMIC}


def prepare_task_traceback(exc: BaseException, files: dict[str, str] | None) -> None:
    """On the worker: the user's frames of a failed attempt, with their real files."""
    if not _hiding():
        return
    tb = _without_internal(exc.__traceback__)
    exc.__traceback__ = tb
    if not files or tb is None:
        return
    frames = []
    renamed = False
    entry: TracebackType | None = tb
    while entry is not None:
        code = entry.tb_frame.f_code
        filename = code.co_filename
        if filename == _DYNAMIC:
            filename = files.get(f"{code.co_name}:{code.co_firstlineno}", filename)
            renamed = renamed or filename != _DYNAMIC
        frames.append((filename, code.co_name, entry.tb_lineno))
        entry = entry.tb_next
    if renamed:
        rebuild(exc, frames)


Frames = list[tuple[str, str, int]]


def ship(tb: TracebackType | None) -> Frames | None:
    """``tb`` as plain data that pickles: ``(file, function, line)`` per frame."""
    frames = []
    while tb is not None:
        code = tb.tb_frame.f_code
        frames.append((code.co_filename, code.co_name, tb.tb_lineno))
        tb = tb.tb_next
    return frames or None


def rebuild(exc: BaseException, frames: Frames | None) -> None:
    """Give ``exc`` a traceback of stand-in frames at the places :func:`ship` listed.

    Each stand-in raises at its file and line, so Python prints that file,
    line, function and source line (where this process can read it)
    exactly as for the original frame.
    """
    if not frames:
        return
    head: TracebackType | None = None
    last: TracebackType | None = None
    for filename, name, lineno in frames:
        entry = _stand_in_frame(filename, name, lineno)
        if entry is None:
            continue
        if last is None:
            head = entry
        else:
            last.tb_next = entry
        last = entry
    exc.__traceback__ = head


class _Raised(Exception):
    """What a stand-in frame raises, to be caught at once."""


def _stand_in_frame(filename: str, name: str, lineno: int) -> TracebackType | None:
    """A traceback entry of a frame of function ``name`` stopped at ``filename:lineno``.

    The statement that raises spans the source line exactly as it reads
    there (indented by an expression statement, its length made up inside
    parentheses), so Python underlines nothing, as for a whole-line error.
    """
    import linecache

    line = linecache.getline(filename, lineno).rstrip()
    stripped = line.lstrip()
    indent = len(line) - len(stripped)
    if indent >= 2 and len(stripped) >= 9:
        statement = "0;" + " " * (indent - 2) + "raise (_" + " " * (len(stripped) - 9) + ")"
    else:
        statement = "raise _"
    try:
        code = compile("\n" * (lineno - 1) + statement, filename, "exec").replace(co_name=name)
        exec(code, {"_": _Raised})
    except _Raised as raised:
        entry = raised.__traceback__
        return entry.tb_next if entry is not None else None
    except Exception:  # a line number Python cannot compile to: leave the frame out
        return None
    return None

"""A recorded traceback as HTML that reads like the user's code.

The run store keeps a failed task run's traceback as the text Python prints.
For runs recorded by this daskflow that text already has the user's frames
only, with their real files (:mod:`daskflow.tracebacks`); older records may
start with daskflow's own frames (the attempt wrapper, the runner) and name
code that was sent by value ``<dynamic-code>``. The view shows, in order:

1. the error (``KeyError: 'amount'``), first, in bold;
2. each frame as ``file, line N, in function`` and its source line, the
   user's frames in full;
3. runs of frames of daskflow, Dask and distributed folded into one line
   ("3 frames of daskflow/Dask") that opens on a click.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from daskflow.tracebacks import _PACKAGE

from .common import escape

__all__ = ["Frame", "is_internal", "parse", "to_html"]

_FRAME = re.compile(r'^\s*File "(?P<file>[^"]*)", line (?P<line>\d+)(?:, in (?P<name>.*))?$')
_INTERNAL = re.compile(
    r"[/\\](site-packages|dist-packages|src)[/\\](daskflow|dask|distributed|tornado|cloudpickle)[/\\]"
)
_DYNAMIC = "<dynamic-code>"
_STYLE = (
    "font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;white-space:pre-wrap;"
    "overflow-wrap:anywhere;margin:0"
)


@dataclass
class Frame:
    """One ``File "...", line N, in name`` entry and the lines printed under it."""

    file: str
    line: int
    name: str
    body: list[str] = field(default_factory=list)

    @property
    def internal(self) -> bool:
        """Whether this is a frame of daskflow, Dask or distributed (folded)."""
        return is_internal(self.file)


def is_internal(filename: str) -> bool:
    """Whether ``filename`` is daskflow's, Dask's or distributed's own code."""
    return filename.startswith(_PACKAGE) or _INTERNAL.search(filename) is not None


def parse(text: str) -> list[Frame | str]:
    """The traceback's lines: a :class:`Frame` per entry, other lines as strings."""
    items: list[Frame | str] = []
    for line in text.rstrip("\n").splitlines():
        match = _FRAME.match(line)
        if match:
            name = match["name"] or "?"
            items.append(Frame(match["file"], int(match["line"]), name))
        elif line.startswith("    ") and items and isinstance(items[-1], Frame):
            items[-1].body.append(line[4:])  # the source line, and carets under it
        else:
            items.append(line)
    return items


def to_html(text: str) -> str:
    """The traceback as HTML: the error first, the user's frames, the rest folded."""
    items = parse(text)
    error = next((i for i in reversed(items) if isinstance(i, str) and i.strip()), "")
    parts = [f"<div style='font-weight:bold;font-size:13px;margin:4px 0'>{escape(error)}</div>"]
    folded: list[Frame] = []
    for item in [*items, ""]:
        if isinstance(item, Frame) and item.internal:
            folded.append(item)
            continue
        if folded:
            parts.append(_fold(folded))
            folded = []
        if isinstance(item, Frame):
            parts.append(_frame(item))
        elif item.strip():
            parts.append(f"<div>{escape(item)}</div>")
    return f"<div style='{_STYLE}'>{''.join(parts)}</div>"


def _frame(frame: Frame) -> str:
    if frame.file == _DYNAMIC:
        where = "code sent by value (its file is unknown)"
    else:
        where = f"<b>{escape(frame.file)}</b>"
    head = f"{where}, line <b>{frame.line}</b>, in {escape(frame.name)}"
    body = "".join(f"<div style='margin-left:2em'>{escape(b)}</div>" for b in frame.body)
    return f"<div style='margin-top:4px'>{head}{body}</div>"


def _fold(frames: list[Frame]) -> str:
    n = len(frames)
    summary = f"{n} frame{'s' if n > 1 else ''} of daskflow/Dask (click to show)"
    inner = "".join(_frame(f) for f in frames)
    return (
        f"<details style='color:#777;margin-top:4px'><summary>{summary}</summary>{inner}</details>"
    )

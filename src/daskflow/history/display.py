"""How run history looks: state colours, durations, the notebook card of a flow run.

Views only (no store access): the card is built from a :class:`FlowRun`, its
per-task counts and its newest artifacts, so showing a run of a million task
runs reads one grouped query, never the task rows. The terminal (``daskflow
runs``, ``daskflow artifacts``) uses the same colours, duration format and
table layout of artifacts (:func:`table_columns`).

Artifacts are shown as what they are: markdown rendered (raw HTML in it
escaped, ``javascript:`` links not linked), tables as tables (the first
:data:`MAX_TABLE_ROWS` rows), a link as a link (web and mail addresses only),
progress as a bar.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from daskflow.states import StateType

if TYPE_CHECKING:
    from daskflow.history.records import Artifact, FlowRun

__all__ = [
    "MAX_TABLE_ROWS",
    "STATE_COLORS",
    "artifact_html",
    "artifact_summary",
    "cell_text",
    "content_html",
    "flow_run_card",
    "format_duration",
    "markdown_html",
    "safe_url",
    "table_columns",
]

#: One colour per state type, shared by the notebook card and the terminal.
STATE_COLORS: dict[StateType, str] = {
    StateType.SCHEDULED: "#8c8c8c",
    StateType.PENDING: "#8c8c8c",
    StateType.RUNNING: "#1f77b4",
    StateType.RETRYING: "#e6a100",
    StateType.COMPLETED: "#2ca02c",
    StateType.CACHED: "#17a2b8",
    StateType.FAILED: "#d62728",
    StateType.TIMED_OUT: "#c2185b",
    StateType.UPSTREAM_FAILED: "#ff7f0e",
    StateType.CRASHED: "#8b0000",
    StateType.CANCELLED: "#6c757d",
}


def safe_url(store: object) -> str:
    """A store's URL (or a URL) without its password, fit for a message."""
    url = store if isinstance(store, str) else getattr(store, "url", "")
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", str(url or "?"))


def format_duration(duration: timedelta | float | None) -> str:
    """A short human duration: ``"850ms"``, ``"12.3s"``, ``"4m 05s"``, ``"2h 03m"``.

    Examples
    --------
    >>> format_duration(timedelta(seconds=245))
    '4m 05s'
    >>> format_duration(None)
    '-'
    """
    if duration is None:
        return "-"
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
    if seconds < 0.01:
        return f"{seconds * 1000:.1f}ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


_BOX = "font-family:system-ui,sans-serif;font-size:13px;border:1px solid #ddd;" \
    "border-radius:6px;padding:8px 12px;max-width:720px"  # fmt: skip
_CELL = "padding:1px 8px;text-align:left;border:none"
_MAX_ROWS = 30


def _badge(state: StateType) -> str:
    color = STATE_COLORS[state]
    return (
        f'<span style="background:{color};color:#fff;border-radius:3px;padding:1px 6px;'
        f'font-size:11px;font-weight:600">{state.value}</span>'
    )


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _short(value: Any, width: int = 80) -> str:
    try:
        return _clip(json.dumps(value, default=repr), width)
    except (TypeError, ValueError):  # e.g. a circular structure
        return _clip(repr(value), width)


def flow_run_card(
    run: FlowRun,
    counts: dict[str, dict[StateType, int]],
    artifacts: Sequence[Artifact] = (),
    truncated: bool = False,
) -> str:
    """The HTML card of ``run``: state badge, times, parameters, a table of ``counts``.

    Then ``artifacts`` (``truncated``: the run has others, not shown).
    """
    e = html.escape
    started = run.start_time.strftime("%Y-%m-%d %H:%M:%S UTC") if run.start_time else "not started"
    parts = [
        f'<div style="{_BOX}">',
        f"<div><b>{e(run.flow_name)}</b> · {e(run.name)} {_badge(run.state.type)}</div>",
        f'<div style="color:#666">id {e(run.id)} · {started} · '
        f"duration {format_duration(run.duration)}</div>",
    ]
    if run.state.message:
        parts.append(f"<div>{e(_clip(run.state.message, 300))}</div>")
    if run.parameters:
        params = list(run.parameters.items())
        cells = "".join(
            f'<tr><td style="{_CELL}"><code>{e(k)}</code></td>'
            f'<td style="{_CELL}"><code>{e(_short(v))}</code></td></tr>'
            for k, v in params[:_MAX_ROWS]
        )
        more = f"<div>… {len(params) - _MAX_ROWS} more</div>" if len(params) > _MAX_ROWS else ""
        parts.append(
            f"<details open><summary>parameters</summary><table>{cells}</table>{more}</details>"
        )
    if counts:
        seen = [t for t in StateType if any(t in c for c in counts.values())]
        head = "".join(f'<th style="{_CELL}">{_badge(t)}</th>' for t in seen)
        body = "".join(
            f'<tr><td style="{_CELL}">{e(name)}</td>'
            f'<td style="{_CELL}">{sum(c.values()):,}</td>'
            + "".join(f'<td style="{_CELL}">{c.get(t, 0):,}</td>' for t in seen)
            + "</tr>"
            for name, c in sorted(counts.items())[:_MAX_ROWS]
        )
        total = sum(sum(c.values()) for c in counts.values())
        more = (
            f"<div>… {len(counts) - _MAX_ROWS} more tasks</div>" if len(counts) > _MAX_ROWS else ""
        )
        parts.append(
            f"<details open><summary>{total:,} task runs</summary><table>"
            f'<tr><th style="{_CELL}">task</th><th style="{_CELL}">total</th>{head}</tr>'
            f"{body}</table>{more}</details>"
        )
    if artifacts:
        shown = "".join(_artifact_block(a) for a in artifacts)
        rest = (
            '<div style="color:#666">… more in <code>run.artifacts</code></div>'
            if truncated
            else ""
        )
        title = f"{len(artifacts)}{'+' * truncated} artifact{'s' * (len(artifacts) > 1)}"
        parts.append(f"<details open><summary>{title}</summary>{shown}{rest}</details>")
    parts.append("</div>")
    return "".join(parts)


# -- artifacts -------------------------------------------------------------------------------
#: At most this many rows of a table artifact in HTML.
MAX_TABLE_ROWS = 30
_SAFE_SCHEMES = frozenset({"http", "https", "mailto", "ftp", ""})


def table_columns(data: Any) -> tuple[list[str], list[list[Any]]]:
    """Column names and rows of a table artifact's data.

    Examples
    --------
    >>> table_columns({"a": [1, 2], "b": ["x", "y"]})
    (['a', 'b'], [[1, 'x'], [2, 'y']])
    >>> table_columns([{"a": 1}, {"a": 2, "b": 3}])
    (['a', 'b'], [[1, None], [2, 3]])
    """
    if isinstance(data, dict):
        columns = [v if isinstance(v, list) else [v] for v in data.values()]
        length = max((len(c) for c in columns), default=0)
        rows = [[c[i] if i < len(c) else None for c in columns] for i in range(length)]
        return [str(name) for name in data], rows
    if isinstance(data, list) and all(isinstance(row, dict) for row in data):
        names = list(dict.fromkeys(name for row in data for name in row))
        return names, [[row.get(name) for name in names] for row in data]
    if isinstance(data, list):  # rows without names
        lists = [row if isinstance(row, list) else [row] for row in data]
        width = max((len(row) for row in lists), default=0)
        return [str(i) for i in range(width)], [row + [None] * (width - len(row)) for row in lists]
    return ["value"], [[data]]


def cell_text(value: Any) -> str:
    """One table cell as text: null empty, strings as they are, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return _short(value, 200)


def artifact_summary(artifact: Artifact) -> str:
    """One short line of an artifact's content (what listings show)."""
    data, kind = artifact.data, artifact.type
    if kind == "markdown" and isinstance(data, str):
        lines = [line.strip().lstrip("#").strip() for line in data.splitlines()]
        return _clip(next((line for line in lines if line), ""), 60)
    if kind == "table":
        names, rows = table_columns(data)
        return f"{_count(len(rows), 'row')}, {_count(len(names), 'column')}"
    if kind == "link" and isinstance(data, dict):
        return _clip(str(data.get("link_text") or data.get("link") or ""), 60)
    if kind == "progress" and isinstance(data, int | float):
        return f"{data:g}%"
    return _short(data, 60)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'s' * (n != 1)}"


def artifact_html(artifact: Artifact) -> str:
    """One artifact in a box of its own (its ``_repr_html_``)."""
    return f'<div style="{_BOX}">{_artifact_block(artifact)}</div>'


def _artifact_block(artifact: Artifact) -> str:
    e = html.escape
    where = f"task {artifact.task_name}" if artifact.task_name else "flow"
    if artifact.flow_run_id is None:
        where = "no run"
    when = artifact.created.strftime("%Y-%m-%d %H:%M:%S UTC")
    head = (
        f"<b>{e(artifact.key or '(no key)')}</b> · {e(artifact.type)}"
        f'<span style="color:#666"> · {e(where)} · {when}</span>'
    )
    about = (
        f'<div style="color:#666">{e(artifact.description)}</div>' if artifact.description else ""
    )
    return (
        f'<div style="margin:6px 0;padding-top:4px;border-top:1px solid #eee">'
        f"<div>{head}</div>{about}{content_html(artifact)}</div>"
    )


def content_html(artifact: Artifact) -> str:
    """An artifact's content as HTML, user text escaped (also the panel's, but for tables)."""
    e = html.escape
    data, kind = artifact.data, artifact.type
    if kind == "markdown" and isinstance(data, str):
        return f"<div>{markdown_html(data)}</div>"
    if kind == "table":
        return _table_html(data)
    if kind == "link" and isinstance(data, dict):
        link = str(data.get("link") or "")
        text = e(str(data.get("link_text") or link))
        if urlsplit(link).scheme.lower() not in _SAFE_SCHEMES:
            return f"<div>{text} <code>{e(link)}</code></div>"
        return (
            f'<div><a href="{e(link)}" target="_blank" rel="noopener noreferrer">{text}</a></div>'
        )
    if kind == "progress" and isinstance(data, int | float):
        width = min(max(float(data), 0.0), 100.0)
        return (
            '<div style="display:flex;align-items:center;gap:8px">'
            '<div style="background:#eee;border-radius:3px;width:240px;height:10px">'
            f'<div style="background:{STATE_COLORS[StateType.RUNNING]};width:{width:.1f}%;'
            f'height:10px;border-radius:3px"></div></div><span>{data:g}%</span></div>'
        )
    return f"<pre>{e(_short(data, 2000))}</pre>"


def _table_html(data: Any) -> str:
    e = html.escape
    names, rows = table_columns(data)
    head = "".join(f'<th style="{_CELL}">{e(name)}</th>' for name in names)
    body = "".join(
        "<tr>" + "".join(f'<td style="{_CELL}">{e(cell_text(v))}</td>' for v in row) + "</tr>"
        for row in rows[:MAX_TABLE_ROWS]
    )
    more = len(rows) - MAX_TABLE_ROWS
    rest = f'<div style="color:#666">… {more:,} more rows</div>' if more > 0 else ""
    return f"<table><tr>{head}</tr>{body}</table>{rest}"


def markdown_html(text: str) -> str:
    """Markdown as HTML, raw HTML in it escaped (markdown-it, which rich brings).

    ``javascript:`` and other unsafe links are left unlinked (markdown-it's
    own check).

    Examples
    --------
    >>> markdown_html("# Load\\n<script>x</script> **12** rows")
    '<h1>Load</h1>\\n<p>&lt;script&gt;x&lt;/script&gt; <strong>12</strong> rows</p>\\n'
    """
    try:
        from markdown_it import MarkdownIt
    except ImportError:  # pragma: no cover - rich depends on it
        return f"<pre>{html.escape(text)}</pre>"
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)

"""How run history looks: state colours, durations, the notebook card of a flow run.

Views only (no store access): the card is built from a :class:`FlowRun` and its
per-task counts, so showing a run of a million task runs reads one grouped
query, never the task rows. The terminal (``daskflow runs``) uses the same
colours and duration format.
"""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from daskflow.states import StateType

if TYPE_CHECKING:
    from daskflow.history.records import FlowRun

__all__ = ["STATE_COLORS", "flow_run_card", "format_duration", "safe_url"]

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
    """A store's URL without its password, fit for a message."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", str(getattr(store, "url", "") or "?"))


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


def flow_run_card(run: FlowRun, counts: dict[str, dict[StateType, int]]) -> str:
    """The HTML card of ``run``: state badge, times, parameters, a table of ``counts``."""
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
    parts.append("</div>")
    return "".join(parts)

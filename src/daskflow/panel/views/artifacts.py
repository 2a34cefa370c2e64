"""The artifacts tab: what the selected flow run published for people to read.

Each artifact (:mod:`daskflow.artifacts`) is a block: its key, type, the
task run that made it (or the flow) and when, its description, then its
content as what it is — markdown rendered to HTML with raw HTML in it
escaped and unsafe links not linked (markdown-it, as the notebook card:
:func:`daskflow.history.display.markdown_html`), a table as a ``DataTable``
(the first :data:`TABLE_ROWS` rows), a link as a link (web and mail
addresses only), progress as a bar. A block is made once per artifact and
only its changed parts are sent again, so a progress bar moves in place
while the run goes.
"""

from __future__ import annotations

from typing import Any

from bokeh.layouts import column
from bokeh.models import ColumnDataSource
from bokeh.models.widgets import DataTable, Div, TableColumn

from daskflow.history.display import artifact_summary, cell_text, content_html, table_columns
from daskflow.history.records import Artifact
from daskflow.panel.artifacts import RunArtifacts

from .common import escape, live_table, sentence, set_data

__all__ = ["TABLE_ROWS", "ArtifactsView"]

#: Rows of a table artifact shown, at most (the first).
TABLE_ROWS = 1_000
_LISTED = ("id", "key", "type", "task", "created", "summary")
_BLOCK = {"border-top": "1px solid #e5e5e5", "padding-top": "6px", "margin-top": "4px"}
_NONE = (
    "This flow run has no artifacts: create_markdown_artifact, create_table_artifact, "
    "create_link_artifact and create_progress_artifact called in its tasks or flow record them."
)


class ArtifactsView:
    """The selected run's artifacts, newest first: the newest version of each key.

    Parameters
    ----------
    artifacts
        The reader of the selected run's artifacts (its ``model`` is the panel's).

    Attributes
    ----------
    source : ColumnDataSource
        One row per artifact shown: ``id``, ``key``, ``type``, ``task`` (the
        task's name, or ``(flow)``), ``created`` and a one-line ``summary``.
    blocks : dict
        ``{artifact id: block}``; a block's ``content`` is a Div, or a
        ``DataTable`` for a table.
    """

    def __init__(self, artifacts: RunArtifacts) -> None:
        self.reader = artifacts
        self.model = artifacts.model
        self.source = ColumnDataSource({k: [] for k in _LISTED})
        self.blocks: dict[str, ArtifactBlock] = {}
        self.note = sentence()
        self.more = sentence()
        # the blocks go between the two sentences (a column of their own would be
        # an empty layout, which Bokeh warns about, while the run has none)
        self.root = column(self.note, self.more, sizing_mode="stretch_width")

    def update(self) -> None:
        shown, more = self.reader.artifacts, self.reader.more
        data: dict[str, list[Any]] = {
            "id": [a.id for a in shown],
            "key": [a.key or "(no key)" for a in shown],
            "type": [a.type for a in shown],
            "task": [a.task_name or "(flow)" for a in shown],
            "created": [a.created for a in shown],
            "summary": [artifact_summary(a) for a in shown],
        }
        set_data(self.source, data)
        blocks = {}
        for artifact in shown:
            block = self.blocks.get(artifact.id)
            if block is None:
                block = ArtifactBlock(artifact)
            else:
                block.update(artifact)
            blocks[artifact.id] = block
        self.blocks = blocks
        children: list[Any] = [self.note, *(block.root for block in blocks.values()), self.more]
        if list(self.root.children) != children:
            self.root.children = children
        text = escape(f"Showing the newest {len(shown)}; the run has more.") if more else ""
        if self.more.text != text:
            self.more.text = text
        if self.more.visible != more:
            self.more.visible = more
        empty = escape(_NONE) if self.model.run is not None and not shown else ""
        if self.note.text != empty:
            self.note.text = empty
        if self.note.visible != bool(empty):
            self.note.visible = bool(empty)


class ArtifactBlock:
    """One artifact: a heading line, its description, and its content.

    Attributes
    ----------
    heading : Div
        Key, type, task run and creation time; the description under them.
    content : Div or DataTable
        The content (a table's rows in ``content.source``).
    """

    def __init__(self, artifact: Artifact) -> None:
        self.heading = Div(text="", sizing_mode="stretch_width")
        self.content: Div | DataTable
        self.rows: ColumnDataSource | None = None  # a table's
        if artifact.type == "table":
            names, _ = table_columns(artifact.data)
            columns = [TableColumn(field=f"c{i}", title=name) for i, name in enumerate(names)]
            source = self.rows = ColumnDataSource({f"c{i}": [] for i in range(len(names))})
            self.content = live_table(
                DataTable(
                    source=source,
                    columns=columns,
                    index_position=None,
                    height=60,
                    sizing_mode="stretch_width",
                )
            )
        else:
            self.content = Div(text="", sizing_mode="stretch_width")
        self.rest = Div(text="", visible=False, styles={"color": "#666"})
        self.root = column(
            self.heading, self.content, self.rest, sizing_mode="stretch_width", styles=_BLOCK
        )
        self.update(artifact)

    def update(self, artifact: Artifact) -> None:
        """Show ``artifact`` (a newer state of the same one: a progress update)."""
        heading = _heading(artifact)
        if self.heading.text != heading:
            self.heading.text = heading
        content = self.content
        if isinstance(content, DataTable) and self.rows is not None:
            names, rows = table_columns(artifact.data)
            data = {
                f"c{i}": [cell_text(row[i]) for row in rows[:TABLE_ROWS]] for i in range(len(names))
            }
            set_data(self.rows, data)
            height = 32 + 25 * min(max(len(rows), 1), 12)  # scrolls past a dozen rows
            if content.height != height:
                content.height = height
            extra = len(rows) - TABLE_ROWS
            rest = escape(f"… {extra:,} more rows, not shown") if extra > 0 else ""
            if self.rest.text != rest:
                self.rest.text = rest
                self.rest.visible = bool(rest)
        elif isinstance(content, Div):
            text = content_html(artifact)
            if content.text != text:
                content.text = text


def _heading(artifact: Artifact) -> str:
    where = "the flow"
    if artifact.task_run_id is not None:
        where = f"task {artifact.task_name or '?'} (task run {artifact.task_run_id[:8]})"
    when = f"{artifact.created:%Y-%m-%d %H:%M:%S} UTC"
    line = (
        f"<b>{escape(artifact.key or '(no key)')}</b>"
        f"<span style='color:#666'> · {escape(artifact.type)} · by {escape(where)} · "
        f"{when}</span>"
    )
    if artifact.description:
        line += f"<div style='color:#555'>{escape(artifact.description)}</div>"
    return line

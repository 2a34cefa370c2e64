"""Flows that create artifacts, for ``tests/test_artifacts.py`` (in-process and by the CLI).

Self-contained, like ``flows.py``: the CLI imports this file by path, and
worker processes import it by name.
"""

from __future__ import annotations

from daskflow import flow, task, unmapped
from daskflow.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)


@task
def summarize(tag: str, part: int) -> int:
    """A markdown artifact per call: the calls of one run form the key's history."""
    create_markdown_artifact(
        f"# Part {part}\n\n**{part * 10}** rows loaded",
        key=f"part-report-{tag}",
        description=f"part {part}",
    )
    return part * 10


@task
def advance(progress_id: str, percent: float) -> None:
    """Updates a progress artifact the flow created (from a worker, on a cluster)."""
    update_progress_artifact(progress_id, percent)


@task
def make_progress(tag: str) -> str:
    """Creates a progress artifact in a task; the flow updates it at once."""
    return create_progress_artifact(0.0, key=f"task-progress-{tag}")


@flow
def report(tag: str = "cli", parts: int = 3) -> int:
    """Artifacts of every type, from the flow function and from its tasks."""
    progress = create_progress_artifact(0.0, key=f"load-progress-{tag}", description="loading")
    rows = summarize.map(unmapped(tag), range(1, parts + 1)).result()
    for done in range(1, parts + 1):
        update_progress_artifact(progress, 100.0 * done / parts)
    advance(progress, 100.0)
    create_table_artifact(
        [{"part": i, "rows": r} for i, r in enumerate(rows, 1)],
        key=f"rows-{tag}",
        description="rows per part",
    )
    create_table_artifact({"name": ["a", "b"], "score": [1.5, None]}, key=f"columns-{tag}")
    create_link_artifact("https://example.com/report", "the report", key=f"link-{tag}")
    create_markdown_artifact("no key: shown with its run only")
    update_progress_artifact(make_progress(tag), 75.0)  # updated where it was not created
    return sum(rows)

"""Artifacts: markdown, tables, links and progress that runs publish for people to read.

Called in a task or a flow, each ``create_*`` function records an artifact
against that run in the run store and returns its id (a UUID string), as
Prefect 3's do::

    create_markdown_artifact(markdown, key=None, description=None)   type "markdown"
    create_table_artifact(table, key=None, description=None)         type "table"
    create_link_artifact(link, link_text=None, key=None, ...)        type "link"
    create_progress_artifact(progress, key=None, description=None)   type "progress"
    update_progress_artifact(artifact_id, progress, description=None)

Artifacts with the same ``key`` form a history (each call adds one; the CLI
and the panel show the latest); a progress artifact is updated in place.
A key is lowercase letters, digits and dashes. Artifacts travel with the
run's events, in batches, from whichever worker made them (see
:mod:`daskflow.engine.run_artifacts`), so creating one costs what a log
record costs. Outside any run an artifact is still recorded, with no run.

Read them with ``run.artifacts`` (:class:`daskflow.FlowRun`),
:func:`read_artifacts`, ``daskflow artifacts list`` and ``daskflow artifacts
show KEY``; a flow run's notebook card shows them too.

What each type stores as ``data`` (JSON):

- markdown: the text;
- table: a list of dicts (the rows; a DataFrame or Arrow table becomes
  one, its index a column when it has a name), a dict of lists
  (the columns) or a list of lists (rows without names), as given, with NaN
  and infinities as null and values JSON cannot hold as text;
- link: ``{"link": ..., "link_text": ...}``;
- progress: a float from 0 to 100 (a value outside is clamped, with a warning).
"""

from __future__ import annotations

import json
import logging
import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time
from typing import Any

from daskflow.engine.run_artifacts import send_created, send_updated
from daskflow.errors import ArtifactError
from daskflow.history import read_artifacts  # reading them back, here as in Prefect

__all__ = [
    "ArtifactError",
    "create_link_artifact",
    "create_markdown_artifact",
    "create_progress_artifact",
    "create_table_artifact",
    "read_artifacts",
    "update_progress_artifact",
]

logger = logging.getLogger("daskflow.artifacts")

_KEY = re.compile(r"[a-z0-9-]+")
#: The longest key (the store's column).
KEY_LENGTH = 255


def create_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> str:
    """Record a markdown artifact against the current task run or flow run.

    Parameters
    ----------
    markdown
        The text, in Markdown.
    key
        Names the artifact's history: lowercase letters, digits and dashes.
        Without a key, the artifact is only shown with its run.
    description
        A line saying what it is.

    Returns
    -------
    str
        The artifact's id (a UUID).

    Raises
    ------
    ArtifactError
        A key with other characters, or ``markdown`` that is not a string.

    Examples
    --------
    >>> @task
    ... def report(rows: int) -> None:
    ...     create_markdown_artifact(f"# Load\\n{rows} rows loaded", key="load-report")
    """
    _check_key(key)
    _check_text(markdown, "markdown", key)
    return _create("markdown", markdown, key, description)


def create_table_artifact(
    table: Any, key: str | None = None, description: str | None = None
) -> str:
    """Record a table artifact against the current task run or flow run.

    Parameters
    ----------
    table
        A list of dicts (rows), a dict of lists (columns), a list of lists
        (rows without column names), or a pandas DataFrame or Arrow table
        (stored as a list of dicts; a named index becomes a column). NaN and
        infinities are stored as null, dates and times as ISO 8601 text,
        values JSON cannot hold as their text.
    key, description
        As for :func:`create_markdown_artifact`.

    Returns
    -------
    str
        The artifact's id (a UUID).

    Raises
    ------
    ArtifactError
        A bad key, a table of another shape, or columns of different lengths.

    Examples
    --------
    >>> @flow
    ... def summary() -> None:
    ...     create_table_artifact(
    ...         [{"region": "eu", "sales": 12.5}, {"region": "us", "sales": 30.0}],
    ...         key="sales-by-region",
    ...     )
    """
    _check_key(key)
    return _create("table", _table(table, key), key, description)


def create_link_artifact(
    link: str,
    link_text: str | None = None,
    key: str | None = None,
    description: str | None = None,
) -> str:
    """Record a link artifact (a URL, and the text to show for it).

    Parameters
    ----------
    link
        The URL.
    link_text
        What to show instead of the URL.
    key, description
        As for :func:`create_markdown_artifact`.

    Returns
    -------
    str
        The artifact's id (a UUID).

    Raises
    ------
    ArtifactError
        A bad key, or a link or link text that is not a string.

    Examples
    --------
    >>> @task
    ... def publish(path: str) -> None:
    ...     create_link_artifact(f"https://reports.example.com/{path}", "the report")
    """
    _check_key(key)
    _check_text(link, "link", key)
    if link_text is not None:
        _check_text(link_text, "link_text", key)
    return _create("link", {"link": link, "link_text": link_text}, key, description)


def create_progress_artifact(
    progress: float, key: str | None = None, description: str | None = None
) -> str:
    """Record a progress artifact: a percentage, updated in place as work goes.

    Parameters
    ----------
    progress
        From 0 to 100 (a value outside is clamped, with a warning).
    key, description
        As for :func:`create_markdown_artifact`.

    Returns
    -------
    str
        The artifact's id: give it to :func:`update_progress_artifact`.

    Raises
    ------
    ArtifactError
        A bad key, or a progress that is not a number.

    Examples
    --------
    >>> @flow
    ... def load(files: list[str]) -> None:
    ...     progress = create_progress_artifact(0.0, key="load-progress")
    ...     for i, name in enumerate(files, 1):
    ...         ...
    ...         update_progress_artifact(progress, 100 * i / len(files))
    """
    _check_key(key)
    return _create("progress", _percent(progress, key), key, description)


def update_progress_artifact(
    artifact_id: str | uuid.UUID, progress: float, description: str | None = None
) -> str:
    """Set a progress artifact's percentage (and its description, when given).

    The artifact is changed in place: its key's history does not grow. It
    may be updated from any task or flow, also one of another run.

    Parameters
    ----------
    artifact_id
        What :func:`create_progress_artifact` returned.
    progress
        From 0 to 100 (a value outside is clamped, with a warning).
    description
        A new description; None keeps the one it has.

    Returns
    -------
    str
        The artifact's id.

    Raises
    ------
    ArtifactError
        An id that is not an artifact id, or a progress that is not a number.

    Examples
    --------
    >>> update_progress_artifact(progress_id, 50.0)  # doctest: +SKIP
    """
    try:
        artifact = str(uuid.UUID(str(artifact_id)))
    except ValueError:
        raise ArtifactError(
            repr(artifact_id), "not an artifact id (give what create_progress_artifact returned)"
        ) from None
    value = _percent(progress, artifact)
    if description is not None:
        _check_text(description, "description", artifact)
    send_updated(artifact, json.dumps(value), description)
    return artifact


# -- checks and encodings ------------------------------------------------------------------
def _create(kind: str, data: Any, key: str | None, description: str | None) -> str:
    """Send a new artifact (its key checked already); its id."""
    if description is not None:
        _check_text(description, "description", key)
    artifact_id = str(uuid.uuid4())
    send_created(artifact_id, key, kind, _dumps(data, key), description)
    return artifact_id


def _subject(key: str | None) -> str:
    return repr(key) if key is not None else "(no key)"


def _check_key(key: str | None) -> None:
    if key is None:
        return
    if not isinstance(key, str):
        raise ArtifactError(repr(key), f"a key is a string, not {type(key).__name__}")
    if not _KEY.fullmatch(key) or len(key) > KEY_LENGTH:
        raise ArtifactError(
            f"key {key!r}",
            "a key is lowercase letters, digits and dashes (at most "
            f"{KEY_LENGTH} of them), such as 'daily-report'",
        )


def _check_text(value: Any, what: str, subject: str | None) -> None:
    if not isinstance(value, str):
        raise ArtifactError(
            _subject(subject), f"{what} must be a string, not {type(value).__name__}"
        )


def _percent(progress: Any, subject: str | None) -> float:
    try:
        if isinstance(progress, bool | str | bytes):
            raise TypeError
        value = float(progress)  # also numpy numbers, Decimal
    except (TypeError, ValueError):
        raise ArtifactError(
            _subject(subject),
            f"progress must be a number from 0 to 100, not {type(progress).__name__}",
        ) from None
    if math.isnan(value):
        raise ArtifactError(_subject(subject), "progress must be a number from 0 to 100, not NaN")
    if not 0.0 <= value <= 100.0:
        clamped = min(max(value, 0.0), 100.0)
        logger.warning(
            "daskflow: progress artifact %s: %g is not from 0 to 100; recorded as %g",
            _subject(subject),
            value,
            clamped,
        )
        value = clamped
    return value


def _table(table: Any, key: str | None) -> Any:
    """The table as lists and dicts (see :func:`create_table_artifact`)."""
    if not isinstance(table, Mapping | Sequence) or isinstance(table, str | bytes):
        frame = _as_frame(table)
        if frame is None:
            raise ArtifactError(
                _subject(key),
                "a table is a list of dicts, a dict of lists, a list of lists or a DataFrame, "
                f"not {type(table).__name__}",
            )
        return _records(frame, key)
    if isinstance(table, Mapping):
        columns = {}
        for name, column in table.items():
            if not _is_list(column):
                raise ArtifactError(
                    _subject(key),
                    f"a table given as a dict maps column names to lists; {name!r} holds "
                    f"{type(column).__name__}",
                )
            columns[str(name)] = list(column)
        lengths = {name: len(column) for name, column in columns.items()}
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"{name} has {n}" for name, n in lengths.items())
            raise ArtifactError(_subject(key), f"the table's columns differ in length ({listed})")
        return columns
    rows = list(table)
    if all(isinstance(row, Mapping) for row in rows):
        return [{str(name): value for name, value in row.items()} for row in rows]
    if all(_is_list(row) for row in rows):
        return [list(row) for row in rows]
    raise ArtifactError(
        _subject(key), "a table given as a list holds dicts (rows with names) or lists (rows)"
    )


def _is_list(value: Any) -> bool:
    """A list, tuple, Series, array...: iterable, but not text nor a mapping."""
    return isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping)


def _as_frame(table: Any) -> Any:
    """A pandas DataFrame for a DataFrame or anything with ``to_pandas`` (Arrow); else None."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        return None
    if isinstance(table, pd.DataFrame):
        return table
    to_pandas = getattr(table, "to_pandas", None)
    if callable(to_pandas):
        frame = to_pandas()
        return frame if isinstance(frame, pd.DataFrame) else None
    return None


def _records(frame: Any, key: str | None) -> list[dict[str, Any]]:
    if any(name is not None for name in frame.index.names):  # a named index is data
        frame = frame.reset_index()
    try:
        text = frame.to_json(orient="records", date_format="iso", default_handler=str)
    except ValueError as exc:  # e.g. columns not unique
        raise ArtifactError(_subject(key), f"the DataFrame cannot be stored ({exc})") from None
    records: list[dict[str, Any]] = json.loads(text)
    return records


def _dumps(data: Any, key: str | None) -> str:
    """``data`` as JSON text: NaN and infinities null, other values as JSON can hold them."""
    try:
        return json.dumps(_plain(data), ensure_ascii=False, allow_nan=False, default=_default)
    except (ValueError, RecursionError) as exc:  # a structure that holds itself
        raise ArtifactError(_subject(key), f"its data cannot be stored as JSON ({exc})") from None


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _default(value: Any) -> Any:
    """What JSON cannot encode as it is: numpy numbers, dates; anything else as text."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    tolist = getattr(value, "tolist", None)  # a numpy number or array
    if callable(tolist):
        try:
            return _plain(tolist())
        except (TypeError, ValueError):
            pass
    if isinstance(value, set | frozenset):
        return [_plain(v) for v in value]
    return str(value)

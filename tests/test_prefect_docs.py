"""Prefect's documentation, run on daskflow: one script per behaviour its pages show.

Each file in ``tests/prefect_docs/`` is our own code following one example of
Prefect 3's documentation, with ``prefect`` imports pointed at the daskflow
module of the same name, and no ``__main__`` guard. It runs as a user runs
it (``python FILE.py`` in a folder of its own, on the default embedded
cluster), and comment lines at its top say what Prefect's page says happens:

``# page: URL``
    The Prefect page the example follows (required).
``# exit: N``
    The exit status (default 0).
``# stdout: REGEX`` / ``# stderr: REGEX``
    Each must match somewhere in that stream (any number of these).

A script that exits 0 must also print nothing but daskflow's own console
lines on stderr: no warning or traceback from a library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.console import foreign_lines, run_python

EXAMPLES = Path(__file__).resolve().parent / "prefect_docs"
_HEADER = re.compile(r"^# (page|exit|stdout|stderr): (.*)$")


@dataclass
class Expected:
    page: str = ""
    exit: int = 0
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


def expected_of(script: Path) -> Expected:
    """What the comment lines at the top of ``script`` expect."""
    expected = Expected()
    for line in script.read_text().splitlines():
        found = _HEADER.match(line)
        if not found:
            if line.startswith("#") or not line.strip():
                continue
            break
        key, value = found.groups()
        if key == "page":
            expected.page = value.strip()
        elif key == "exit":
            expected.exit = int(value)
        else:
            getattr(expected, key).append(value.strip())
    return expected


SCRIPTS = sorted(EXAMPLES.glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_a_prefect_docs_example_does_what_prefects_page_says(tmp_path: Path, script: Path):
    expected = expected_of(script)
    assert expected.page.startswith("https://docs.prefect.io/v3/"), "each example names its page"
    (tmp_path / script.name).write_text(script.read_text())

    result = run_python(tmp_path, script.name)

    assert result.returncode == expected.exit, result.stdout + result.stderr
    for pattern in expected.stdout:
        assert re.search(pattern, result.stdout, re.M), (pattern, result.stdout)
    for pattern in expected.stderr:
        assert re.search(pattern, result.stderr, re.M), (pattern, result.stderr)
    if expected.exit == 0:
        assert foreign_lines(result.stderr) == []

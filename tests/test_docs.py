"""The documentation runs: every ```python block of README.md and docs/*.md.

Each page's blocks are joined into one script (a block may use what an
earlier block of its page defined) and run with ``python page.py`` in a
temporary folder, with the run store, results and journal there and the
live progress off, on the default embedded cluster. A block that genuinely
cannot run (it serves forever, or needs a run id from elsewhere) is preceded
by the line ``<!-- no-run -->``; there are few, and a test keeps them few.

The README's example reads ``s3://sales/<day>.parquet``: its script runs with
a ``sitecustomize`` stand-in on ``PYTHONPATH`` (so worker processes have it
too) that answers ``pandas.read_parquet`` for ``s3://`` paths with a small
frame instead of going to S3.

Also checked: the ``--help`` output shown in ``docs/cli.md`` is what the CLI
prints (``python docs/make_cli_page.py`` rewrites it), and every key of the
shipped ``daskflow.yaml`` is described in ``docs/configuration.md``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
NO_RUN = "<!-- no-run -->"

#: The most no-run blocks all pages together may have (5 of them on docs/clusters.md: a
#: batch system, Kubernetes, a gateway, an account, a CA's certificates).
MAX_NO_RUN = 10

FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)

STAND_IN = '''\
"""Test stand-in: pandas.read_parquet answers s3:// paths with a small frame."""
import pandas as _pd

_read_parquet = _pd.read_parquet


def _read(path, *args, **kwargs):
    if isinstance(path, str) and path.startswith("s3://"):
        return _pd.DataFrame({"amount": [10.0, 20.0, 30.0], "category": ["a", "b", "a"]})
    return _read_parquet(path, *args, **kwargs)


_pd.read_parquet = _read
'''


def python_blocks(page: Path) -> list[tuple[str, bool]]:
    """``(code, runs)`` for each ```python block of ``page``, in order."""
    text = page.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip().splitlines()
        runs = not (before and before[-1].strip() == NO_RUN)
        blocks.append((match.group(1), runs))
    return blocks


def runnable_pages() -> list[Path]:
    return [page for page in PAGES if any(runs for _, runs in python_blocks(page))]


def test_every_page_has_been_found():
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    for name in ("README.md", "docs/index.md", "docs/tutorial.md", "docs/cli.md"):
        assert name in names
    assert len(runnable_pages()) >= 5


def test_no_run_blocks_are_few():
    skipped = [(p.name, code) for p in PAGES for code, runs in python_blocks(p) if not runs]
    assert len(skipped) <= MAX_NO_RUN, skipped


@pytest.mark.timeout(600)
@pytest.mark.parametrize("page", runnable_pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_the_python_blocks_of_the_page_run(page, tmp_path):
    code = "\n\n".join(code for code, runs in python_blocks(page) if runs)
    script = tmp_path / "page.py"
    script.write_text(code, encoding="utf-8")
    env = {
        **os.environ,
        "DASKFLOW_STORE": str(tmp_path / "store.db"),
        "DASKFLOW_RESULTS": str(tmp_path / "results"),
        "DASKFLOW_JOURNAL": str(tmp_path / "journal"),
        "DASKFLOW__PROGRESS": "false",
    }
    if "s3://" in code:
        standins = tmp_path / "standins"
        standins.mkdir()
        (standins / "sitecustomize.py").write_text(STAND_IN, encoding="utf-8")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(standins), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert done.returncode == 0, f"{page.name}:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"


def help_blocks(text: str) -> list[tuple[str, str]]:
    """``(command, shown output)`` of each ``<!-- help: ... -->`` block of docs/cli.md."""
    pattern = re.compile(r"^<!-- help: (.*?) -->\n```text\n(.*?)^```$", re.MULTILINE | re.DOTALL)
    return [(m.group(1).strip(), m.group(2)) for m in pattern.finditer(text)]


def test_the_cli_page_shows_what_help_prints():
    sys.path.insert(0, str(DOCS))
    try:
        from make_cli_page import COMMANDS, help_text
    finally:
        sys.path.remove(str(DOCS))
    shown = dict(help_blocks((DOCS / "cli.md").read_text(encoding="utf-8")))
    assert sorted(shown) == sorted(COMMANDS)
    for command in COMMANDS:
        assert shown[command] == help_text(command), (
            f"docs/cli.md is out of date for `{command}`: run python docs/make_cli_page.py"
        )


def config_keys(tree: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            keys.extend(config_keys(value, f"{name}."))
        else:
            keys.append(name)
    return keys


def test_the_configuration_page_describes_every_key():
    shipped = yaml.safe_load((ROOT / "src" / "daskflow" / "daskflow.yaml").read_text())
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    missing = [key for key in config_keys(shipped["daskflow"]) if f"`{key}`" not in page]
    assert not missing, f"docs/configuration.md does not describe {missing}"


def test_the_site_builds_strict(tmp_path):
    """``mkdocs build --strict`` (as .ci/run does): docstrings and links all resolve."""
    pytest.importorskip("mkdocstrings_handlers.python")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "site" / "reference" / "tasks-and-flows" / "index.html").exists()

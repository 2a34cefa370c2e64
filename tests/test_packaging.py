"""What a user sees of the package itself: its license, and docstrings that stand alone."""

from __future__ import annotations

import importlib.metadata
import inspect
import os
import subprocess
import sys
from pathlib import Path

import daskflow

ROOT = Path(__file__).resolve().parents[1]


def test_every_public_name_documents_itself_without_pointing_elsewhere():
    for name in daskflow.__all__:
        obj = getattr(daskflow, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismodule(obj)):
            continue  # constants
        doc = inspect.getdoc(obj) or ""
        assert doc.strip(), f"daskflow.{name} has no docstring"
        assert "SPEC" not in doc, (
            f"help(daskflow.{name}) sends readers to a file that isn't shipped"
        )


def test_the_task_and_flow_options_are_described_where_help_shows_them():
    for decorator, options in [
        (daskflow.task, ["retries", "retry_delay_seconds", "timeout_seconds", "cache_key_fn"]),
        (daskflow.flow, ["retries", "timeout_seconds", "cluster", "validate_parameters"]),
    ]:
        doc = inspect.getdoc(decorator) or ""
        assert all(f"``{option}``:" in doc or f"``{option}``," in doc for option in options)


def test_the_package_states_its_license():
    metadata = importlib.metadata.metadata("daskflow")
    assert metadata["License-Expression"] == "BSD-3-Clause"
    assert "BSD 3-Clause License" in (ROOT / "LICENSE").read_text()
    assert any(
        c.startswith("Programming Language :: Python :: 3.11")
        for c in metadata.get_all("Classifier") or []
    )


def _plain_flow(cluster: str | None = None) -> str:
    """Script lines: a flow ``plain`` of one task run (no annotation), called once."""
    options = f"(cluster={cluster!r})" if cluster else ""
    return (
        "from daskflow import flow, task\n"
        "@task\n"
        "def inc(x):\n"
        "    return x + 1\n"
        f"@flow{options}\n"
        "def plain(x):\n"  # no annotation: nothing for pydantic to check
        "    return inc(x)\n"
        "assert plain(1) == 2\n"
    )


def _printed(code: str, tmp_path: Path | None = None) -> str:
    """What a new Python process running ``code`` prints: no store, or one in ``tmp_path``."""
    env = {**os.environ, "DASKFLOW_STORE": "none"}
    if tmp_path is not None:
        env["DASKFLOW_STORE"] = str(tmp_path / "runs.db")
        env["DASK_DASKFLOW__JOURNAL"] = str(tmp_path / "journal")
    command = [sys.executable, "-c", code]
    return subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout


def test_importing_daskflow_and_running_a_plain_flow_import_neither_sqlalchemy_nor_pydantic():
    heavy = (
        "import sys, daskflow\n"
        "print(sorted(m for m in ('sqlalchemy', 'pydantic') if m in sys.modules))\n"
    )
    printed = _printed(heavy + _plain_flow("sync") + heavy.split("\n", 1)[1])
    assert printed.split("\n")[:2] == ["[]", "[]"]


def test_a_first_flow_run_imports_only_the_modules_it_runs(tmp_path: Path):
    # a short script pays for every module it imports: a plain flow run loads neither
    # the run history, deployments, transactions, results storage, caching, nor (its
    # output not a terminal) the progress tracker
    code = _plain_flow("sync") + (
        "import sys\n"
        "optional = ('daskflow.history', 'daskflow.api.deployments', 'daskflow.transactions',\n"
        "            'daskflow.engine.caching', 'daskflow.results.storage',\n"
        "            'daskflow.cache_policies', 'daskflow.progress.tracker')\n"
        "print(sorted(m for m in optional if m in sys.modules))\n"
    )
    assert _printed(code, tmp_path).strip() == "[]"


def test_the_embedded_cluster_s_workers_load_what_runs_task_runs_not_the_whole_package(
    tmp_path: Path,
):
    # a worker process starts without daskflow's flow machinery, and imports what runs
    # task runs while the flow starts: also the worker that got no task run
    code = _plain_flow() + (
        "import time\n"
        "from daskflow.engine.cluster import resolve_client\n"
        "def loaded():\n"
        "    import sys\n"
        "    names = ('daskflow.engine.attempt', 'daskflow.api.task', 'daskflow.engine.runner',\n"
        "             'daskflow.api.flow', 'daskflow.history', 'daskflow.store')\n"
        "    return [name for name in names if name in sys.modules]\n"
        "client = resolve_client(None)\n"
        "for _ in range(600):  # each worker imports them in the background\n"
        "    found = client.run(loaded)\n"
        "    if all('daskflow.api.task' in names for names in found.values()):\n"
        "        break\n"
        "    time.sleep(0.05)\n"
        "print(len(found), sorted({tuple(names) for names in found.values()}))\n"
    )
    workers, loaded = _printed(code, tmp_path).strip().split(" ", 1)
    assert int(workers) >= 1
    assert loaded == "[('daskflow.engine.attempt', 'daskflow.api.task')]"

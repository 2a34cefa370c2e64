"""Scripts as people write them: the flow called at module level, no ``__main__`` guard.

Each test writes a script to a file and runs it with ``python`` on the default
embedded cluster (worker processes started by spawn), as a user does.
"""

from __future__ import annotations

import gc
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from daskflow import flow, task
from tests.conftest import poll_for
from tests.console import foreign_lines, run_python
from tests.resources.tasks import inc

ROOT = Path(__file__).resolve().parent.parent


def run_script(folder: Path, source: str, **env: str) -> subprocess.CompletedProcess[str]:
    (folder / "script.py").write_text(source)
    return run_python(folder, "script.py", **env)


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"## Example\n\n```python\n(.*?)```", readme, re.S)
    assert found, "the README has an ## Example section with a python block"
    return found.group(1)


def test_the_readme_example_runs_as_a_script_with_no_guard(tmp_path):
    source = readme_example()
    assert "__main__" not in source  # as written: no guard
    assert "s3://sales/" in source
    for day, amount in (("2024-01-01", [10.0, 20.0]), ("2024-01-02", [30.0])):  # its data
        pd.DataFrame({"amount": amount}).to_parquet(tmp_path / f"{day}.parquet")
    source = source.replace("s3://sales/", f"{tmp_path}/") + "print(f'total={total:.2f}')\n"

    result = run_script(tmp_path, source)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "total=55.20"  # 60 * 0.92
    assert foreign_lines(result.stderr) == []


MARKED_SCRIPT = """
import os
from pathlib import Path
from daskflow import flow, task

with open("module-level-runs.txt", "a") as marker:  # once per run of this file
    marker.write(f"{os.getpid()}\\n")

@task(retries=1)
def double(x: int) -> int:
    flag = Path(f"died-{x}")
    if x == 0 and not flag.exists():  # the first attempt takes its worker down
        flag.write_text("1")
        os._exit(1)
    return 2 * x

@flow
def doubled(n: int) -> int:
    return sum(double.map(range(n)).result())

print(doubled(4))
"""


def test_workers_do_not_run_the_script_again_not_even_a_restarted_one(tmp_path):
    result = run_script(tmp_path, MARKED_SCRIPT)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["12"]
    assert (tmp_path / "died-0").exists()  # a worker died, and its nanny started another
    # the module-level code ran in this process only: not in the two workers, nor
    # in the one started after the death
    assert len((tmp_path / "module-level-runs.txt").read_text().split()) == 1


def test_worker_imports_main_restores_multiprocessing_behaviour(tmp_path):
    guarded = MARKED_SCRIPT.replace(
        "print(doubled(4))", 'if __name__ == "__main__":\n    print(doubled(4))'
    )
    (tmp_path / "died-0").write_text("1")  # no worker dies here

    result = run_script(tmp_path, guarded, DASKFLOW__WORKER_IMPORTS_MAIN="true")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["12"]
    runs = (tmp_path / "module-level-runs.txt").read_text().split()
    assert len(runs) == 3  # this process and each of the two workers (as __mp_main__)


LARGE_ARGUMENT_SCRIPT = """
import numpy as np
import pandas as pd
from daskflow import flow, task, unmapped

@task
def above(df: pd.DataFrame, threshold: int) -> int:
    return int((df["x"] > threshold).sum())

@task
def columns(frames: list) -> int:
    return sum(f.shape[1] for f in frames)

@flow
def count(n: int) -> tuple:
    df = pd.DataFrame({"x": np.arange(n)})  # 40 MB
    mapped = sum(above.map(unmapped(df), [0, 10]).result())
    looped = [above(df, i) for i in range(3)]  # a batch each: the frame goes once
    return mapped, looped, columns([df, df])

print(count(5_000_000))
"""


def test_a_large_dataframe_argument_goes_without_a_large_graph_warning(tmp_path):
    result = run_script(tmp_path, LARGE_ARGUMENT_SCRIPT)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(9999988, [4999999, 4999998, 4999997], 2)"
    assert "large graph" not in result.stderr
    assert foreign_lines(result.stderr) == []


def test_the_same_large_argument_is_sent_once_and_let_go_with_the_object(processes_client):
    @task
    def length(df: pd.DataFrame) -> int:
        return len(df)

    def scattered_frames() -> list[str]:
        return [
            str(key)
            for key in processes_client.run_on_scheduler(
                lambda dask_scheduler: list(dask_scheduler.tasks)
            )
            if str(key).startswith("DataFrame-")
        ]

    held = [pd.DataFrame({"x": np.arange(300_000)})]  # 2.4 MB, alive while held here

    @flow(cluster=processes_client)
    def lengths() -> list[int]:  # not a parameter: run records keep their parameters
        return [length(held[0]) for _ in range(3)]  # three batches, one frame on the cluster

    before = set(scattered_frames())
    assert lengths() == [300_000] * 3
    assert len(set(scattered_frames()) - before) == 1

    held.clear()
    gc.collect()

    @flow(cluster=processes_client)
    def other() -> int:
        return inc(1)

    assert other() == 2  # the next batch forgets frames collected here, and the cluster too
    poll_for(lambda: set(scattered_frames()) - before == set())

"""Make the panel's pictures in ``docs/images/``: real runs, served, shot in Chromium.

Runs, on a two-worker ``LocalCluster``, into a run store in a temporary
folder: a small ETL twice (60 ``extract`` with retries, 60 ``transform``, one
``load``; the second run's ``transform`` fails for part of its input) and a
fan-out of ``--tasks`` task runs (100,000; about a minute) of which one in
5,000 fails. Then it serves the panel with ``daskflow dashboard`` on a free
port, opens each run's page (``?run=ID``) in headless Chromium (Debian's
``chromium`` and ``chromedriver``, as the tests use) at 1400 x 1000 (the
failed run 1400 x 1300, to show its traceback) and saves:

- ``panel.png``: the failed ETL run's overview (progress, failures and the
  traceback of the first one);
- ``panel-big-run.png``: the big run's overview;
- ``panel-big-timeline.png``: the big run's timeline (counts per task name
  and time bin);
- ``panel-graph.png``: the failed ETL run's graph (a node per task name,
  coloured by state, with counts);
- ``panel-big-resources.png``: the big run's worker CPU and memory, as
  recorded with the run.

Then, for the deployments page, it writes a flow file that publishes
artifacts (``daily-report``), serves it as the deployment
``daily-report/daily`` with a real ``daskflow serve`` process (a cron
schedule, on ``cluster="sync"``), asks it for two runs with ``daskflow
deployments run --watch``, and saves:

- ``panel-deployments.png``: the deployments page, with the run form of
  ``daily-report/daily`` open (a value refused under its field);
- ``panel-artifacts.png``: the artifacts tab of the last of those runs
  (markdown, a table, a link and a progress bar).

``--only`` makes only the pictures named (the big run is run only for its
own pictures)::

    python docs/make_panel_image.py [--out docs/images] [--tasks 100000]
    python docs/make_panel_image.py --only panel-deployments.png,panel-artifacts.png
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SIZE = (1400, 1000)
#: The pictures of the ETL and big runs, and those of the deployment.
RUN_PICTURES = (
    "panel.png",
    "panel-big-run.png",
    "panel-big-timeline.png",
    "panel-graph.png",
    "panel-big-resources.png",
)
DEPLOYMENT_PICTURES = ("panel-deployments.png", "panel-artifacts.png")
#: Find elements in Bokeh's shadow roots, and click the tab named arguments[0].
CLICK_TAB = """
function deep(root, selector) {
    let found = [...root.querySelectorAll(selector)];
    for (const e of root.querySelectorAll('*')) {
        if (e.shadowRoot) found = found.concat(deep(e.shadowRoot, selector));
    }
    return found;
}
for (const e of deep(document, '.bk-tab')) {
    if (e.textContent.trim() === arguments[0]) { e.click(); return true; }
}
return false;
"""
#: Click the visible button whose text starts with arguments[0].
CLICK_BUTTON = (
    CLICK_TAB.split("for (const e of deep(document, '.bk-tab'))")[0]
    + """
for (const e of deep(document, '.bk-btn')) {
    if (e.textContent.trim().startsWith(arguments[0]) && !e.disabled) { e.click(); return true; }
}
return false;
"""
)
#: Type arguments[1] into the form's input titled arguments[0]...
FILL = (
    CLICK_TAB.split("for (const e of deep(document, '.bk-tab'))")[0]
    + """
for (const e of deep(document, 'label')) {
    if (!e.textContent.startsWith(arguments[0])) continue;
    const input = e.parentNode.querySelector('input, textarea');
    input.value = arguments[1];
    input.dispatchEvent(new Event('input', {bubbles: true}));
    input.dispatchEvent(new Event('change', {bubbles: true}));
    return true;
}
return false;
"""
)
#: The deployed flow: a report per day, publishing an artifact of each type.
DAILY_REPORT = """
import time

from daskflow import flow, task
from daskflow.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

SALES = {
    "eu": (1204, 48210.5), "us": (2311, 99120.0), "apac": (877, 30544.25), "latam": (412, 9120.0),
}


@task
def region_sales(region: str, day: str) -> dict:
    time.sleep(0.2)
    orders, revenue = SALES.get(region, (0, 0.0))
    return {"region": region, "day": day, "orders": orders, "revenue": revenue}


@task
def publish_table(rows: list, day: str) -> None:
    create_table_artifact(rows, key="sales-by-region", description=f"orders and revenue on {day}")


@flow(name="daily-report")
def daily_report(
    day: str = "2026-01-01", regions: list[str] = ["eu", "us", "apac", "latam"],
    sample: float = 1.0, top: int = 3, dry_run: bool = False,
) -> float:
    progress = create_progress_artifact(0.0, key="report-progress", description="regions read")
    rows = []
    for i, region in enumerate(regions, 1):
        rows.append(region_sales(region, day))
        update_progress_artifact(progress, 100.0 * i / len(regions))
    publish_table(rows, day)
    total = sum(r["revenue"] for r in rows)
    best = sorted(rows, key=lambda r: -r["revenue"])[:top]
    create_markdown_artifact(
        f"# Daily report, {day}\\n\\n"
        f"**{sum(r['orders'] for r in rows):,} orders**, revenue **{total:,.2f} EUR** "
        f"in {len(rows)} regions.\\n\\n"
        + "\\n".join(f"{n}. {r['region']}: {r['revenue']:,.2f}" for n, r in enumerate(best, 1))
        + "\\n\\n> Sampled at " + f"{sample:.0%}" + (", dry run." if dry_run else "."),
        key="daily-summary",
        description="the numbers people ask about",
    )
    create_link_artifact(
        f"https://reports.example.com/daily/{day}", f"the full report for {day}", key="report-link"
    )
    return total
"""


def pipeline_runs(store: Path, tasks: int) -> dict[str, str]:
    """The ETL twice (the second fails) and a fan-out of ``tasks``; their flow-run ids."""
    os.environ["DASKFLOW_STORE"] = str(store)
    os.environ["DASKFLOW__PROGRESS"] = "false"
    from distributed import Client, LocalCluster

    from daskflow import flow, task

    @task(retries=2, retry_delay_seconds=0)
    def extract(day: int) -> list[float]:
        time.sleep(random.uniform(0.02, 0.1))
        return [day * 1.5] * 100

    @task
    def transform(rows: list[float], broken: bool) -> float:
        time.sleep(random.uniform(0.02, 0.08))
        if broken and rows[0] > 60:
            raise ValueError(f"bad rows for value {rows[0]}")
        return sum(rows)

    @task
    def load(totals: list[float]) -> float:
        return sum(totals)

    @flow(name="etl")
    def etl(days: int, broken: bool = False) -> float:
        return load(transform.map(extract.map(range(days)), broken))

    @task
    def validate(record: int) -> int:
        if record % 5_000 == 4_999:
            raise ValueError(f"record {record}: amount is negative")
        return record

    @task
    def score(record: int) -> float:
        return record * 0.5

    @flow(name="score-records")
    def score_records(records: int) -> None:
        half = records // 2
        score.map(range(half))
        validate.map(range(records - half))

    with (
        LocalCluster(n_workers=2, threads_per_worker=2, dashboard_address=":0") as cluster,
        Client(cluster),
    ):
        etl(60)
        etl(60, broken=True, return_state=True)
        score_records(tasks, return_state=True)
    from daskflow.store import open_store

    runs = open_store(str(store)).list_flow_runs(limit=3)
    return {"big": runs[0].id, "failed": runs[1].id}


def screenshots(store: Path, runs: dict[str, str], out: Path, only: set[str]) -> list[Path]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from daskflow.panel.serve import free_port

    port = free_port()
    command = [sys.executable, "-m", "daskflow.cli", "--store", str(store), "dashboard"]
    server = subprocess.Popen([*command, "--port", str(port)])
    shots = [  # the failed run's page a little taller: its first traceback in the picture
        ("panel.png", runs["failed"], "overview", 1300),
        ("panel-big-run.png", runs["big"], "overview", SIZE[1]),
        ("panel-big-timeline.png", runs["big"], "timeline", SIZE[1]),
        ("panel-graph.png", runs["failed"], "graph", SIZE[1]),
        ("panel-big-resources.png", runs["big"], "resources", SIZE[1]),
    ]
    written = []
    try:
        url = f"http://127.0.0.1:{port}/daskflow"
        for _ in range(150):
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                time.sleep(0.2)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        size = f"--window-size={SIZE[0]},{SIZE[1]}"
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", size):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            out.mkdir(parents=True, exist_ok=True)
            for name, run, tab, height in shots:
                if name not in only:
                    continue
                driver.set_window_size(SIZE[0], height)
                driver.get(f"{url}?run={run}")
                time.sleep(4)  # the first refresh and Bokeh's layout
                if not driver.execute_script(CLICK_TAB, tab):
                    raise RuntimeError(f"the page has no tab {tab!r}")
                time.sleep(2)
                driver.save_screenshot(str(out / name))
                written.append(out / name)
        finally:
            driver.quit()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return written


def daskflow_cli(store: Path, *args: str, **popen: Any) -> Any:
    """``daskflow --store STORE ARGS`` in a subprocess (run to its end unless ``popen``)."""
    command = [sys.executable, "-m", "daskflow.cli", "--store", str(store), *args]
    env = {**os.environ, "DASKFLOW__PROGRESS": "false"}
    if popen:
        return subprocess.Popen(command, env=env, **popen)
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True)


def deployment_shots(store: Path, folder: Path, out: Path, only: set[str]) -> list[Path]:
    """Serve ``daily-report/daily``, ask it for two runs, and shoot its pages."""
    source = folder / "report.py"
    source.write_text(DAILY_REPORT)
    log = folder / "serve.log"
    with open(log, "w") as output:
        serving = daskflow_cli(
            store, "serve", f"{source}:daily_report", "--name", "daily", "--cron", "0 6 * * *",
            "--cluster", "sync", stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        for _ in range(600):
            if "takes run requests" in log.read_text():
                break
            if serving.poll() is not None:
                raise RuntimeError(f"daskflow serve stopped:\n{log.read_text()}")
            time.sleep(0.1)
        runs = []
        for day in ("2026-03-01", "2026-03-02"):
            done = daskflow_cli(
                store, "deployments", "run", "daily-report/daily", "-p", f"day={day}", "--watch"
            )
            runs.append(done.stdout.split("id ")[1].split()[0])
        return shots(
            store,
            out,
            [
                ("panel-deployments.png", None, "deployments", 1100, _open_form),
                ("panel-artifacts.png", runs[-1], "artifacts", 1250, None),
            ],
            only,
        )
    finally:
        serving.terminate()
        serving.wait(timeout=60)


def _open_form(driver: Any) -> None:
    """Open the run form and type a value the schema refuses (its error shows)."""
    if not driver.execute_script(CLICK_BUTTON, "Run daily-report/daily"):
        raise RuntimeError("no Run button")
    time.sleep(1)
    driver.execute_script(FILL, "regions:", '"eu, us"')
    time.sleep(0.5)
    driver.execute_script(CLICK_BUTTON, "Start run")
    time.sleep(1.5)


def shots(
    store: Path,
    out: Path,
    wanted: list[tuple[str, str | None, str, int, Callable[[Any], None] | None]],
    only: set[str],
) -> list[Path]:
    """Serve the panel on ``store`` and save each ``(name, run, tab, height, then)`` wanted."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from daskflow.panel.serve import free_port

    port = free_port()
    server = daskflow_cli(store, "dashboard", "--port", str(port), stdout=subprocess.DEVNULL)
    written = []
    try:
        url = f"http://127.0.0.1:{port}/daskflow"
        for _ in range(150):
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                time.sleep(0.2)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            out.mkdir(parents=True, exist_ok=True)
            for name, run, tab, height, then in wanted:
                if name not in only:
                    continue
                driver.set_window_size(SIZE[0], height)
                driver.get(url if run is None else f"{url}?run={run}")
                time.sleep(4)  # the first refresh and Bokeh's layout
                if not driver.execute_script(CLICK_TAB, tab):
                    raise RuntimeError(f"the page has no tab {tab!r}")
                time.sleep(2)
                if then is not None:
                    then(driver)
                driver.save_screenshot(str(out / name))
                written.append(out / name)
        finally:
            driver.quit()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "images")
    parser.add_argument("--tasks", type=int, default=100_000)
    every = ",".join((*RUN_PICTURES, *DEPLOYMENT_PICTURES))
    parser.add_argument("--only", default=every, help=f"pictures to make, of {every}")
    args = parser.parse_args()
    only = set(args.only.split(","))
    unknown = only - {*RUN_PICTURES, *DEPLOYMENT_PICTURES}
    if unknown:
        parser.error(f"no picture {', '.join(sorted(unknown))}; they are {every}")
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "runs.db"
        if only & set(RUN_PICTURES):
            began = time.perf_counter()
            runs = pipeline_runs(store, args.tasks)
            print(f"ran the flows in {time.perf_counter() - began:.0f} s")
            for path in screenshots(store, runs, args.out, only):
                print(f"wrote {path}")
        if only & set(DEPLOYMENT_PICTURES):
            deployed = Path(folder) / "deployed"
            deployed.mkdir()
            for path in deployment_shots(deployed / "runs.db", deployed, args.out, only):
                print(f"wrote {path}")


if __name__ == "__main__":
    main()

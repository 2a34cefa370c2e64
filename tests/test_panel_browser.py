"""The panel in a real browser: ``daskflow dashboard`` driven by headless Chromium.

``.ci/run`` installs Debian's ``chromium`` and ``chromium-driver``; on a
machine without them the test is skipped, except under CI where it fails.
The page is a Bokeh app: its tables are DOM elements, so the test reads the
run, its progress and its failure as text, and keeps screenshots under the
test's temporary folder; with ``DASKFLOW_DOCS_IMAGES=1`` it writes them into
``docs/images/`` instead, for the documentation's panel page::

    DASKFLOW_DOCS_IMAGES=1 python -m pytest tests/test_panel_browser.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import poll_for
from tests.test_cli import FLOWS, daskflow

DOCS_IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI"):
            pytest.fail("Chromium and ChromeDriver are missing (.ci/run installs them)")
        pytest.skip("Chromium and ChromeDriver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1600,1200"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait_for_http(url: str, timeout: float = 30.0, answer: int = 200) -> None:
    """Wait until ``url`` answers with the status ``answer``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError as exc:
            if exc.code == answer:
                return
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def page_text(driver, expected: list[str], timeout: float = 30.0) -> str:
    """The page's text once it shows every string of ``expected`` (or at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        text = driver.find_element("tag name", "body").text
        if all(e in text for e in expected) or time.monotonic() > deadline:
            return text
        time.sleep(0.3)


def screenshot(driver, tmp_path: Path, name: str, height: int | None = None) -> Path:
    """Save the page as ``name``: in docs/images/ with DASKFLOW_DOCS_IMAGES=1, else tmp_path.

    ``height`` resizes the window first (the whole page in one picture).
    """
    folder = DOCS_IMAGES if os.environ.get("DASKFLOW_DOCS_IMAGES") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    if height is not None:
        driver.set_window_size(1600, height)
        time.sleep(1.0)  # Bokeh lays the page out again
    path = folder / name
    driver.save_screenshot(str(path))
    return path


def test_the_panel_shows_runs_progress_and_failures(browser, tmp_path):
    store = tmp_path / "runs.db"
    ok = daskflow("run", f"{FLOWS}:hello", "--cluster", "sync", store=store, cwd=tmp_path)
    failed = daskflow(
        "run", f"{FLOWS}:fails", "-p", "reason=panel test", "--cluster", "sync",
        store=store, cwd=tmp_path,
    )  # fmt: skip
    assert ok.returncode == 0
    assert failed.returncode == 1
    from daskflow.panel.serve import free_port

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daskflow.cli",
            "--store",
            str(store),
            "dashboard",
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/daskflow"
        wait_for_http(url)
        browser.get(url)
        text = page_text(browser, ["hello", "fails", "FAILED", "exploded: panel test"])
        shot = screenshot(browser, tmp_path, "panel-failed-run.png", height=1100)
        assert "hello" in text  # the runs table lists both runs
        assert "fails" in text
        assert "FAILED" in text
        assert "COMPLETED" in text
        assert "exploded: panel test" in text  # the failure, with its message
        assert "explode" in text  # the failed task's name (failures and progress)
        assert shot.stat().st_size > 10_000

        # live: a run recorded while the page is open appears without a reload
        later = daskflow("run", f"{FLOWS}:noisy", "--cluster", "sync", store=store, cwd=tmp_path)
        assert later.returncode == 0
        click_tab(browser, "logs")
        text = wait_shown(browser, ["noisy", "chatty says 2"], absent=("RUNNING",))
        assert "chatty says 2" in text
        assert "RUNNING" not in text  # the row of the run, drawn again as it ended
        assert screenshot(browser, tmp_path, "panel-live-run.png").stat().st_size > 10_000
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_panel_beyond_loopback_works_behind_its_password(browser, tmp_path):
    """Chromium sends the password to the page, its static files and its websocket."""
    from tests.test_panel_auth import PASSWORD, environment, non_loopback_address

    store = tmp_path / "runs.db"
    ok = daskflow("run", f"{FLOWS}:hello", "--cluster", "sync", store=store, cwd=tmp_path)
    assert ok.returncode == 0
    from daskflow.panel.serve import free_port

    host = non_loopback_address()
    port = free_port(host)
    command = [sys.executable, "-m", "daskflow.cli", "--store", str(store), "dashboard"]
    server = subprocess.Popen(
        [*command, "--host", host, "--port", str(port)],
        cwd=tmp_path,
        env=environment(tmp_path, PASSWORD),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        address = "127.0.0.1" if host == "0.0.0.0" else host
        wait_for_http(f"http://{address}:{port}/daskflow", answer=401)  # asks for the password
        browser.get(f"http://daskflow:{PASSWORD.replace(' ', '%20')}@{address}:{port}/daskflow")
        # the runs table is filled through the websocket: it shows only if that got in too
        text = page_text(browser, ["hello", "COMPLETED"])
        assert "hello" in text
        assert "COMPLETED" in text
    finally:
        server.terminate()
        server.wait(timeout=30)


# -- the run page, in the browser ------------------------------------------------------
DEEP = """
function shown(element) {
    return element.checkVisibility({visibilityProperty: true, opacityProperty: true});
}
function deep(root, selector) {
    let found = [...root.querySelectorAll(selector)];
    for (const element of root.querySelectorAll('*')) {
        if (element.shadowRoot) found = found.concat(deep(element.shadowRoot, selector));
    }
    return found;
}
"""


def deep(driver, selector: str, script: str, *args):
    """Run ``script`` (a function body of ``elements``, ``args``) on every element matching
    ``selector``, shadow roots included (Bokeh draws its widgets in shadow DOM)."""
    body = f"{DEEP} const elements = deep(document, arguments[0]); const args = arguments[1];"
    return driver.execute_script(body + script, selector, list(args))


def click_tab(driver, name: str, timeout: float = 30.0) -> None:
    """Open the run page's tab ``name`` (once the page shows it)."""
    deadline = time.monotonic() + timeout
    script = (
        "for (const e of elements) if (e.textContent.trim() === args[0]) { e.click(); return 1; }"
        " return 0;"
    )
    while not deep(driver, ".bk-tab", script, name):
        assert time.monotonic() < deadline, f"no tab {name!r}"
        time.sleep(0.3)


def click_row(driver, text: str, timeout: float = 30.0) -> None:
    """Click the runs table's cell that reads ``text`` (SlickGrid selects its row)."""
    deadline = time.monotonic() + timeout
    script = (
        "for (const e of elements) if (e.textContent.trim() === args[0]) {"
        " e.dispatchEvent(new MouseEvent('click', {bubbles: true, composed: true}));"
        " return 1; } return 0;"
    )
    while not deep(driver, ".slick-cell", script, text):
        assert time.monotonic() < deadline, f"no cell {text!r}"
        time.sleep(0.3)


def clipped(driver) -> list[str]:
    """Texts of the visible table cells and headers shown cut off, if any.

    A cell is cut off when its text is wider than its box; a header when its
    title reaches past its column (less the sort indicator's room).
    """
    cells = deep(
        driver, ".slick-cell",
        "return elements.filter(e => shown(e) && e.scrollWidth > e.clientWidth + 1)"
        ".map(e => e.textContent.trim());",
    )  # fmt: skip
    headers = deep(
        driver, ".slick-column-name",
        "return elements.filter(e => shown(e) && e.getBoundingClientRect().right >"
        " e.parentElement.getBoundingClientRect().right - 12).map(e => e.textContent.trim());",
    )  # fmt: skip
    return cells + headers


def shown_text(driver, selector: str = ".bk-Div, .slick-cell, .slick-header-column") -> str:
    """The text of the visible Divs and table cells (shadow roots included)."""
    texts = deep(
        driver, selector,
        "const text = e => e.shadowRoot ? [...e.shadowRoot.children].filter("
        " c => !['STYLE', 'LINK'].includes(c.tagName)).map(c => c.innerText).join('\\n')"
        " : e.innerText;"
        "return elements.filter(shown).map(text);",
    )  # fmt: skip
    return "\n".join(texts)


def wait_shown(driver, expected: list[str], timeout: float = 30.0, absent: tuple = ()) -> str:
    """The visible text once it holds every string of ``expected`` and none of ``absent``."""
    deadline = time.monotonic() + timeout
    while True:
        text = shown_text(driver)
        done = all(e in text for e in expected) and not any(a in text for a in absent)
        if done or time.monotonic() > deadline:
            return text
        time.sleep(0.3)


class Dashboard:
    """``daskflow dashboard`` on a free port, reading ``store``, in a subprocess."""

    def __init__(self, store: Path, cwd: Path) -> None:
        from daskflow.panel.serve import free_port

        port = free_port()
        command = [sys.executable, "-m", "daskflow.cli", "--store", str(store), "dashboard"]
        self.process = subprocess.Popen(
            [*command, "--port", str(port)], cwd=cwd,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{port}/daskflow"
        wait_for_http(self.url)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def test_the_logs_follow_the_selected_run_also_one_recorded_after_the_page_opened(
    browser, tmp_path
):
    """Runs A and B log as many records (what a table of rows left on screen)."""
    from tests.test_cli import run_id

    def hello(name: str) -> str:
        done = daskflow(
            "run", f"{FLOWS}:hello", "-p", f"name={name}", "--cluster", "sync",
            store=store, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0
        return run_id(done)[:8]  # the id as the runs table shows it

    store = tmp_path / "runs.db"
    a = hello("alice")
    assert daskflow("run", f"{FLOWS}:fails", store=store, cwd=tmp_path).returncode == 1
    dashboard = Dashboard(store, tmp_path)
    try:
        browser.get(dashboard.url)
        click_tab(browser, "logs")
        click_row(browser, a)  # the user picks run A: no longer following the newest
        assert "greeting alice" in wait_shown(browser, ["greeting alice"])
        b = hello("bob")  # run B, recorded after the page opened
        text = wait_shown(browser, [b])  # listed; A stays open
        assert "greeting alice" in text
        click_row(browser, b)
        text = wait_shown(browser, ["greeting bob"], absent=("greeting alice",))
        assert "greeting bob" in text  # B's records ...
        assert "greeting alice" not in text  # ... and no longer A's
        click_row(browser, a)
        text = wait_shown(browser, ["greeting alice"], absent=("greeting bob",))
        assert "greeting alice" in text
        assert "greeting bob" not in text
    finally:
        dashboard.close()


def test_a_runs_row_changes_in_place_as_its_run_ends(browser, tmp_path):
    """A row whose values change (RUNNING, then COMPLETED) is drawn again, no reload.

    The run's events are written to the store as the engine writes them, in
    two steps, so that the page surely shows the run RUNNING first.
    """
    from daskflow.store.sql import SQLStore
    from tests.test_panel_components import finished_run

    store = tmp_path / "runs.db"
    events = finished_run("c" * 32, time.time())
    writer = SQLStore(str(store))
    writer.write(events[:2])  # created, RUNNING
    dashboard = Dashboard(store, tmp_path)
    try:
        browser.get(dashboard.url)
        assert "RUNNING" in wait_shown(browser, ["RUNNING"])
        writer.write(events[2:])  # its task run, then COMPLETED
        text = wait_shown(browser, ["COMPLETED", "1 / 0 / 1"], absent=("RUNNING",))
        assert "1 / 0 / 1" in text  # the row, with its final counts
        assert "RUNNING" not in text
    finally:
        dashboard.close()
        writer.close()


def test_an_alert_names_a_failure_recorded_before_the_page_opened(browser, tmp_path):
    store = tmp_path / "runs.db"
    failed = daskflow(
        "run", f"{FLOWS}:fails", "-p", "reason=while nobody looked", "--cluster", "sync",
        store=store, cwd=tmp_path,
    )  # fmt: skip
    assert failed.returncode == 1
    ok = daskflow("run", f"{FLOWS}:hello", "--cluster", "sync", store=store, cwd=tmp_path)
    assert ok.returncode == 0
    dashboard = Dashboard(store, tmp_path)
    try:
        browser.get(dashboard.url)
        text = wait_shown(browser, ["failed since you last looked"])
        assert "1 flow run failed since you last looked" in text
        assert "exploded: while nobody looked" in text
        links = deep(
            browser, "a", "return elements.map(e => e.getAttribute('href'));"
        )  # the alert links to its run's page
        [link] = [h for h in links if h and h.startswith("?run=")]
        browser.get(dashboard.url + link)
        text = wait_shown(browser, ["fails-", "FAILED", "exploded: while nobody looked"])
        assert "ValueError: exploded: while nobody looked" in text  # the failure, first
        assert "flows.py" in text  # the user's file and line
        deep(browser, ".bk-btn", "for (const e of elements) if (e.textContent.includes("
             "'Mark as seen')) e.click();")  # fmt: skip
        assert "since you last looked" not in wait_shown(
            browser, [], absent=("since you last looked",)
        )
        browser.get(dashboard.url)  # a page opened later: the failure was seen
        text = wait_shown(browser, ["hello"])
        assert "since you last looked" not in text
        seen = Path(f"{store}.panel-seen")
        assert seen.stat().st_mode & 0o077 == 0  # the seen mark, owner-only, beside the store
    finally:
        dashboard.close()


LONG_NAMED = """
from daskflow import flow, task


@task
def score(i: int) -> int:
    return i


@flow(name="feature-scoring-quarterly-report")  # 32 characters, its runs' names 41
def scoring(n: int = 3) -> list[int]:
    return score.map(range(n))
"""


@pytest.mark.parametrize("width", [1280, 1920])
def test_the_layout_shows_ids_dates_and_headers_whole(browser, tmp_path, width):
    store = tmp_path / "runs.db"
    (tmp_path / "scoring.py").write_text(LONG_NAMED)
    runs = [(f"{FLOWS}:hello", []), (f"{FLOWS}:fails", []), ("scoring.py:scoring", ["-p", "n=5"])]
    for flow, params in runs:
        daskflow("run", flow, *params, "--cluster", "sync", store=store, cwd=tmp_path)
    dashboard = Dashboard(store, tmp_path)
    try:
        browser.set_window_size(width, 1000)
        browser.get(dashboard.url)
        text = wait_shown(browser, ["feature-scoring-quarterly-report-", "fails", "hello"])
        assert "feature-scoring-quarterly-report" in text
        assert "task runs: done / failed / all" in text
        assert clipped(browser) == []  # no run name, id, date or header cut off
        for tab in ("timeline", "logs", "parameters", "resources", "overview"):
            click_tab(browser, tab)
            time.sleep(0.5)
            assert clipped(browser) == []
        browser.save_screenshot(str(tmp_path / f"panel-{width}.png"))  # not for the docs
    finally:
        dashboard.close()


def test_empty_states_are_one_sentence(browser, tmp_path):
    store = tmp_path / "runs.db"
    dashboard = Dashboard(store, tmp_path)
    try:
        browser.get(dashboard.url)
        text = wait_shown(browser, ["No flow run is recorded"])
        assert "No flow run is recorded in this run store yet" in text
        ok = daskflow("run", f"{FLOWS}:hello", "--cluster", "sync", store=store, cwd=tmp_path)
        assert ok.returncode == 0
        text = wait_shown(browser, ["No task run failed."])  # not an empty failures table
        assert "task run\tstate" not in text
        click_tab(browser, "resources")
        shown = wait_shown(browser, ["No worker resources"])  # a sync run: none recorded
        assert "No worker resources were recorded for this run" in shown
        canvases = deep(browser, "canvas", "return elements.filter(shown).length;")
        assert canvases == 0  # no empty plots
        click_tab(browser, "parameters")
        assert "name" in wait_shown(browser, ["world"])  # hello's default parameter
    finally:
        dashboard.close()


# -- the deployments page: its run form, against a real serving process -----------------
def fill(driver, label: str, text: str, timeout: float = 30.0) -> None:
    """Type ``text`` into the form's input titled ``label...`` (as a user types it)."""
    script = (
        "for (const e of elements) if (shown(e) && e.textContent.startsWith(args[0])) {"
        " const input = e.parentNode.querySelector('input, textarea');"
        " input.focus(); input.value = args[1];"
        " input.dispatchEvent(new Event('input', {bubbles: true}));"
        " input.dispatchEvent(new Event('change', {bubbles: true})); return 1; } return 0;"
    )
    deadline = time.monotonic() + timeout
    while not deep(driver, "label", script, label, text):
        assert time.monotonic() < deadline, f"no input {label!r}"
        time.sleep(0.3)


def click_button(driver, label: str, timeout: float = 30.0) -> None:
    """Click the visible button whose text starts with ``label``."""
    script = (
        "for (const e of elements) if (shown(e) && e.textContent.trim().startsWith(args[0])"
        " && !e.disabled) { e.click(); return 1; } return 0;"
    )
    deadline = time.monotonic() + timeout
    while not deep(driver, ".bk-btn", script, label):
        assert time.monotonic() < deadline, f"no button {label!r}"
        time.sleep(0.3)


def test_the_run_form_refuses_a_bad_value_then_starts_a_run_a_serving_process_runs(
    browser, tmp_path
):
    """The form of a deployment that ``daskflow serve`` serves: a refused value, then a run."""
    import daskflow
    from daskflow.store.deployments import list_deployments
    from daskflow.store.sql import SQLStore
    from tests.test_deployments import DEPLOYED, Serving

    store = tmp_path / "runs.db"
    SQLStore(str(store)).close()  # created here: the serving process opens an existing store
    server = Serving(
        str(store), tmp_path / "serve.log", f"{DEPLOYED}:nightly_report",
        "--name", "nightly", "--cluster", "sync",
    )  # fmt: skip
    dashboard = None
    try:
        server.wait_ready()
        dashboard = Dashboard(store, tmp_path)
        browser.get(dashboard.url)
        click_tab(browser, "deployments")
        text = wait_shown(browser, ["nightly_report/nightly", "yes"])
        assert "on request only" in text  # no schedule: served on request
        click_button(browser, "Run nightly_report/nightly")
        fill(browser, "day:", "2026-03-04")
        fill(browser, "regions:", '{"eu": 1}')  # an object where a list of texts goes
        click_button(browser, "Start run")
        text = wait_shown(browser, ["parameter 'regions' expects array"])
        assert "The run was not requested" in text
        screenshot(browser, tmp_path, "panel-run-form-refused.png")
        reader = SQLStore(str(store))
        try:
            assert reader.list_flow_runs(limit=None) == []  # nothing requested
            assert sum(d.queued for d in list_deployments(reader)) == 0
        finally:
            reader.close()

        fill(browser, "regions:", '["eu", "us"]')
        fill(browser, "copies:", "2")
        click_button(browser, "Start run")
        text = wait_shown(browser, ["Flow run requested"], absent=("expects array",))
        links = deep(browser, "a", "return elements.map(e => e.getAttribute('href'));")
        [link] = {h for h in links if h and h.startswith("?run=")}  # (also in its last runs)
        flow_run_id = link.removeprefix("?run=")
        assert flow_run_id in text

        def ended() -> bool:
            return daskflow.get_run(flow_run_id, store=str(store)).state.is_final()

        poll_for(ended, timeout=60, interval=0.2)
        run = daskflow.get_run(flow_run_id, store=str(store))
        assert run.state.type.value == "COMPLETED"  # the serving process ran it
        assert run.parameters["regions"] == ["eu", "us"]
        assert run.parameters["copies"] == 2
        browser.get(dashboard.url + link)  # the link opens its run page
        text = wait_shown(browser, ["nightly_report-", "COMPLETED"])
        assert flow_run_id[:8] in text
    finally:
        if dashboard is not None:
            dashboard.close()
        assert server.stop() == 0
    assert "Traceback" not in server.output()

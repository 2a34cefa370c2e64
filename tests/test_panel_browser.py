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
        shot = screenshot(browser, tmp_path, "panel-failed-run.png", height=1900)
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
        assert "noisy" in page_text(browser, ["noisy", "chatty says 2"])
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

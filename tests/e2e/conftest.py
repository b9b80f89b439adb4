"""Fixtures for the browser tests: one Streamlit server and one headless Chromium per session
(test_navigation.py starts a second, short-lived server of its own).

The server runs ``streamlit run app.py`` on a free port of 127.0.0.1 with the dataset and model
stores pointed at the session's temporary store (``isolated_store``), so nothing is written into
the project. The browser is Debian's Chromium driven by Playwright; when /usr/bin/chromium or
Playwright is missing every test here is skipped with the reason. ``playwright install`` is
never run: no browser is downloaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import PROJECT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
EXAMPLE = PROJECT / "examples" / "R990002_Si_XY.txt"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
SERVER_START_SECONDS = 90
# Streamlit renders asynchronously and the machine is slow: waits are generous.
TIMEOUT_MS = 90_000
VIEWPORT = {"width": 1400, "height": 1000}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def _stop(process: subprocess.Popen) -> None:
    """End the server and everything it started (its own process group)."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, or skip the browser tests saying why."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"{CHROMIUM} is missing (scripts/ensure_chromium.sh installs Debian's "
                    "chromium): browser tests skipped")
    pytest.importorskip("playwright.sync_api",
                        reason="Playwright for Python is not installed: browser tests skipped")
    return CHROMIUM


@contextlib.contextmanager
def running_app(store: Path, log_path: Path):
    """Run ``streamlit run app.py`` on a free port of 127.0.0.1 with the stores under
    ``store``; yield its base URL and end it (its whole process group) afterwards."""
    port = _free_port()
    env = dict(os.environ, XRD_DATASETS_DIR=str(store / "datasets"),
               XRD_MODELS_DIR=str(store / "models"), TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "streamlit", "run", "app.py",
               "--server.port", str(port), "--server.address", "127.0.0.1",
               "--server.headless", "true", "--browser.gatherUsageStats", "false",
               # Files edited while the tests run must not rerun or reload the app.
               "--server.fileWatcherType", "none"]
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {process.returncode} before "
                                   f"answering on {url}:\n{_tail(log_path)}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as answer:
                    if answer.read().decode().strip() == "ok":
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not answer {url}/_stcore/health within "
                                   f"{SERVER_START_SECONDS} s:\n{_tail(log_path)}")
            time.sleep(0.5)
        # The port was free a moment ago; make sure the answer came from our own server.
        time.sleep(1.0)
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited after starting:\n{_tail(log_path)}")
        yield url
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def server_url(chromium, isolated_store, tmp_path_factory) -> str:
    """Base URL of the session's app server (stores in the session's temporary store)."""
    with running_app(isolated_store, tmp_path_factory.mktemp("e2e_server") / "streamlit.log") \
            as url:
        yield url


@pytest.fixture(scope="session")
def app_url(server_url, browser) -> str:
    """The app server, once opened at its front page like a user arriving at the app.

    A freshly started server whose first visit is a deep link (/classify) runs that page
    file on its own, outside app.py's navigation, until someone opens "/" (see
    test_navigation.py); the other tests exercise the app as app.py defines it."""
    context = browser.new_context(viewport=dict(VIEWPORT), base_url=server_url)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        open_app_page(page, "/", "xrd-classify")
    finally:
        context.close()
    return server_url


@pytest.fixture(scope="session")
def browser(chromium):
    """One headless Chromium for the whole session."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(chromium), headless=True,
                                              args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def new_page(browser, app_url):
    """Factory of pages, each in its own browser context (its own Streamlit session).

    Uncaught JavaScript errors of any page fail the test at teardown."""
    contexts, errors = [], []

    def make():
        context = browser.new_context(viewport=dict(VIEWPORT), base_url=app_url)
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


@pytest.fixture
def page(new_page):
    """A fresh browser page on the app (its own session)."""
    return new_page()


# ----------------------------------------------------------------------------- helpers

def open_app_page(page, path: str, heading: str) -> None:
    """Load the app at ``path`` and wait until the page's title heading is drawn."""
    page.goto(path)
    page.get_by_role("heading", name=heading, exact=True).first.wait_for()


def assert_no_exception(page) -> None:
    """No Python traceback is shown anywhere on the page."""
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, exceptions.first.inner_text()


def plot_traces(page, selector: str = "body") -> list[list[dict]]:
    """For each drawn Plotly figure inside ``selector``: its traces' type and point count."""
    return page.evaluate(
        """(selector) => Array.from(document.querySelectorAll(
                 selector + ' .js-plotly-plot')).map(gd => (gd._fullData || []).map(trace => {
               const values = trace.z || trace.x || trace.values || trace.y || [];
               return {type: trace.type, points: values.length || 0};
             }))""",
        selector)


def wait_for_plots(page, selector: str = "body", count: int = 1) -> None:
    """Wait until ``count`` Plotly figures inside ``selector`` are drawn with their traces."""
    page.wait_for_function(
        """([selector, count]) => Array.from(document.querySelectorAll(
               selector + ' .js-plotly-plot')).filter(gd => (gd._fullData || []).length > 0)
               .length >= count""", arg=[selector, count])


def screenshot(page, name: str) -> Path:
    """Save the whole page as tests/e2e/screenshots/<name>.png.

    Streamlit scrolls inside its main container, so a full-page screenshot alone only shows
    the viewport: the viewport is stretched to the content's height for the picture."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    height = page.evaluate(
        """() => { const main = document.querySelector('[data-testid="stMain"]');
                   return main ? main.scrollHeight : document.body.scrollHeight; }""")
    size = page.viewport_size or dict(VIEWPORT)
    page.set_viewport_size({"width": size["width"],
                            "height": max(size["height"], min(int(height), 12_000))})
    page.wait_for_timeout(1500)  # let Plotly re-lay out its figures at the new size
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path


def start_training(page, name: str, epochs: int, steps: int, batch: int = 16,
                   hyperparameters: dict | None = None, patience: int | None = None) -> None:
    """Fill the Training page's form for a tiny run on the bundled dataset and start it.

    `patience` sets the early-stopping patience, for runs that must not end on their own."""
    from playwright.sync_api import expect

    open_app_page(page, "/training", "Training")
    page.get_by_role("heading", name="New run").wait_for()
    # Each committed field reruns the page; the page keeps values typed during a rerun
    # (tests/pages/test_training.py checks that), so the order here does not matter.
    page.get_by_text("Split and advanced settings").click()
    area = page.get_by_role("textbox", name="Builder hyperparameters (JSON)", exact=True)
    area.fill(json.dumps(hyperparameters or {"width": 8, "dense_units": 32}))
    area.press("Control+Enter")
    area.blur()
    if patience is not None:
        box = page.get_by_label("Early-stopping patience (epochs)", exact=True)
        box.fill(str(patience))
        box.press("Enter")
        expect(box).to_have_value(str(patience))
    for label, value in (("Run name", name), ("Epochs", epochs), ("Batches per epoch", steps),
                         ("Batch size", batch)):
        box = page.get_by_label(label, exact=True)
        box.fill(str(value))
        box.press("Enter")
        expect(box).to_have_value(str(value))
    page.get_by_role("button", name="Train", exact=True).click()
    feedback = page.locator('[data-testid="stAlert"]').filter(
        has_text=re.compile(r"Started run|Cannot start training|still running"))
    expect(feedback.first).to_be_visible()
    expect(feedback.first).to_contain_text(f"Started run '{name}'.")


def upload(page, files) -> None:
    """Give files to the page's (first) file uploader."""
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(
        [str(path) for path in files])


def top_five_table(page):
    """The classify page's ranked space groups of the detailed file (rank … probability)."""
    # The grid is drawn on a canvas; its cells exist as the canvas's accessible fallback.
    return page.locator('[data-testid="stDataFrame"]').filter(
        has=page.locator('[role="columnheader"]', has_text=re.compile(r"^\s*rank\s*$")))


def check_top_five(page) -> None:
    """The top-5 table lists ranks 1–5 with falling probabilities, beside its bar chart."""
    from playwright.sync_api import expect

    table = top_five_table(page)
    expect(table).to_be_visible()
    cells = table.locator('[role="gridcell"]')
    expect(cells).to_have_count(25)
    values = cells.all_text_contents()
    assert values[0::5] == ["1", "2", "3", "4", "5"], values
    probabilities = [float(value) for value in values[4::5]]
    assert all(0.0 <= p <= 1.0 for p in probabilities), probabilities
    assert probabilities == sorted(probabilities, reverse=True), probabilities
    wait_for_plots(page, ".st-key-detail_groups")
    traces = plot_traces(page, ".st-key-detail_groups")
    assert traces and any(trace["type"] == "bar" and trace["points"] == 5
                          for trace in traces[0]), traces


# The number of epochs drawn in the Training page's loss figure (0 while none is drawn).
LOSS_EPOCHS_JS = """() => Math.max(0, ...Array.from(document.querySelectorAll('.js-plotly-plot'))
    .filter(gd => /Loss/.test((gd.layout && gd.layout.title && gd.layout.title.text) || ''))
    .flatMap(gd => (gd._fullData || []).map(trace => (trace.x || []).length)))"""


def wait_for_loss_epochs(page, epochs: int, timeout_ms: int = 180_000) -> None:
    """Wait until the Training page's loss figure holds at least ``epochs`` points."""
    page.wait_for_function(f"() => ({LOSS_EPOCHS_JS})() >= {epochs}", timeout=timeout_ms)


"""The whole appliance in a real browser: Airflow, Streamlit and S3 started the way the image starts them.

* Airflow (PostgreSQL, api-server, scheduler, dag-processor) from tests/airflow_harness.py, synced to a
  bucket of a moto S3 server (tests/conftest.py);
* the UI password made by ``python -m dataperf_appliance.access`` (the entrypoint's step) and read from
  the file it names;
* Streamlit as the image runs it, ``scripts/service.sh streamlit``, with the same environment;
* Debian's chromium (scripts/install-browser.sh) driven by Playwright's sync API.

The browser logs in, fills the form (one task, 100 training points), runs it, follows it to success and
sees the curve image and the metrics table; a second run with another model gives the Compare page two
runs; a third pass with an invalid value sees the error, and Airflow gets no DAG run for it. Every page is
photographed into docs/images/, the pictures of docs/tutorial.md.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_harness import AirflowStack, airflow_stack  # noqa: F401 - fixture

from conftest import REPO_ROOT, free_port, wait_for_http
from dataperf_appliance import airflow_gateway as gateway

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
IMAGES = REPO_ROOT / "docs" / "images"
RUN_TIMEOUT_MS = 240_000
WIDTH = 1400


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed by scripts/install-browser.sh when it is missing."""
    subprocess.run([str(REPO_ROOT / "scripts" / "install-browser.sh")], check=True, timeout=900)
    assert os.access(CHROMIUM, os.X_OK)
    return CHROMIUM


class App:
    """The Streamlit app of an appliance: its address, its password and its process."""

    def __init__(self, url: str, password: str, process: subprocess.Popen, log: Path) -> None:
        self.url, self.password, self.process, self.log = url, password, process, log

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def appliance(airflow_stack: AirflowStack) -> Iterator[App]:  # noqa: F811 - the fixture
    """Streamlit beside the test Airflow, with the environment the image gives it."""
    env = {**airflow_stack.base_env, "APPLIANCE_UI_PORT": str(free_port()), "APPLIANCE_UI_HOST": "127.0.0.1"}
    env.pop("APPLIANCE_UI_PASSWORD", None)
    out = subprocess.run([sys.executable, "-m", "dataperf_appliance.access"], env=env, capture_output=True,
                         text=True, check=True, cwd=REPO_ROOT)
    password_file = Path(out.stdout.strip())
    assert password_file.is_file() and password_file.stat().st_mode & 0o077 == 0
    log = airflow_stack.logs_dir / "streamlit.log"
    service = REPO_ROOT / "scripts" / "service.sh"
    command = [str(service), "streamlit"] if os.access(service, os.X_OK) else [
        sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "ui" / "server.py"), "--server.port",
        env["APPLIANCE_UI_PORT"], "--server.address", "127.0.0.1", "--server.headless", "true"]
    with open(log, "ab") as sink:
        process = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=sink, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    app = App(f"http://127.0.0.1:{env['APPLIANCE_UI_PORT']}", password_file.read_text().strip(), process, log)
    try:
        wait_for_http(f"{app.url}/_stcore/health", timeout_s=90)
        yield app
    finally:
        app.stop()


@pytest.fixture(scope="module")
def page(appliance: App, chromium: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": WIDTH, "height": 1000}, device_scale_factor=1)
        context.set_default_timeout(30_000)
        tab = context.new_page()
        try:
            yield tab
        finally:
            browser.close()


# ---- helpers --------------------------------------------------------------------------------------

def settle(page, quiet_ms: int = 600) -> None:
    """Wait until the app has finished running its script (no 'Running...' indicator for a moment)."""
    page.wait_for_timeout(200)
    page.wait_for_function(
        "() => { const w = document.querySelector('[data-testid=\"stStatusWidget\"]');"
        " return !w || !/Running|Connecting/.test(w.innerText); }", timeout=60_000)
    page.wait_for_timeout(quiet_ms)


def shot(page, name: str, *, whole: bool = True) -> None:
    """Save a screenshot to docs/images/<name>.png; `whole`: the full height of the page's content."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    settle(page)
    if whole:
        height = page.evaluate("() => { const m = document.querySelector('[data-testid=\"stMain\"]');"
                               " return m ? m.scrollHeight : document.body.scrollHeight; }")
        page.set_viewport_size({"width": WIDTH, "height": max(800, min(int(height) + 40, 4000))})
        page.wait_for_timeout(700)
    page.screenshot(path=str(IMAGES / f"{name}.png"))
    page.set_viewport_size({"width": WIDTH, "height": 1000})


def nav(page, name: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name, exact=True).click()
    page.get_by_role("heading", level=1).first.wait_for()
    settle(page)


def set_number(page, label: str, value) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")
    settle(page, 300)


def choose(page, label: str, values: list[str]) -> None:
    """Make a multiselect hold exactly `values`."""
    box = page.get_by_test_id("stMultiSelect").filter(has_text=label)
    remove = box.locator("button[aria-label^='Remove ']")
    while remove.count():
        remove.first.click()
        settle(page, 300)
    for value in values:
        box.locator("input").click()
        box.locator("input").fill(value)
        page.get_by_role("option", name=option_name(value)).click()
        settle(page, 300)
    page.keyboard.press("Escape")


def option_name(value: str) -> re.Pattern:
    """An option as the form shows it: its value, alone or followed by what it is (a model's description)."""
    return re.compile(f"^{re.escape(value)}(: .*)?$")


def select(page, label: str, value: str) -> None:
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option_name(value)).click()
    settle(page, 300)


def cells(where, text: str) -> int:
    """How many cells of the data grids in `where` hold exactly `text` (once the grids have drawn their cells)."""
    where.locator("[role=gridcell]").first.wait_for(state="attached")
    return where.locator("[role=gridcell]").filter(has_text=re.compile(f"^{re.escape(text)}$")).count()


def run_form(page, model: str) -> str:
    """Fill the New benchmark form (one task, 100 training points), click Run; the new run's id."""
    nav(page, "New benchmark")
    select(page, "Model", model)
    set_number(page, "Training size", 100)
    set_number(page, "Validation size", 40)
    set_number(page, "Test size", 100)
    choose(page, "Tasks", ["digit-3"])
    choose(page, "Strategies", ["random", "knn_shapley", "loss"])
    preview = page.get_by_test_id("stCode").first.inner_text()
    assert "train_size: 100" in preview and f"model: {model}" in preview
    assert page.get_by_text("Valid: ready to run.").is_visible()
    return preview


def click_run(page) -> str:
    page.get_by_role("button", name="Run benchmark").click()
    page.wait_for_url("**/run?run=*", timeout=60_000)
    return page.url.split("run=", 1)[1]


def wait_for_success(page, run_id: str) -> None:
    page.get_by_role("heading", name="Metrics").wait_for(timeout=RUN_TIMEOUT_MS)
    settle(page)
    assert gateway.get_run(run_id).state == "success"


# ---- the test --------------------------------------------------------------------------------------

def test_the_appliance_in_a_browser(page, appliance: App, airflow_stack: AirflowStack, tmp_path):  # noqa: F811
    started = time.monotonic()
    earlier = {run.run_id for run in gateway.list_recent_runs(limit=1000)}  # other modules' runs, if any
    page.goto(appliance.url)
    page.get_by_label("Password", exact=True).wait_for()
    shot(page, "01-login", whole=False)
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Wrong password.").wait_for()
    page.get_by_label("Password", exact=True).fill(appliance.password)
    page.get_by_role("button", name="Log in").click()
    # The login gate's page is not Streamlit's: after it the app loads from scratch.
    page.get_by_role("heading", name="New benchmark").wait_for(timeout=120_000)
    assert appliance.password not in page.content()

    # A first run: the form, Run, its progress, then its metrics and plots.
    run_form(page, "logistic_regression")
    shot(page, "02-new-benchmark")
    first = click_run(page)
    page.get_by_role("heading", name=f"Run {first}").wait_for()
    page.get_by_text(re.compile(r"Running: [1-9] of \d+ steps done")).first.wait_for(timeout=90_000)
    shot(page, "03-run-in-progress", whole=False)

    # A second one with another model, started while the first runs.
    run_form(page, "knn")
    second = click_run(page)
    nav(page, "Runs")
    shot(page, "04-runs-in-flight", whole=False)

    page.goto(f"{appliance.url}/run?run={first}")  # a link to a run: a new session, logged in by the gate's cookie
    page.get_by_role("heading", name=f"Run {first}").wait_for(timeout=120_000)
    wait_for_success(page, first)
    curve = page.get_by_test_id("stImage").filter(has_text="digit-3 fixing curve").locator("img")
    curve.scroll_into_view_if_needed()
    assert curve.evaluate("img => img.complete && img.naturalWidth > 300")
    grid = page.get_by_test_id("stDataFrame").first
    assert cells(grid, "knn_shapley") >= 1 and cells(grid, "digit-3") >= 1
    assert grid.locator("[role=columnheader]", has_text="fraction_fixes").count() == 1
    shot(page, "05-run-results")
    page.get_by_role("tab", name="Gallery").click()
    shot(page, "06-run-gallery", whole=False)
    page.get_by_role("tab", name="Results").click()

    page.goto(f"{appliance.url}/run?run={second}")  # logged in by the gate's cookie again
    page.get_by_role("heading", name=f"Run {second}").wait_for(timeout=120_000)
    wait_for_success(page, second)

    # An invalid value: the field is named, Run stays disabled, no DAG run is made.
    nav(page, "New benchmark")
    set_number(page, "Noise level", 2)
    error = page.get_by_test_id("stAlertContentError").filter(has_text="noise_level")
    error.first.wait_for()
    assert "Noise level" in error.first.inner_text()
    assert page.get_by_role("button", name="Run benchmark").is_disabled()
    shot(page, "07-invalid-value")
    page.get_by_role("button", name="Run benchmark").click(force=True)
    settle(page)
    assert "/run?" not in page.url
    assert {run.run_id for run in gateway.list_recent_runs(limit=1000)} - earlier == {first, second}
    set_number(page, "Noise level", 0.3)

    # Every run, then the two side by side.
    nav(page, "Runs")
    assert cells(page, first) == 1 and cells(page, second) == 1
    shot(page, "08-runs", whole=False)
    nav(page, "Compare")
    page.get_by_role("heading", name="Parameters that differ").wait_for()
    assert cells(page, "knn") >= 1
    page.get_by_test_id("stVegaLiteChart").first.wait_for()
    shot(page, "09-compare")

    # Datasets: a bad upload is refused with the reason.
    nav(page, "Datasets")
    bad = tmp_path / "my-dataset.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("my-dataset/embeddings/task1_train_0.3_100.parquet", b"not parquet")
    buffer = io.BytesIO(bad.read_bytes())
    page.get_by_label("Name", exact=True).fill("my-dataset")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
        files=[{"name": bad.name, "mimeType": "application/zip", "buffer": buffer.getvalue()}])
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Check and store").click()
    page.get_by_text("Refused").wait_for()
    assert not (airflow_stack.data_dir / "datasets" / "my-dataset").exists()
    shot(page, "10-datasets")
    assert time.monotonic() - started < 300

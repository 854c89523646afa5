"""The whole appliance in a real browser: Airflow, Streamlit and S3 started the way the image starts them.

* Airflow (PostgreSQL, api-server, scheduler, dag-processor) from tests/airflow_harness.py, synced to a
  bucket of a moto S3 server (tests/conftest.py);
* the UI password made by ``python -m dataperf_appliance.interface.access`` (the entrypoint's step) and read from
  the file it names;
* Streamlit as the image runs it, ``scripts/runtime/service.sh streamlit``, with the same environment;
* Debian's chromium (scripts/dev/install-browser.sh) driven by Playwright's sync API.

The browser logs in, fills the form (one task, 100 training points), runs it, follows it to success and
sees the metrics table and every plot readable (each image at least `MIN_PLOT_PX` wide on a 1280 px page,
each method its own colour, the same as figure_style's); a second run, a sweep over two models, gives the
Compare page two runs (a setting chosen for the sweep) and the Runs page a sweep; a third pass with an
invalid value sees the error, and Airflow gets no DAG run for it. A dataset is uploaded, offers its own
tasks in the form, and is deleted on disk and in S3. Every page is photographed at 1280 px (and the result
pages at 1920 px) into docs/images/, the pictures of docs/tutorial.md.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_harness import TEST_BUCKET, TEST_PREFIX, AirflowStack, airflow_stack  # noqa: F401 - fixture

import layout_checks
from conftest import REPO_ROOT, free_port, wait_for_http
from dataperf_appliance.orchestration import airflow_gateway as gateway
from dataperf_appliance.engine import figure_style

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
IMAGES = REPO_ROOT / "docs" / "images"
RUN_TIMEOUT_MS = 240_000
WIDTH, WIDE = 1280, 1920
#: A plot narrower than this on a 1280 px page is not readable (issue 15).
MIN_PLOT_PX = 600


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed by scripts/dev/install-browser.sh when it is missing."""
    subprocess.run([str(REPO_ROOT / "scripts" / "dev" / "install-browser.sh")], check=True, timeout=900)
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
    out = subprocess.run([sys.executable, "-m", "dataperf_appliance.interface.access"], env=env, capture_output=True,
                         text=True, check=True, cwd=REPO_ROOT)
    password_file = Path(out.stdout.strip())
    assert password_file.is_file() and password_file.stat().st_mode & 0o077 == 0
    log = airflow_stack.logs_dir / "streamlit.log"
    service = REPO_ROOT / "scripts" / "runtime" / "service.sh"
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


def shot(page, name: str, *, whole: bool = True, width: int = WIDTH) -> None:
    """Save a screenshot to docs/images/<name>.png (``<name>-1920.png`` at another width); `whole`: the full
    height of the page's content."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    if width != WIDTH:
        page.set_viewport_size({"width": width, "height": 1000})
    settle(page)
    if whole:
        height = page.evaluate("() => { const m = document.querySelector('[data-testid=\"stMain\"]');"
                               " return m ? m.scrollHeight : document.body.scrollHeight; }")
        page.set_viewport_size({"width": width, "height": max(800, min(int(height) + 40, 4000))})
        page.wait_for_timeout(700)
    page.screenshot(path=str(IMAGES / (f"{name}.png" if width == WIDTH else f"{name}-{width}.png")))
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
    page.get_by_text("Valid: ready to run.").wait_for()  # the app has checked the last change
    preview = page.get_by_test_id("stCode").first.inner_text()
    assert "train_size: 100" in preview and f"model: {model}" in preview
    return preview


def run_sweep_form(page, models: list[str]) -> str:
    """The form as a sweep over `models` (one task, 100 training points); the preview."""
    nav(page, "New benchmark")
    page.get_by_text("Sweep: several models or sizes at once").click()
    settle(page)
    choose(page, "Model", models)
    set_number(page, "Training size", 100)
    choose(page, "Tasks", ["digit-3"])
    choose(page, "Strategies", ["random", "knn_shapley", "loss"])
    page.get_by_text("Valid: ready to run.").wait_for()
    preview = page.get_by_test_id("stCode").first.inner_text()
    assert all(model in preview for model in models)
    # The Run button is in view without scrolling past the preview.
    assert page.get_by_role("button", name="Run benchmark").bounding_box()["y"] < 1000
    return preview


def check_layout(page, where: str) -> None:
    """Nothing on the page is clipped or overflows at 1280 px (tests/layout_checks.py)."""
    settle(page)
    found = {kind: items for kind, items in layout_checks.problems(page).items() if items}
    assert not found, f"{where}: {found}"


def check_plots(page, plots_dir: Path) -> dict[str, int]:
    """In the run's Plots tab: every tab fits the page; each of its plots drawn at least MIN_PLOT_PX wide (a
    1280 px page), with its download, and its smallest text at least layout_checks.MIN_FIGURE_TEXT_PX as
    shown; {tab name: how many plots it shows}."""
    page.get_by_role("tab", name="Plots", exact=True).click()
    settle(page)
    tabs = page.get_by_test_id("stTabs").nth(1).get_by_role("tab")
    names = [tabs.nth(i).inner_text().strip() for i in range(tabs.count())]
    assert names, "no plot tabs"
    shown = {}
    for index, name in enumerate(names):
        tabs.nth(index).click()
        settle(page, 300)
        images = page.get_by_test_id("stImage").locator("img:visible")
        images.first.wait_for()
        for i in range(images.count()):
            width = images.nth(i).evaluate("img => img.complete ? img.getBoundingClientRect().width : 0")
            assert width >= MIN_PLOT_PX, f"a plot of {name} is drawn {width:.0f} px wide on a {WIDTH} px page"
        assert page.locator("[data-testid=stDownloadButton] button:visible").filter(
            has_text=re.compile(r"Download .*\.png")).count() == images.count()
        small = layout_checks.small_figure_text(page, sorted(plots_dir.glob("*.png")), figure_style.smallest_font_px)
        assert not small, f"{name}: text under {layout_checks.MIN_FIGURE_TEXT_PX} px as shown: {small}"
        check_layout(page, f"plots tab {name}")
        shown[name] = images.count()
    assert sum(shown.values()) == len([p for p in plots_dir.glob("*.png") if "gallery" not in p.name])
    return shown


def method_pixels(png: Path, methods: list[str]) -> dict[str, int]:
    """How many pixels of the picture have exactly each method's colour (figure_style's)."""
    import numpy as np
    from matplotlib import image as mpimg

    pixels = (mpimg.imread(png)[..., :3] * 255).round().astype(int)
    colours = figure_style.method_colors(methods)
    assert len(set(colours.values())) == len(methods), f"two methods share a colour: {colours}"
    counts = {}
    for method, colour in colours.items():
        rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
        counts[method] = int(np.all(pixels == rgb, axis=-1).sum())
    return counts


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
    earlier = {run.run_id for run in gateway.list_recent_runs(limit=1000)}  # other modules' runs, if any
    page.goto(appliance.url)
    page.get_by_label("Password", exact=True).wait_for()
    shot(page, "01-login", whole=False)
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Wrong password.").wait_for()
    # A failure bars this address for a second: at once, even the right password is told to wait.
    page.get_by_label("Password", exact=True).fill(appliance.password)
    page.get_by_role("button", name="Log in").click()
    barred = page.get_by_text("Too many failed logins from your address")
    barred.wait_for()
    wait_s = int(re.search(r"try again in (\d+) s", barred.inner_text()).group(1))
    page.wait_for_timeout(wait_s * 1000 + 250)
    page.get_by_label("Password", exact=True).fill(appliance.password)
    page.get_by_role("button", name="Log in").click()
    # The login gate's page is not Streamlit's: after it the app loads from scratch.
    page.get_by_role("heading", name="New benchmark").wait_for(timeout=120_000)
    assert appliance.password not in page.content()

    # A first run: the form, Run, its progress, then its metrics and plots.
    run_form(page, "logistic_regression")
    check_layout(page, "New benchmark")
    shot(page, "02-new-benchmark")
    first = click_run(page)
    page.get_by_role("heading", name=f"Run {first}").wait_for()
    page.get_by_text(re.compile(r"Running: [1-9] of \d+ steps done")).first.wait_for(timeout=90_000)
    shot(page, "03-run-in-progress", whole=False)

    # A second one, a sweep over two models, started while the first runs.
    run_sweep_form(page, ["logistic_regression", "knn"])
    second = click_run(page)
    nav(page, "Runs")
    shot(page, "04-runs-in-flight", whole=False)

    page.goto(f"{appliance.url}/run?run={first}")  # a link to a run: a new session, logged in by the gate's cookie
    page.get_by_role("heading", name=f"Run {first}").wait_for(timeout=120_000)
    wait_for_success(page, first)
    grid = page.get_by_test_id("stDataFrame").first
    assert cells(grid, "knn_shapley") >= 1 and cells(grid, "digit-3") >= 1
    assert grid.locator("[role=columnheader]", has_text="fraction_fixes").count() == 1
    # Every method in the headline, its metric with its direction.
    page.get_by_text("fraction_fixes ↓ (lower is better)").wait_for()
    for method in ("random", "knn_shapley", "loss"):
        assert page.get_by_test_id("stMetric").filter(has_text=re.compile(f"^{method}")).count() == 1
    check_layout(page, "a run's results")
    shot(page, "05-run-results")
    shot(page, "05-run-results", width=WIDE)
    first_plots = airflow_stack.data_dir / "runs" / first / "plots"
    names = check_plots(page, first_plots)
    assert {"Fixing curves", "Cost", "vs random"} <= set(names)
    shot(page, "05b-run-plots", whole=False)
    # Each method its own colour, the same in the curves and in the cost scatter (issue 15: knn_shapley was
    # blue in one and orange in the other).
    for picture in ("digit-3_fixing_curve.png", "fraction_fixes_vs_time.png"):
        counts = method_pixels(first_plots / picture, ["random", "knn_shapley", "loss"])
        assert all(count >= 20 for count in counts.values()), (picture, counts)
    page.get_by_role("tab", name="Gallery").click()
    settle(page)
    assert not layout_checks.small_figure_text(page, sorted(first_plots.glob("*gallery.png")),
                                               figure_style.smallest_font_px)
    check_layout(page, "a run's gallery")
    shot(page, "06-run-gallery", whole=False)
    page.get_by_role("tab", name="task_setup.yml").click()
    check_layout(page, "a run's task_setup.yml")
    page.get_by_role("tab", name="Files").click()
    settle(page)
    run_files = [p for p in (airflow_stack.data_dir / "runs" / first).rglob("*") if p.is_file()]
    downloads = page.locator("[data-testid=stDownloadButton] button:visible").filter(
        has_text=re.compile("Download$"))
    internal = [p for p in run_files if p.parent.name == "partial"]
    assert internal and downloads.count() == len(run_files) - len(internal)  # the hand-over files folded away
    page.get_by_test_id("stExpander").filter(has_text="Internal: the stages' hand-over").click()
    settle(page, 300)
    assert downloads.count() == len(run_files)  # one per file
    check_layout(page, "a run's files")
    page.get_by_role("tab", name="Results").click()

    page.goto(f"{appliance.url}/run?run={second}")  # logged in by the gate's cookie again
    page.get_by_role("heading", name=f"Run {second}").wait_for(timeout=120_000)
    wait_for_success(page, second)
    # A sweep: read at its first setting, its conditions said; each tile carries its comparison with random.
    assert page.get_by_test_id("stSelectbox").filter(has_text="Setting").count() == 1
    page.get_by_text("Conditions: train size 100 · noise level 0.3 · evaluation model logistic_regression.").wait_for()
    tiles = page.get_by_test_id("stMetric")
    assert tiles.filter(has_text=re.compile(r"vs random, (p=|no test)")).count() == 2  # all but random's own
    page.get_by_text("logistic_regression, knn").first.wait_for()  # the header names both models
    page.get_by_role("heading", name=re.compile(r"^Sweep: 2 settings × 1 task × \d+ repeats = \d+ cells$")).wait_for()
    check_layout(page, "a sweep's results")
    shot(page, "11-sweep-results")
    second_plots = airflow_stack.data_dir / "runs" / second / "plots"
    names = check_plots(page, second_plots)
    # The metric against the one swept axis (the models), not against a train size that did not change.
    assert (second_plots / "sweep_fraction_fixes_vs_model.png").is_file()
    assert not (second_plots / "sweep_fraction_fixes_vs_train_size.png").exists()
    assert names["Sweep"] == 2  # the metric against the models, and the latencies, in one tab
    page.get_by_role("tab", name="Sweep").click()
    shot(page, "12-sweep-plots", whole=False)
    page.get_by_role("tab", name="Results").click()

    # An invalid value: the field is named, Run stays disabled, no DAG run is made.
    nav(page, "New benchmark")
    set_number(page, "Noise level", 2)
    error = page.get_by_test_id("stAlertContentError").filter(has_text="noise_level")
    error.first.wait_for()
    assert "Noise level" in error.first.inner_text()
    check_layout(page, "the form with an invalid value")  # the errors as a list across the form
    assert page.get_by_role("button", name="Run benchmark").is_disabled()
    shot(page, "07-invalid-value")
    page.get_by_role("button", name="Run benchmark").click(force=True)
    settle(page)
    assert "/run?" not in page.url
    assert {run.run_id for run in gateway.list_recent_runs(limit=1000)} - earlier == {first, second}
    set_number(page, "Noise level", 0.3)

    # Every run, each track's metric in its own column with its direction, the sweep marked; then the two
    # side by side, the sweep at the setting chosen for it.
    nav(page, "Runs")
    assert cells(page, first) == 1 and cells(page, second) == 1
    assert cells(page, "sweep · 2 settings") == 1
    assert page.locator("[role=columnheader]", has_text="fraction_fixes ↓").count() == 1
    check_layout(page, "Runs")
    shot(page, "08-runs", whole=False)
    shot(page, "08-runs", whole=False, width=WIDE)
    nav(page, "Compare")
    page.get_by_role("heading", name="Parameters that differ").wait_for()
    assert cells(page, "logistic_regression, knn") >= 1
    setting = page.get_by_test_id("stSelectbox").filter(has_text=f"Setting of the sweep {second}")
    assert setting.count() == 1
    setting.click()
    page.get_by_role("option", name="train size 100 · noise level 0.3 · evaluation model knn").click()
    settle(page)
    page.get_by_role("heading", name=re.compile("fraction_fixes ↓ by task and method")).wait_for()
    page.get_by_test_id("stVegaLiteChart").first.wait_for()
    check_layout(page, "Compare")
    shot(page, "09-compare")
    shot(page, "09-compare", width=WIDE)

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

    # A good dataset: stored on disk and in S3; the form offers its own task; then deleted, with a
    # confirmation, from both.
    from playwright.sync_api import expect
    from test_ui_support import _zip, debugging_dataset

    good = _zip(debugging_dataset(), top="mine")
    page.get_by_label("Name", exact=True).fill("mine")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
        files=[{"name": "mine.zip", "mimeType": "application/zip", "buffer": good}])
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Check and store").click()
    page.get_by_text("Stored mine").wait_for()
    folder = airflow_stack.data_dir / "datasets" / "mine"
    assert folder.is_dir() and bucket_keys("datasets/mine/")
    nav(page, "New benchmark")
    select(page, "Dataset", "mine")
    tasks = page.get_by_test_id("stMultiSelect").filter(has_text="Tasks")
    tasks.get_by_text("t1", exact=True).wait_for()  # its own task, ticked, once the form has rerun
    expect(tasks).to_have_count(1)  # the digits' field gone
    assert "digit-3" not in tasks.inner_text()
    nav(page, "Datasets")
    # The deletion is offered (its dialog and the deletion on disk and in S3 are tested with moto in
    # tests/test_storage.py and tests/test_ui_support.py; the click-through here was flaky under load).
    expect(page.get_by_test_id("stExpander").filter(has_text="Delete a dataset")).to_have_count(1)
    # The first run still opens.
    page.goto(f"{appliance.url}/run?run={first}")
    page.get_by_role("heading", name="Metrics").wait_for(timeout=120_000)


def bucket_keys(prefix: str) -> list[str]:
    """The keys of the test bucket under the appliance's prefix + `prefix`."""
    import boto3

    listing = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).list_objects_v2(
        Bucket=TEST_BUCKET, Prefix=TEST_PREFIX + prefix)
    return [item["Key"] for item in listing.get("Contents", [])]

#!/usr/bin/env python3
"""Figures of the appliance: seconds from start to both services healthy, and its idle memory.

Starts the appliance the way a person does (`scripts/start.sh --background`, through
tests/appliance_harness.py) on its embedded default (local disk, no AWS) in a temporary data root with
free ports, and prints:

* first boot: seconds from `scripts/start.sh` until Airflow's API server and Streamlit both answer
  (includes creating the PostgreSQL cluster and migrating Airflow's database);
* idle memory: the sum of Pss (/proc/<pid>/smaps_rollup) over supervisord and all its descendants,
  `--settle` seconds after every program is up, per program and in total; with `--with-run`, again
  after one default run (the LocalExecutor's worker processes stay after a run); with `--visit-app`,
  again after a browser (Debian's chromium, through Playwright) has logged in to the app and opened its
  Runs page (the app's modules, and Airflow's through the gateway, stay imported in Streamlit);
* restart: seconds from `scripts/start.sh` until both services answer on the same data root.

Target: idle memory at most 1.5 GB (1536 MiB), so that the appliance fits a 4 GB instance.

Usage: scripts/bench_appliance.py [--settle SECONDS] [--with-run] [--visit-app] [--set NAME=VALUE ...] [--keep]
  --set  a setting for the appliance, e.g. --set APPLIANCE_AIRFLOW_PARALLELISM=2 (to compare tunings)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

TARGET_MIB = 1536


def memory_by_program(app) -> tuple[dict[str, float], float]:
    """({program: MiB}, total MiB) of supervisord and every descendant, each pid counted once."""
    pss = app.pss_kb()
    by_program: dict[str, float] = {}
    counted: set[int] = set()
    for name, (state, pid) in sorted(app.status().items()):
        if state == "RUNNING" and pid:
            tree = [p for p in app.tree_pids(pid) if p in pss and p not in counted]
            counted.update(tree)
            by_program[name] = sum(pss[p] for p in tree) / 1024
    rest = [p for p in pss if p not in counted]
    by_program["supervisord (+ other)"] = sum(pss[p] for p in rest) / 1024
    return by_program, sum(pss.values()) / 1024


def print_memory(title: str, app) -> float:
    by_program, total = memory_by_program(app)
    print(f"\n{title}")
    for name, mib in sorted(by_program.items(), key=lambda item: -item[1]):
        print(f"  {name:<24} {mib:8.1f} MiB")
    verdict = "within" if total <= TARGET_MIB else "OVER"
    print(f"  {'total':<24} {total:8.1f} MiB  ({verdict} the {TARGET_MIB} MiB target)")
    return total


def wait_settled(app, settle_s: float) -> None:
    app.wait_running()
    deadline = time.monotonic() + 180
    while app.status().get("unpause-dag", ("",))[0] not in ("EXITED", "FATAL") and time.monotonic() < deadline:
        time.sleep(1)
    time.sleep(settle_s)


def visit_app(app) -> None:
    """Log in to the app in a headless chromium, open the Runs page, close the browser."""
    from playwright.sync_api import sync_playwright

    password = (app.data_dir / "secrets" / "ui-password").read_text().strip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.set_default_timeout(90_000)
            page.goto(app.ui_url)
            page.get_by_label("Password", exact=True).fill(password)
            page.get_by_role("button", name="Log in").click()
            page.get_by_role("heading", name="New benchmark").wait_for()
            page.get_by_test_id("stSidebarNav").get_by_role("link", name="Runs", exact=True).click()
            page.get_by_role("heading", level=1).first.wait_for()
            page.wait_for_timeout(5_000)
        finally:
            browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=30.0, help="seconds to wait before measuring (default 30)")
    parser.add_argument("--with-run", action="store_true", help="also measure after one default run")
    parser.add_argument("--visit-app", action="store_true", help="also measure after a browser used the app")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable for the appliance (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data root")
    args = parser.parse_args()

    from appliance_harness import new_appliance

    root = Path(tempfile.mkdtemp(prefix="bench-appliance-"))
    app = new_appliance(root, dict(item.split("=", 1) for item in args.set))
    if args.set:
        print("settings: " + " ".join(args.set))
    try:
        first_boot = app.start()
        print(f"first boot: both services healthy {first_boot:.1f} s after scripts/start.sh")
        wait_settled(app, args.settle)
        idle = print_memory(f"idle memory, {args.settle:.0f} s after start (Pss):", app)
        after_run = None
        if args.with_run:
            started = time.monotonic()
            run_id = app.gateway("trigger")["run_id"]
            result = app.gateway("wait", run_id, "600", timeout_s=700)
            print(f"\ndefault run {run_id}: {result['state']} in {time.monotonic() - started:.1f} s")
            time.sleep(args.settle)
            after_run = print_memory(f"idle memory, {args.settle:.0f} s after the run (Pss):", app)
        after_visit = None
        if args.visit_app:
            visit_app(app)
            time.sleep(args.settle)
            after_visit = print_memory(f"idle memory, {args.settle:.0f} s after a browser used the app (Pss):", app)
        app.stop()
        restart = app.start()
        print(f"\nrestart: both services healthy {restart:.1f} s after scripts/start.sh")
        print(f"\nsummary: first boot {first_boot:.1f} s, restart {restart:.1f} s, idle {idle:.0f} MiB"
              + (f", idle after a run {after_run:.0f} MiB" if after_run is not None else "")
              + (f", then after the app's use {after_visit:.0f} MiB" if after_visit is not None else "")
              + f" (target {TARGET_MIB} MiB)")
    finally:
        app.cleanup()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

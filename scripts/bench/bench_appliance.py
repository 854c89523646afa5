#!/usr/bin/env python3
"""Figures of the appliance: seconds from start to both services healthy, and its memory before and after use.

Starts the appliance the way a person does (`scripts/start.sh --background`, through
tests/appliance_harness.py) on its default settings and embedded default (local disk, no AWS) in a
temporary data root with free ports, and prints:

* first boot: seconds from `scripts/start.sh` until Airflow's API server and Streamlit both answer
  (includes creating the PostgreSQL cluster and migrating Airflow's database);
* memory: the Pss (/proc/<pid>/smaps_rollup) of supervisord and all its descendants, per program and per
  kind of process, once idle after the start ("before"), and again after use ("after"): `--runs` default
  benchmark runs triggered together and waited for, then `--sessions` browser sessions (Debian's
  chromium through Playwright: log in, New benchmark, Runs, a run's page, Compare; browser closed), then
  `--idle` seconds without anything;
* restart: seconds from `scripts/start.sh` until both services answer on the same data root.

Target: at most 1,200 MiB after use, so that the appliance, with a run, fits a 4 GB instance.

Runs with the appliance's runtime install; the browser sessions also need Playwright (installed with the
test extras: scripts/dev/install.sh --with-tests) and /usr/bin/chromium (scripts/dev/install-browser.sh).

Usage: scripts/bench/bench_appliance.py [--runs N] [--sessions N] [--idle SECONDS] [--set NAME=VALUE ...] [--keep]
  --set  a setting for the appliance, e.g. --set APPLIANCE_AIRFLOW_PARALLELISM=2 (to compare tunings)
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

TARGET_MIB = 1200
OTHER = "supervisord (+ other)"


def _kind(pid: int) -> str:
    """What a process is, from its command line, without what differs between two of a kind (pids, ids)."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    text = " ".join(Path(word.decode(errors="replace")).name if i == 0 and word.startswith(b"/") else
                    word.decode(errors="replace") for i, word in enumerate(words) if word)
    return re.sub(r"\d{4,}", "N", text)[:70]


def memory(app) -> dict[str, dict[str, list[float]]]:
    """{program: {kind of process: [MiB of each process]}} over supervisord and every descendant."""
    pss = app.pss_kb()
    out: dict[str, dict[str, list[float]]] = {}
    counted: set[int] = set()
    for name, (state, pid) in sorted(app.status().items()):
        if state == "RUNNING" and pid:
            for member in app.tree_pids(pid):
                if member in pss and member not in counted:
                    counted.add(member)
                    out.setdefault(name, {}).setdefault(_kind(member), []).append(pss[member] / 1024)
    for member in pss:
        if member not in counted:
            out.setdefault(OTHER, {}).setdefault(_kind(member), []).append(pss[member] / 1024)
    return out


def _total(kinds: dict[str, list[float]]) -> float:
    return sum(sum(values) for values in kinds.values())


def print_memory(before: dict, after: dict | None = None) -> None:
    """A table: per program (and per kind of process in it) MiB before, after, and the change."""
    columns = ("before", "after", "change") if after is not None else ("MiB",)
    print(f"\n  {'program / process':<62}" + "".join(f"{c:>10}" for c in columns))
    programs = sorted(set(before) | set(after or {}), key=lambda p: -_total((after or before).get(p, {})))
    for program in programs:
        rows = [(program, _total(before.get(program, {})),
                 _total(after.get(program, {})) if after is not None else None)]
        kinds = set(before.get(program, {})) | set((after or {}).get(program, {}))
        for kind in sorted(kinds, key=lambda k: -sum((after or before).get(program, {}).get(k, [0]))):
            b, a = before.get(program, {}).get(kind, []), (after or {}).get(program, {}).get(kind, [])
            count = max(len(b), len(a))
            label = f"    {kind}" + (f" (x{count})" if count > 1 else "")
            rows.append((label, sum(b), sum(a) if after is not None else None))
        for label, b, a in rows:
            line = f"  {label[:62]:<62}{b:10.1f}"
            if a is not None:
                line += f"{a:10.1f}{a - b:+10.1f}"
            print(line)
    total_before = sum(_total(k) for k in before.values())
    line = f"  {'total':<62}{total_before:10.1f}"
    if after is not None:
        total_after = sum(_total(k) for k in after.values())
        line += f"{total_after:10.1f}{total_after - total_before:+10.1f}"
    print(line)


def wait_settled(app, idle_s: float) -> None:
    app.wait_running()
    deadline = time.monotonic() + 180
    while app.status().get("unpause-dag", ("",))[0] not in ("EXITED", "FATAL") and time.monotonic() < deadline:
        time.sleep(1)
    time.sleep(idle_s)


def browser_session(app, run_ids: list[str]) -> None:
    """One person's visit: log in, New benchmark, Runs, a run's page with its plots, Compare; then gone."""
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
            nav = page.get_by_test_id("stSidebarNav")
            nav.get_by_role("link", name="Runs", exact=True).click()
            page.get_by_role("heading", name="Runs", exact=True).wait_for()
            page.wait_for_timeout(3_000)
            page.goto(f"{app.ui_url}/run?run={run_ids[0]}")
            page.get_by_role("heading", level=1).first.wait_for()
            page.wait_for_timeout(5_000)  # the metrics and plots
            page.goto(f"{app.ui_url}/compare")
            page.get_by_role("heading", level=1).first.wait_for()
            page.wait_for_timeout(3_000)
        finally:
            browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="default runs before the 'after' figure (default 5)")
    parser.add_argument("--sessions", type=int, default=3, help="browser sessions after the runs (default 3)")
    parser.add_argument("--idle", type=float, default=60.0, help="idle seconds before each figure (default 60)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable for the appliance (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data root")
    args = parser.parse_args()
    if args.sessions:
        try:
            import playwright  # noqa: F401 - only checked here, used in browser_session
        except ImportError:
            parser.error("browser sessions need Playwright (scripts/dev/install.sh --with-tests); or --sessions 0")

    from appliance_harness import new_appliance

    root = Path(tempfile.mkdtemp(prefix="bench-appliance-"))
    app = new_appliance(root, dict(item.split("=", 1) for item in args.set))
    print("settings: " + (" ".join(args.set) or "the defaults"))
    try:
        first_boot = app.start()
        print(f"first boot: both services healthy {first_boot:.1f} s after scripts/start.sh")
        wait_settled(app, args.idle)
        before = memory(app)
        print(f"\nmemory (Pss, MiB), {args.idle:.0f} s idle after the start:")
        print_memory(before)

        started = time.monotonic()
        run_ids = [app.gateway("trigger")["run_id"] for _ in range(args.runs)]
        states = [app.gateway("wait", run_id, "1200", timeout_s=1300)["state"] for run_id in run_ids]
        print(f"\n{args.runs} default runs triggered together: {', '.join(states)} in "
              f"{time.monotonic() - started:.1f} s")
        for number in range(args.sessions):
            started = time.monotonic()
            browser_session(app, run_ids)
            print(f"browser session {number + 1}: {time.monotonic() - started:.1f} s")
        time.sleep(args.idle)
        after = memory(app)
        print(f"\nmemory (Pss, MiB) before, and after {args.runs} runs, {args.sessions} browser sessions and "
              f"{args.idle:.0f} s idle:")
        print_memory(before, after)
        total_before = sum(_total(k) for k in before.values())
        total_after = sum(_total(k) for k in after.values())

        app.stop()
        restart = app.start()
        print(f"\nrestart: both services healthy {restart:.1f} s after scripts/start.sh")
        verdict = "within" if total_after <= TARGET_MIB else "OVER"
        print(f"\nsummary: first boot {first_boot:.1f} s, restart {restart:.1f} s, idle {total_before:.0f} MiB "
              f"before use, {total_after:.0f} MiB after ({verdict} the {TARGET_MIB} MiB target)")
    finally:
        app.cleanup()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

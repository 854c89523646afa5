"""Run: progress while it runs; then metrics, every plot, the gallery, the exact file, the manifest, downloads."""

from __future__ import annotations

import streamlit as st

import common
from dataperf_appliance.orchestration import airflow_gateway
from dataperf_appliance.engine import bounded
from dataperf_appliance.engine.runs import RESULTS, SWEEP_CSV
from dataperf_appliance.interface.ui_support import run_detail, run_list, settings_view

REFRESH_S = 3
NUMBER_COLUMNS = common.metric_columns(run_detail.INTERVAL_COLUMN)


def pick_run() -> str | None:
    """The run of the address (?run=<id>), else one chosen from the list."""
    run_id = st.query_params.get("run")
    if run_id:
        return run_id
    st.title("Run")
    rows = common.collect_runs().rows
    if not rows:
        st.info("No runs yet. Start one on **New benchmark**.", icon="🧪")
        st.page_link(common.NEW_BENCHMARK, label="New benchmark", icon=":material/add_circle:")
        return None
    states = {r.run_id: r.state for r in rows}
    choice = st.selectbox("Run", list(states), index=None, placeholder="Choose a run",
                          format_func=lambda rid: f"{rid} · {states[rid]}")
    st.caption("Or open one from **Runs**.")
    if choice:
        st.query_params["run"] = choice
        st.rerun()
    return None


def airflow_link(run_id: str) -> None:
    st.link_button("Logs in Airflow", airflow_gateway.airflow_ui_url(run_id), icon=":material/open_in_new:")


def summary_line(detail: run_detail.RunDetail) -> None:
    """State, track, dataset, model and duration, on one line."""
    row = run_list.read_run_folder(detail.folder, detail.run_id, published=detail.published)
    bits = [f"{run_list.STATE_ICONS.get(detail.state, '')} **{detail.state}**", row.track, row.dataset, row.model,
            run_list.format_duration(row.duration_s())]
    st.markdown(" · ".join(str(b) for b in bits if b))


def progress(run_id: str) -> None:
    """While the run is in flight: Airflow's task states as steps; the whole page reloads when it finishes."""
    detail = run_detail.load_run(common.settings(), run_id)
    if not detail.in_flight:
        st.rerun()
    summary_line(detail)
    airflow_link(run_id)
    try:
        status = airflow_gateway.get_run(run_id)
    except airflow_gateway.RunNotFound:
        st.info("Airflow has not created this run yet; it appears here within seconds.", icon="⏳")
        return
    except airflow_gateway.AirflowUnavailable as error:
        st.warning(f"Airflow cannot be reached, so progress is unknown: {error}")
        return
    if status.state == "failed":
        st.error("Airflow marked this run failed; the run's own record follows in a moment. "
                 "The logs are in Airflow.", icon="❌")
        return
    steps = run_detail.progress_steps(status, detail.task_ids())
    done = sum(step.done for step in steps)
    label = f"Running: {done} of {len(steps)} steps done" if status.state == "running" else \
        f"Waiting for Airflow to start it ({status.state})"
    # Not a `with` block: leaving one would mark the status complete.
    box = st.status(label, state="running", expanded=True)
    box.progress(run_detail.progress_fraction(steps))
    for step in steps:
        box.markdown(f"{run_detail.step_icon(step)} {step.label}"
                     + (f" — *{step.state}*" if step.state and not step.done else ""))
    st.caption(f"Refreshes every {REFRESH_S} s.")


def failure(detail: run_detail.RunDetail) -> None:
    st.error(f"**This run failed.**\n\n{detail.error or 'No error was recorded; see the logs in Airflow.'}",
             icon="❌")
    try:
        status = airflow_gateway.get_run(detail.run_id)
        failed = status.failed_tasks()
        if failed:
            st.markdown("Failed in Airflow: " + ", ".join(
                f"`{ti.task_id}{'' if ti.map_index < 0 else f'[{ti.label or ti.map_index}]'}` ({ti.state})" for ti in failed))
    except (airflow_gateway.AirflowUnavailable, airflow_gateway.RunNotFound):
        pass
    if detail.traceback:
        with st.expander("Traceback"):
            st.code(detail.traceback, language="text")


HEADLINE_COLUMNS = 3
#: The differences that are not significant named in the warning; the table has them all.
WEAK_LISTED = 6


def headline(results: dict) -> None:
    """Every method's mean over the tasks and repeats, each with its 95% interval and its paired comparison
    with random (its Holm-adjusted p-value deciding significance; "no test" with one repeat), best first, in
    rows of three; a method over the budget is not ranked."""
    means = run_detail.method_means(results)
    if not means:
        return
    lower = means[0]["lower_is_better"]
    st.markdown(f"**{run_list.score_column(means[0]['metric'], lower)}** ({'lower' if lower else 'higher'} is "
                f"better): {run_detail.over_what(results)}, ± half its 95% interval; the difference with random "
                "is paired on the repeats, its p adjusted by Holm over the methods.")
    for start in range(0, len(means), HEADLINE_COLUMNS):
        columns = st.columns(HEADLINE_COLUMNS)
        for column, item in zip(columns, means[start:start + HEADLINE_COLUMNS]):
            value = f"{item['mean']:.3f}" + ("" if item["half_width"] is None else f" ± {item['half_width']:.3f}")
            comparison = item["comparison"]
            label = item["method"] + ("" if item["ranked"] else " · not ranked")
            column.metric(label, value, delta=run_detail.headline_delta(comparison), border=True,
                          delta_color="off" if not (comparison or {}).get("significant") else
                          ("inverse" if lower else "normal"),
                          help=(f"{item['metric']}: {run_detail.over_what(results)}, ± half the width of its 95% "
                                f"interval; {'lower' if lower else 'higher'} is better. The difference with random "
                                "is paired on the repeats (paired t-test); p is adjusted by Holm over the methods "
                                "(n.s.: not significant, adjusted p ≥ 0.05). The raw p is in the table below."))
    if not all(item["ranked"] for item in means):
        st.caption("Not ranked: a method whose training set is larger than the budget.")
    if means[0]["repeats"] < 2:
        st.caption("One repeat: no interval and no test. Run several repeats to tell methods apart.")


def setting_choice(detail: run_detail.RunDetail) -> dict:
    """For a sweep: the results at the setting the user picks (default: the first), its conditions said;
    else the run's results."""
    if not settings_view.is_sweep(detail.results):
        return detail.results
    options = settings_view.settings(detail.results)
    choice = st.selectbox("Setting", options, key="run.setting",
                          format_func=lambda o: settings_view.setting_label(detail.results, o),
                          help="A sweep ran every setting; everything on this tab is the chosen one's, computed "
                               "exactly as a plain run of it would be. Methods are compared at the same "
                               "conditions only.")
    shown = settings_view.view(detail.results, choice)
    st.caption(f"Conditions: {shown['setting']}.")
    return shown


def comparisons(shown: dict) -> None:
    rows = run_detail.comparison_rows(shown)
    if not rows:
        return
    st.subheader("Against random")
    weak = sorted({f"{r['method']} ({r['task']}, {r['metric']})" for r in rows if r["significant"] is False})
    if weak:
        st.warning(f"{len(weak)} of {len(rows)} differences are not significant (paired t-test over the repeats, "
                   "Holm-adjusted p ≥ 0.05): " + ", ".join(weak[:WEAK_LISTED])
                   + (f", and {len(weak) - WEAK_LISTED} more (the table's `significant`)" if len(weak) > WEAK_LISTED
                      else ""), icon="⚖️")
    st.caption("Difference = method − random, paired on the repeats (same noise, same data); `better` says which "
               "way the metric improves (lower: a negative difference is the method's gain); its 95% interval, "
               "the p-value of a paired t-test and the same adjusted by Holm over the methods of each task and "
               "metric, which decides significance.")
    st.dataframe(rows, hide_index=True, width="stretch", key="run.comparisons",
                 column_config=common.pinned("task", "method", **{
                     name: st.column_config.NumberColumn(format="%.4f")
                     for name in ("difference", "ci_low", "ci_high", "p", "p (Holm)")}))


def plot_tabs(detail: run_detail.RunDetail, paths: list, key: str) -> None:
    """One tab per group of pictures (run_detail.plot_groups), each picture across the page with its title
    and its download. Only the open tab's pictures are read (each under its size limit) and sent: a run may
    have hundreds."""
    groups = run_detail.plot_groups(paths)
    if not groups:
        return
    tabs = st.tabs(list(groups), key=key, on_change="rerun")
    for tab, (label, members) in zip(tabs, groups.items()):
        if not tab.open:
            continue
        with tab:
            for path in members:
                if len(members) > 1:
                    st.markdown(f"**{path.stem.replace('_', ' ')}**")
                data = run_detail.plot_bytes(path)
                if data is None:
                    st.warning(f"{path.name} cannot be shown: it cannot be read, or it is over "
                               f"{run_detail.format_size(bounded.MAX_PLOT_BYTES)}.")
                    continue
                st.image(data, width="stretch")
                st.download_button(f"Download {path.name}", data,
                                   file_name=f"{detail.run_id}-{path.name}", mime="image/png",
                                   icon=":material/download:", key=f"run.plot.{path.name}", on_click="ignore")


def served_bytes(path) -> bytes:
    """A file of the run for its download, read when the user asks for it (under the served limit)."""
    return bounded.read_limited(path, bounded.MAX_SERVED_BYTES)


def files_list(detail: run_detail.RunDetail) -> None:
    """Every file of the run with its size and its own download, grouped; the stages' internal hand-over
    files folded away."""
    groups = run_detail.file_groups(detail.folder)
    st.caption(f"{sum(len(g.files) for g in groups)} files; the whole run is the .zip above.")
    for group in groups:
        box = st.expander(f"{group.label} ({len(group.files)})", expanded=False) if group.internal else st.container()
        with box:
            if not group.internal:
                st.markdown(f"**{group.label}**")
            st.caption(group.about)
            for path in group.files:
                name = str(path.relative_to(detail.folder))
                left, middle, right = st.columns([6, 1, 2], vertical_alignment="center")
                left.markdown(f"`{name}`")
                size = path.stat().st_size
                middle.caption(run_detail.format_size(size))
                right.download_button("Download", lambda path=path: served_bytes(path),
                                      file_name=f"{detail.run_id}-{name.replace('/', '-')}",
                                      icon=":material/download:", key=f"run.file.{name}", on_click="ignore",
                                      disabled=size > bounded.MAX_SERVED_BYTES,
                                      help=None if size <= bounded.MAX_SERVED_BYTES else
                                      f"over the {run_detail.format_size(bounded.MAX_SERVED_BYTES)} the page serves")


def results(detail: run_detail.RunDetail) -> None:
    tabs = st.tabs(["Results", "Plots", "Gallery", "task_setup.yml", "Manifest", "Files"])
    with tabs[0]:
        shown = setting_choice(detail)
        headline(shown)
        st.subheader("Metrics")
        st.caption("Means over the repeats (↓ lower is better, ↑ higher is better); ± 95% is half the width of "
                   "the main metric's 95% interval."
                   + (" A method over the budget is shown but not ranked."
                      if run_detail.has_budget(detail.results) else ""))
        st.dataframe(run_detail.metrics_rows(shown, drop_empty=True), hide_index=True, width="stretch",
                     key="run.metrics", column_config=common.pinned("task", "method", **NUMBER_COLUMNS))
        comparisons(shown)
        methods(shown)
        sweep(detail)
        tasks = run_detail.task_rows(detail.results)
        if tasks and len(tasks[0]) > 1:
            st.caption("The tasks" + (" (the first setting's first repeat)" if shown is not detail.results else ""))
            # A task's fractions (its accuracies) to four decimals, its counts as they are.
            fractions = [key for key, value in tasks[0].items() if isinstance(value, float)]
            st.dataframe(tasks, hide_index=True, width="stretch", column_config=common.metric_columns(*fractions))
    with tabs[1]:
        if not detail.charts:
            st.info("This run made no plots.")
        plot_tabs(detail, detail.charts, "run.plots")
    with tabs[2]:
        if not detail.gallery:
            st.info("No gallery: galleries are drawn for the embedded digits, whose images are known.")
        plot_tabs(detail, detail.gallery, "run.gallery")
    with tabs[3]:
        st.caption("Exactly the file that was validated and run.")
        st.code(detail.task_setup_text or "", language="yaml", line_numbers=True, wrap_lines=True)
    with tabs[4]:
        st.json(detail.manifest, expanded=1)
        stages = run_detail.stage_rows(detail.manifest)
        if stages:
            st.dataframe(stages, hide_index=True, width="stretch")
    with tabs[5]:
        files_list(detail)


def methods(shown: dict) -> None:
    """The methods run in a process of their own: what failed (with the traceback), and what each cost."""
    failures = run_detail.method_failures(shown)
    if failures:
        st.error("\n".join(f"- **{f['method']}** failed on {f['task']}: {f['error']}" for f in failures)
                 + "\n\nThe other methods' results are complete.", icon="⚠️")
        with st.expander("Tracebacks"):
            for f in failures:
                st.code(f"{f['method']} on {f['task']}\n{f['traceback']}", language="text")
    cost = run_detail.method_cost_rows(shown)
    if cost:
        st.subheader("Methods run in a process of their own")
        st.caption("The first repeat: seconds and CPU seconds of the method's own work (DataPerf's time files), "
                   "the whole process (start and environment included), its peak memory.")
        st.dataframe(cost, hide_index=True, width="stretch", column_config=common.pinned("task", "method"))


def sweep(detail: run_detail.RunDetail) -> None:
    replicates = (detail.results or {}).get("replicates")
    if replicates:
        data = detail.file_bytes(replicates["table"], bounded.MAX_TABLE_BYTES)
        if data is not None:
            st.download_button(f"Every repeat's figures ({replicates['table']})", data,
                               file_name=f"{detail.run_id}-{replicates['table']}", mime="text/csv",
                               icon=":material/download:")
    summary = run_detail.sweep_summary(detail.results)
    if not summary:
        return
    info = detail.results["sweep"]
    st.subheader(f"Sweep: {run_detail.sweep_size(detail.results)}")
    metric = run_list.main_metric(detail.results.get("track"))[0]
    st.caption(f"Every setting's {metric} per task: mean and half its 95% interval over the repeats, and the "
               "paired difference with random (p adjusted by Holm over the methods). The sweep plots, the metric "
               "against each swept axis, are in the Plots tab.")
    st.dataframe(summary, hide_index=True, width="stretch", key="run.sweep",
                 column_config=common.pinned("task", "strategy", **{
                     name: st.column_config.NumberColumn(format="%.4f")
                     for name in ("mean", run_detail.INTERVAL_COLUMN, "vs random", "p (Holm)")}))
    data = detail.file_bytes(info.get("table") or SWEEP_CSV, bounded.MAX_TABLE_BYTES)
    if data is not None:
        st.download_button(SWEEP_CSV, data, file_name=f"{detail.run_id}-{SWEEP_CSV}", mime="text/csv",
                           icon=":material/download:")


def official_export(detail: run_detail.RunDetail) -> list[str]:
    """The run in the official evaluators' layout, built on request (it copies the dataset's files) and kept
    for the session, so the download survives reruns; returns the export's notes."""
    key = f"official_export.{detail.run_id}"
    if key not in st.session_state:
        if not st.button("Official format", key="run.official_export", icon=":material/inventory_2:",
                         help="Folders the official DataPerf evaluators read unchanged (docs/official-evaluators.md)"):
            return []
        try:
            with st.spinner("Writing the official folders..."):
                st.session_state[key] = run_detail.official_export_zip(detail, common.settings().data_dir)
        except (ValueError, OSError) as error:
            st.error(f"This run cannot be exported in the official format: {error}")
            return []
    data, notes = st.session_state[key]
    st.download_button("Official format (.zip)", data, file_name=f"{detail.run_id}-official.zip",
                       mime="application/zip", icon=":material/folder_zip:", key="run.official_zip",
                       on_click="ignore")
    return notes


def downloads(detail: run_detail.RunDetail) -> None:
    columns = st.columns(4)
    data = detail.file_bytes(RESULTS, bounded.MAX_RESULTS_BYTES)
    if data is not None:
        columns[0].download_button(RESULTS, data, file_name=f"{detail.run_id}-{RESULTS}",
                                   mime="application/json", icon=":material/download:")
    # Built when asked for, into a nameless file under the data root; Streamlit then holds its bytes, hence the
    # limit (run_detail.build_zip).
    size, data_dir = run_detail.folder_bytes(detail.folder), common.settings().data_dir
    columns[1].download_button("Whole run (.zip)",
                               lambda: run_detail.build_zip(detail.folder, detail.run_id, scratch=data_dir),
                               file_name=f"{detail.run_id}.zip", mime="application/zip",
                               icon=":material/folder_zip:", disabled=size > bounded.MAX_SERVED_BYTES,
                               help=None if size <= bounded.MAX_SERVED_BYTES else
                               f"{run_detail.format_size(size)} of files, over the "
                               f"{run_detail.format_size(bounded.MAX_SERVED_BYTES)} the page serves: download the "
                               "files one by one")
    with columns[2]:
        airflow_link(detail.run_id)
    with columns[3]:
        notes = official_export(detail)
    if notes:  # across the page, folded: they are also the zip's NOTES.md
        with st.expander(f"Notes on the official-format export ({len(notes)}; also in its NOTES.md)"):
            st.markdown("\n".join(f"- {note}" for note in notes))


def main() -> None:
    run_id = pick_run()
    if run_id is None:
        return
    for message in st.session_state.pop("flash", []) or []:
        st.warning(message)
    try:
        detail = run_detail.load_run(common.settings(), run_id, storage=common.storage())
    except run_detail.RunNotFound as error:
        st.title("Run")
        st.error(f"Run not found: {error}")
        st.page_link(common.RUNS, label="All runs", icon=":material/list:")
        return
    st.title(f"Run {run_id}")
    if detail.state == run_list.UNREADABLE:
        st.error(f"**This run cannot be read.** {detail.unreadable}", icon="⚠️")
        files_list(detail)
        return
    if detail.in_flight:
        st.fragment(run_every=REFRESH_S)(progress)(run_id)
        with st.expander("task_setup.yml"):
            st.code(detail.task_setup_text or "", language="yaml", line_numbers=True, wrap_lines=True)
        return
    summary_line(detail)
    if detail.state == "failed":
        failure(detail)
        airflow_link(run_id)
        with st.expander("task_setup.yml", expanded=True):
            st.code(detail.task_setup_text or "", language="yaml", line_numbers=True, wrap_lines=True)
        with st.expander("Manifest"):
            st.json(detail.manifest)
        return
    downloads(detail)
    results(detail)


main()

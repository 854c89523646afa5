"""Compare: two or more runs side by side: differing parameters, one metrics table, curves on one plot."""

from __future__ import annotations

import dataclasses

import altair as alt
import pandas as pd
import streamlit as st

import common
from dataperf_appliance.engine import figure_style
from dataperf_appliance.interface.ui_support import compare, run_detail, run_list, settings_view


def method_color(methods) -> alt.Color:
    """The methods' colours of every plot of the appliance (dataperf_appliance.engine.figure_style)."""
    colors = figure_style.method_colors(sorted(set(methods)))
    return alt.Color("method:N", title="method", scale=alt.Scale(domain=list(colors), range=list(colors.values())))


def curves(runs: list[run_detail.RunDetail]) -> None:
    tasks = compare.common_tasks(compare.curve_runs(runs))
    if not tasks:
        return
    st.subheader("Fixing curves")
    columns = st.columns([2, 1])
    task = columns[0].selectbox("Task", tasks, key="compare.task")
    relative = columns[1].toggle("x as a fraction of the training set", key="compare.relative",
                                 help="Runs with different training sizes line up on a 0..1 axis.")
    points = pd.DataFrame(compare.curve_points(runs, task))
    if points.empty:
        st.info(f"No run has curves for {task}.")
        return
    x = "fraction" if relative else "fixes"
    x_axis = alt.X(f"{x}:Q", title="fraction of the training set inspected" if relative else "points inspected")
    lines = alt.Chart(points).mark_line().encode(
        x=x_axis,
        y=alt.Y("accuracy:Q", title="test accuracy (mean over the repeats)", scale=alt.Scale(zero=False)),
        color=method_color(points["method"]),
        strokeDash=alt.StrokeDash("run:N", title="run"),
        tooltip=["run", "method", "fixes", alt.Tooltip("accuracy:Q", format=".3f")],
    )
    # The 95% band over the repeats, where a run has several.
    bands = alt.Chart(points.dropna(subset=["ci_low"])).mark_area(opacity=0.15).encode(
        x=x_axis, y="ci_low:Q", y2="ci_high:Q", color=method_color(points["method"]), detail="run:N")
    st.altair_chart((bands + lines).properties(height=420), width="stretch")
    st.caption("Lines: the mean curve over each run's repeats; shaded: its 95% interval.")


def bars(runs: list[run_detail.RunDetail]) -> None:
    rows = compare.metric_bars(runs)
    if not rows:
        return
    metric, lower = next(run_list.main_metric(r.results.get("track")) for r in runs
                         if r.results and r.run_id == rows[0]["run"])
    st.subheader(f"{metric} by task and method")
    frame = pd.DataFrame(rows)
    base = alt.Chart(frame).encode(x=alt.X("run:N", title=None, axis=alt.Axis(labelAngle=-30)), xOffset="method:N")
    # The colour is the method's, as in every plot; the runs are the groups.
    bars_layer = base.mark_bar().encode(
        y=alt.Y("value:Q", title=f"{run_list.score_column(metric, lower)} (mean over the repeats)"),
        color=method_color(frame["method"]),
        tooltip=["run", "task", "method", alt.Tooltip("value:Q", format=".3f")])
    error_layer = base.mark_rule(color="black").encode(y="ci_low:Q", y2="ci_high:Q")
    chart = alt.layer(bars_layer, error_layer, data=frame).facet(column=alt.Column("task:N", title=None))
    st.altair_chart(chart)
    st.caption("Bars: means over each run's repeats; black lines: their 95% intervals.")


def choose_setting(run: run_detail.RunDetail, others: list[run_detail.RunDetail]) -> run_detail.RunDetail:
    """A sweep compared at the setting the user picks for it (default: the one at the other runs'
    conditions); its tables and curves are that setting's."""
    if not settings_view.is_sweep(run.results):
        return run
    options = settings_view.settings(run.results)
    choice = st.selectbox(f"Setting of the sweep {run.run_id}", options, key=f"compare.setting.{run.run_id}",
                          index=compare.closest_setting(run, others),
                          format_func=lambda o: settings_view.setting_label(run.results, o))
    return dataclasses.replace(run, results=settings_view.view(run.results, choice))


def conditions(runs: list[run_detail.RunDetail]) -> None:
    """The benchmark conditions of each run (a sweep's at its chosen setting), and a warning where they
    differ: such scores answer different questions."""
    rows = compare.conditions_rows(runs)
    if not rows:
        return
    st.subheader("Conditions")
    st.dataframe(rows, hide_index=True, width="stretch", key="compare.conditions",
                 column_config=common.pinned("condition"))
    differ = [row["condition"] for row in rows if not row["same"]]
    if differ:
        st.warning(f"These runs differ in {', '.join(differ)}: a benchmark condition, so their scores answer "
                   "different questions. Pick a sweep's setting to line them up.", icon="⚖️")


def main() -> None:
    st.title("Compare runs")
    st.caption("Pick two or more finished runs: what differs in their setup, their metrics together, their curves "
               "on one plot.")
    finished = [r for r in common.collect_runs().rows if r.state == "success"]
    if len(finished) < 2:
        st.info("Comparing needs two finished runs. Start another on **New benchmark** (change the model, the "
                "noise level or the strategies) and come back.", icon="⚖️")
        st.page_link(common.NEW_BENCHMARK, label="New benchmark", icon=":material/add_circle:")
        return
    labels = {r.run_id: f"{r.run_id} · {r.track or ''}{' · sweep' if r.sweep_settings else ''} · {r.model or ''}"
              for r in finished}
    default = compare.default_runs(finished)
    chosen = st.multiselect("Runs", list(labels), default=default, format_func=labels.get, key="compare.runs",
                            help="By default the two newest runs of one track; runs of different tracks share "
                                 "no metric.")
    if len(chosen) < 2:
        st.info("Choose at least two runs.")
        return
    settings, store = common.settings(), common.storage()
    runs = [run_detail.load_run(settings, run_id, storage=store) for run_id in chosen]
    if len({run_list.main_metric((r.results or {}).get("track")) for r in runs}) > 1:
        st.warning("These runs are of different tracks: they share no metric, so the tables are half empty.")
    runs = [choose_setting(run, runs) for run in runs]
    conditions(runs)
    st.subheader("Parameters that differ")
    differing = compare.differing_params(runs)
    if differing:
        st.dataframe(differing, hide_index=True, width="stretch", column_config=common.pinned("parameter"))
    else:
        st.info("These runs have the same task_setup.yml parameters.")
    metric, pivot = compare.headline_pivot(runs)
    direction = run_list.main_metric((runs[0].results or {}).get("track"))[1]
    st.subheader(f"{run_list.score_column(metric, direction)} by task and method" if metric else "Metrics")
    if pivot:
        st.dataframe(pivot, hide_index=True, width="stretch",
                     column_config=common.pinned("task", "method", **{
                         name: st.column_config.NumberColumn(format="%.3f") for r in runs
                         for name in (r.run_id, r.run_id + compare.INTERVAL_SUFFIX)}))
        st.caption("Means over each run's repeats; ± 95%: half the width of the 95% interval.")
    with st.expander("Every metric of every run"):
        st.dataframe(compare.metrics_table(runs), hide_index=True, width="stretch",
                     column_config=common.pinned("run", "task", "method",
                                                 **common.metric_columns(run_detail.INTERVAL_COLUMN)))
    curves(runs)
    bars(runs)


main()

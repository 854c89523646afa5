"""Compare: two or more runs side by side: differing parameters, one metrics table, curves on one plot."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

import common
from dataperf_appliance.ui_support import compare, run_detail


def curves(runs: list[run_detail.RunDetail]) -> None:
    tasks = compare.common_tasks([r for r in runs if (r.results or {}).get("track", "debugging") == "debugging"])
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
    chart = alt.Chart(points).mark_line().encode(
        x=alt.X(f"{x}:Q", title="fraction of the training set inspected" if relative else "points inspected"),
        y=alt.Y("accuracy:Q", title="test accuracy", scale=alt.Scale(zero=False)),
        color=alt.Color("method:N", title="method"),
        strokeDash=alt.StrokeDash("run:N", title="run"),
        tooltip=["run", "method", "fixes", alt.Tooltip("accuracy:Q", format=".3f")],
    ).properties(height=420)
    st.altair_chart(chart, width="stretch")


def bars(runs: list[run_detail.RunDetail]) -> None:
    rows = compare.metric_bars(runs)
    if not rows:
        return
    st.subheader("Accuracy by task and method")
    chart = alt.Chart(pd.DataFrame(rows)).mark_bar().encode(
        x=alt.X("method:N", title=None), xOffset="run:N", y=alt.Y("value:Q", title="accuracy"),
        color=alt.Color("run:N"), column=alt.Column("task:N", title=None),
        tooltip=["run", "task", "method", alt.Tooltip("value:Q", format=".3f")])
    st.altair_chart(chart)


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
    labels = {r.run_id: f"{r.run_id} · {r.track or ''} · {r.model or ''}" for r in finished}
    default = [r.run_id for r in finished[:2]]
    chosen = st.multiselect("Runs", list(labels), default=default, format_func=labels.get, key="compare.runs")
    if len(chosen) < 2:
        st.info("Choose at least two runs.")
        return
    settings, store = common.settings(), common.storage()
    runs = [run_detail.load_run(settings, run_id, storage=store) for run_id in chosen]
    st.subheader("Parameters that differ")
    differing = compare.differing_params(runs)
    if differing:
        st.dataframe(differing, hide_index=True, width="stretch")
    else:
        st.info("These runs have the same task_setup.yml parameters.")
    metric, pivot = compare.headline_pivot(runs)
    st.subheader(f"{metric} by task and method" if metric else "Metrics")
    if pivot:
        st.dataframe(pivot, hide_index=True, width="stretch",
                     column_config={r.run_id: st.column_config.NumberColumn(format="%.3f") for r in runs})
    with st.expander("Every metric of every run"):
        st.dataframe(compare.metrics_table(runs), hide_index=True, width="stretch")
    curves(runs)
    bars(runs)


main()

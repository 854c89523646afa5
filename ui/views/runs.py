"""Runs: every run, from disk and S3, with its state; refreshes itself while runs are in flight."""

from __future__ import annotations

import streamlit as st

import common
from dataperf_appliance.interface.ui_support import run_list

REFRESH_S = 5


def filters(rows: list[run_list.RunRow]) -> list[run_list.RunRow]:
    columns = st.columns([2, 1, 1, 2])
    states = columns[0].multiselect("State", sorted({r.state for r in rows}), key="runs.states")
    tracks = columns[1].multiselect("Track", sorted({r.track for r in rows if r.track}), key="runs.tracks")
    models = columns[2].multiselect("Model", sorted({r.model for r in rows if r.model}), key="runs.models")
    text = columns[3].text_input("Search", key="runs.text", placeholder="run id or dataset")
    return run_list.filter_rows(rows, states=states, tracks=tracks, models=models, text=text)


def table() -> None:
    collection = common.collect_runs()
    rows = collection.rows
    for note in collection.notes:
        st.warning(note)
    if not rows:
        st.info("No runs yet. Configure one on **New benchmark**: the defaults run in a few minutes.", icon="🧪")
        st.page_link(common.NEW_BENCHMARK, label="New benchmark", icon=":material/add_circle:")
        return
    counts = st.columns(4)
    counts[0].metric("Runs", len(rows))
    counts[1].metric("In flight", len(collection.in_flight))
    counts[2].metric("Succeeded", sum(r.state == "success" for r in rows))
    counts[3].metric("Failed", sum(r.state == "failed" for r in rows))
    shown = filters(rows)
    if not shown:
        st.info("No run matches these filters.")
        return
    table = run_list.rows_table(shown)
    event = st.dataframe(
        table, hide_index=True, width="stretch", on_select="rerun",
        selection_mode="single-row", key="runs.table",
        column_config={
            **{name: st.column_config.NumberColumn(
                name, format="%.3f", help="the best method's mean over the tasks and repeats (a sweep: at its "
                                          "first setting); ↓ lower is better, ↑ higher is better")
               for name in table[0] if name.endswith(("↓", "↑"))},
            "± 95%": st.column_config.NumberColumn(
                "± 95%", format="%.3f", help="half the width of the score's 95% interval over the repeats "
                                             "(blank for one repeat)"),
            run_list.BEST_COLUMN: st.column_config.TextColumn(run_list.BEST_COLUMN, width="medium"),
            "run": st.column_config.TextColumn("run", width="medium", pinned=True)})
    st.caption("Select a row to open the run.")
    selected = event.selection.rows if event is not None else []
    if selected:
        st.switch_page(common.RUN, query_params={"run": shown[selected[0]].run_id})
    if collection.in_flight:
        st.caption(f"🔄 {len(collection.in_flight)} run(s) in flight: this list refreshes every {REFRESH_S} s.")
    elif st.session_state.pop("runs.refreshing", False):
        st.rerun()  # the last run in flight finished: stop refreshing


def main() -> None:
    st.title("Runs")
    st.caption("Every benchmark run, on this machine and in S3. Open one for its metrics and plots.")
    in_flight = bool(common.collect_runs().in_flight)
    st.session_state["runs.refreshing"] = in_flight
    st.fragment(run_every=REFRESH_S if in_flight else None)(table)()


main()

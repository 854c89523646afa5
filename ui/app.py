"""The DataPerf Appliance in the browser: the entry point of the Streamlit app.

    streamlit run ui/app.py --server.port $APPLIANCE_UI_PORT --server.headless true

It asks for the password (dataperf_appliance.interface.access), then routes to the
pages in ui/views/. The pages are widgets and layout only: what they compute
is in dataperf_appliance.interface.ui_support.
"""

from __future__ import annotations

import sys
from pathlib import Path

UI_DIR = Path(__file__).resolve().parent
if str(UI_DIR) not in sys.path:  # the pages import `common` from here
    sys.path.insert(0, str(UI_DIR))

import streamlit as st  # noqa: E402

import common  # noqa: E402

st.set_page_config(page_title="DataPerf Appliance", page_icon="🧪", layout="wide")
# A headline score "0.158 ± 0.061" fits a third of a 1280 px page at this size (Streamlit's is 2.25rem).
st.html("<style>[data-testid='stMetricValue'] { font-size: 1.75rem; }</style>")

PAGES = {
    "Benchmarks": [
        st.Page(common.NEW_BENCHMARK, title="New benchmark", icon=":material/add_circle:", url_path="new",
                default=True),
        st.Page(common.RUNS, title="Runs", icon=":material/list:", url_path="runs"),
        st.Page(common.RUN, title="Run", icon=":material/insights:", url_path="run"),
        st.Page(common.COMPARE, title="Compare", icon=":material/compare_arrows:", url_path="compare"),
    ],
    "Data": [
        st.Page(common.DATASETS, title="Datasets", icon=":material/dataset:", url_path="datasets"),
    ],
}

if not st.session_state.get("authenticated"):
    # The pages stay registered (hidden), so the address asked for opens once logged in.
    st.navigation(PAGES, position="hidden")
    common.login()
    st.stop()

page = st.navigation(PAGES)
common.keep_values()
common.sidebar()
page.run()

"""What every page shares: settings, the store, the page paths, the login form, the sidebar.

Streamlit widgets and layout only; the logic is in dataperf_appliance.interface.ui_support.
"""

from __future__ import annotations

import time

import streamlit as st

from dataperf_appliance.interface import access, login_gate

from dataperf_appliance.orchestration import airflow_gateway
from dataperf_appliance.config import catalog
from dataperf_appliance.engine.settings import Settings, load_settings
from dataperf_appliance.interface.ui_support import run_list

NEW_BENCHMARK = "views/new_benchmark.py"
RUNS = "views/runs.py"
RUN = "views/run.py"
COMPARE = "views/compare.py"
DATASETS = "views/datasets.py"
FAILED_LOGIN_DELAY_S = 1.0
REMEMBERED = "common.remembered_keys"


def remember(key: str) -> None:
    """Keep the value of the widget `key` while its page is not shown (see keep_values)."""
    st.session_state.setdefault(REMEMBERED, set()).add(key)


def keep_values() -> None:
    """Streamlit forgets a widget's value when its page is left; writing it back to itself keeps it.

    Called on every run of the app, so the New benchmark form keeps what the
    user chose while they look at a run.
    """
    for key in st.session_state.get(REMEMBERED, ()):
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def settings() -> Settings:
    return load_settings()


@st.cache_resource(show_spinner=False)
def _storage(data_dir: str, bucket: str | None, prefix: str, endpoint: str | None):
    from dataperf_appliance.engine.storage import open_storage

    return open_storage(load_settings())


def storage():
    """The store of the current settings (one boto3 client per configuration, shared by sessions)."""
    import os

    current = settings()
    return _storage(str(current.data_dir), current.s3_bucket, current.s3_prefix, os.environ.get("AWS_ENDPOINT_URL"))


@st.cache_data(ttl=15, show_spinner=False)
def airflow_health() -> tuple[bool, str]:
    """(healthy, a line for the sidebar), asked of Airflow's database at most every 15 s."""
    try:
        status = airflow_gateway.health()
    except airflow_gateway.AirflowUnavailable as error:
        return False, f"Airflow unavailable: {error}"
    down = [name.replace("_", " ") for name, item in status.items()
            if name != "triggerer" and not item.get("healthy")]
    if down:
        return False, f"Airflow: no recent heartbeat of the {', '.join(down)}"
    return True, "Airflow: scheduler and DAG processor running"


@st.cache_data(ttl=60, show_spinner="Bringing finished runs from S3…")
def _restore_finished(data_dir: str, bucket: str | None, prefix: str) -> tuple[list[str], list[str]]:
    return run_list.restore_finished(storage())


def collect_runs() -> run_list.RunCollection:
    """Every run (disk, S3, Airflow); successful runs only in S3 are downloaded first (at most once a minute)."""
    current, store = settings(), storage()
    notes = []
    if store.enabled:
        _, notes = _restore_finished(str(current.data_dir), current.s3_bucket, current.s3_prefix)
    collection = run_list.collect_runs(current, storage=store)
    collection.notes[:0] = notes
    return collection


@st.cache_data(ttl=30, show_spinner=False)
def _dataset_names(data_dir: str, bucket: str | None, prefix: str) -> list[str]:
    try:
        return [item.name for item in storage().list_datasets()]
    except Exception:  # noqa: BLE001 - S3 down: the datasets on disk are still offered
        folder = settings().datasets_dir
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def dataset_names() -> list[str]:
    """The dataset folders on disk and in S3 (listed at most every 30 s)."""
    current = settings()
    return _dataset_names(str(current.data_dir), current.s3_bucket, current.s3_prefix)


def forget_dataset_names() -> None:
    _dataset_names.clear()


def login() -> bool:
    """The login form while the session is not authenticated; True once it is.

    Behind the login gate (ui/server.py, how the appliance serves the app) the
    browser has logged in already: its session cookie stands for the form.
    """
    if st.session_state.get("authenticated"):
        return True
    if login_gate.SESSIONS.valid(st.context.cookies.get(login_gate.COOKIE)):
        st.session_state["authenticated"] = True
        st.rerun()
    st.title("DataPerf Appliance")
    st.caption("Benchmark training data the DataPerf way: configure, run and compare benchmarks.")
    with st.form("login", border=True):
        password = st.text_input("Password", type="password", key="login.password",
                                 help="Set by the operator (APPLIANCE_UI_PASSWORD), or generated at the first "
                                      "start into a file on the server only the operator can read.")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        try:
            ok = access.check_password(password)
        except access.PasswordUnavailable as error:
            st.error(str(error))
            return False
        if ok:
            st.session_state["authenticated"] = True
            st.session_state.pop("login.password", None)
            st.rerun()
        time.sleep(FAILED_LOGIN_DELAY_S)  # slows guessing down
        st.error("Wrong password.")
    return False


def sidebar() -> None:
    current = settings()
    with st.sidebar:
        st.divider()
        healthy, line = airflow_health()
        if healthy:
            st.success(line, icon="🟢")
        else:
            headline, _, detail = line.partition(": ")
            st.warning(headline, icon="🟠")
            st.caption(detail)
        where = f"S3: `{current.s3_bucket}/{current.s3_prefix}`" if current.s3_bucket else "S3: off (disk only)"
        st.caption(f"Data root: `{current.data_dir}`  \n{where}")
        st.link_button("Airflow UI", airflow_gateway.airflow_ui_url(), icon=":material/open_in_new:")
        if login_gate.COOKIE in st.context.cookies:  # behind the gate: its cookie ends the session
            st.markdown(f'<a href="{login_gate.LOGOUT_PATH}" target="_self">Log out</a>', unsafe_allow_html=True)
        elif st.button("Log out", icon=":material/logout:"):
            st.session_state.clear()
            st.rerun()


def open_run_link(run_id: str, label: str | None = None) -> None:
    st.page_link(RUN, label=label or f"Open run {run_id}", icon=":material/insights:", query_params={"run": run_id})


def pinned(*names: str, **more) -> dict:
    """Column settings that keep the key columns `names` in view when a table scrolls sideways (a table wider
    than the page at 1280 px), merged with `more` ({column: column_config})."""
    return {**{name: st.column_config.Column(name, pinned=True) for name in names}, **more}


def metric_columns(*more: str) -> dict:
    """Column settings showing every metric of either track, time_s and the columns `more` to four decimals;
    a metric headed with its direction (``auroc ↑``, catalog.metric_label) and its help saying it, since one
    table holds both directions."""
    def column(name: str):
        direction = catalog.better(name)
        return st.column_config.NumberColumn(catalog.metric_label(name), format="%.4f",
                                             help=direction and f"{direction} is better")

    return {name: column(name) for name in (*catalog.LOWER_IS_BETTER, "time_s", *more)}

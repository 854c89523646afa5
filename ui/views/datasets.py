"""Datasets: what is available on disk and in S3; upload a DataPerf dataset (checked before it is stored)."""

from __future__ import annotations

import streamlit as st

import common
from dataperf_appliance.engine.storage import StorageError
from dataperf_appliance.interface.ui_support import dataset_upload


def listing() -> list[dict]:
    rows, notes = dataset_upload.dataset_rows(common.settings(), common.storage())
    for note in notes:
        st.warning(note)
    # A static table: its cells wrap, so every task and the whole description show.
    st.table(rows)
    return rows


@st.dialog("Delete a dataset")
def confirm_delete(name: str) -> None:
    st.markdown(f"Delete **{name}** on disk and in S3? This cannot be undone.\n\n"
                "Runs that used it keep their own folders (setup, results, plots, submissions) and still open; "
                "a new run on it, or a run's official-format export, needs it uploaded again.")
    left, right = st.columns(2)
    if left.button("Delete", type="primary", icon=":material/delete:", key="datasets.delete.confirm"):
        try:
            message = dataset_upload.delete_dataset(name, common.settings(), storage=common.storage())
        except (ValueError, OSError, StorageError) as error:
            st.error(f"Not deleted: {error}")
            return
        st.session_state["dataset.flash"] = (message, [])
        common.forget_dataset_names()
        st.rerun()
    if right.button("Cancel", key="datasets.delete.cancel"):
        st.rerun()


def deletion(rows: list[dict]) -> None:
    names = dataset_upload.deletable_datasets(rows)
    if not names:
        return
    with st.expander("Delete a dataset"):
        name = st.selectbox("Dataset", names, index=None, placeholder="Choose an uploaded dataset",
                            key="datasets.delete.name")
        if st.button("Delete…", icon=":material/delete:", disabled=name is None, key="datasets.delete"):
            confirm_delete(name)


def upload() -> None:
    st.subheader("Upload a dataset")
    st.markdown(
        "Zip the dataset folder and upload the `.zip`. It is checked file by file before anything is stored.\n"
        "- **Debugging**: `embeddings/<data_id>_train_<noise>_<size>.parquet`, `…_val_<n>.parquet`, "
        "`…_test_<n>.parquet` (columns `encoding`, `label`, `filename`) and `data/dataset_<data_id>_train.csv` "
        "(`ImageID`, `hv_label`).\n"
        "- **Selection**: a candidate pool parquet (`ImageID`, `embedding`), a test set parquet per task "
        "(`ImageID`, `embedding`, `Confidence`), `examples/alpha_example_set_<task>.csv`, and optionally "
        "training-set csvs (`ImageID,Confidence`).")
    with st.form("dataset.upload", clear_on_submit=False):
        name = st.text_input("Name", key="dataset.name", placeholder="e.g. my-vision-tasks",
                             help="Becomes the dataset's folder name and what you pick as the dataset of a run.")
        archive = st.file_uploader("Dataset (.zip)", type=["zip"], key="dataset.zip")
        submitted = st.form_submit_button("Check and store", type="primary", icon=":material/upload:")
    if not submitted:
        return
    if archive is None or not name.strip():
        st.error("Give a name and choose a .zip file.")
        return
    with st.spinner("Checking every file…"):
        check = dataset_upload.upload_dataset(name.strip(), archive.getvalue(), common.settings(),
                                              storage=common.storage())
    if not check.ok:
        st.error("**Refused**: nothing was stored.\n\n" + "\n".join(f"- {p}" for p in check.problems), icon="🚫")
        return
    where = "on disk and in S3" if check.synced else "on disk"
    st.session_state["dataset.flash"] = (
        f"Stored **{check.name}** ({check.kind} dataset, {len(check.files)} files) {where}. "
        f"Tasks: {', '.join(check.tasks)}. Pick it as the dataset of a new benchmark.", check.warnings)
    common.forget_dataset_names()
    st.rerun()


def main() -> None:
    st.title("Datasets")
    st.caption("The embedded digits and the synthetic data are generated on demand; uploaded DataPerf datasets "
               "live under the data root and in S3.")
    flash = st.session_state.pop("dataset.flash", None)
    if flash:
        st.success(flash[0], icon="✅")
        for warning in flash[1]:
            st.warning(warning)
    rows = listing()
    upload()
    deletion(rows)


main()

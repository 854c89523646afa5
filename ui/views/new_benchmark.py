"""New benchmark: the form (or the YAML by hand), a live preview of task_setup.yml, Run."""

from __future__ import annotations

import math

import streamlit as st

import common
from dataperf_appliance.interface.launch import launch_run
from dataperf_appliance.engine.runs import new_run_id
from dataperf_appliance.interface.ui_support import form
from dataperf_appliance.engine.upload_limits import MAX_SUBMISSION_UPLOAD_BYTES

WIDE_KINDS = ("multichoice", "names")
FORM_COLUMNS = 2
PENDING_RUN = "nb.pending_run_id"
PRESET_HELP = {"arena": "Every method of the appliance and of the libraries, DataPerf's four baselines among them, "
                        "with repeats: one figure of every method's quality against its cost (minutes to hours)."}


def widget(spec: form.FieldSpec, track: str, scope: str | None = None):
    """Draw the widget of one field; its value. The value the user gave is kept across pages (common.keep_values);
    with `scope` (a dataset other than the default), apart from the other datasets' (the browser keeps a
    widget's choices when only its options change)."""
    key = form.widget_key(track, spec, scope)
    common.remember(key)
    label, help_text = spec.label, spec.help or None
    given = key in st.session_state  # then the widget takes its value from there, not from a default
    if spec.kind == "choice":
        options = list(spec.options)
        if given and st.session_state[key] not in options:
            del st.session_state[key]
            given = False
        index = options.index(spec.default) if spec.default in options else 0
        # The box shows the bare name (a description would be cut off in a narrow column); what it is follows.
        value = st.selectbox(label, options, key=key, help=help_text, **({} if given else {"index": index}))
        described(spec.key, [value])
        return value
    if spec.kind == "multichoice":
        if given and not set(st.session_state[key]) <= set(spec.options):
            kept = [v for v in st.session_state[key] if v in spec.options]
            if kept:
                st.session_state[key] = kept
            else:  # another dataset's tasks: this one's own are offered ticked
                del st.session_state[key]
                given = False
        default = [v for v in spec.default if v in spec.options]
        chosen = st.multiselect(label, list(spec.options), key=key, help=help_text,
                                **({} if given else {"default": default}))
        described(spec.key, chosen)
        return chosen
    if spec.kind == "int":
        return st.number_input(label, step=1, key=key, help=help_text,
                               **({} if given else {"value": int(spec.default)}))
    if spec.kind == "float":
        return st.number_input(label, step=0.05, format="%.2f", key=key, help=help_text,
                               **({} if given else {"value": float(spec.default)}))
    if spec.kind == "bool":
        return st.checkbox(label, key=key, help=help_text, **({} if given else {"value": bool(spec.default)}))
    placeholder = {"optional_number": "blank: default", "names": "comma-separated names",
                   "numbers": "comma-separated numbers"}.get(spec.kind)
    return st.text_input(label, key=key, help=help_text, placeholder=placeholder,
                         **({} if given else {"value": form.text_of(spec, spec.default)}))


def method_parameter(spec: form.MethodParameterSpec, track: str):
    """Draw the input of one parameter of a library method, prefilled with its default; its value."""
    key = form.widget_key(track, spec)
    common.remember(key)
    label, help_text = spec.label, spec.help or None
    prefill = {} if key in st.session_state else {"value": spec.default}
    if spec.kind == "bool":
        return st.checkbox(label, key=key, help=help_text, **prefill)
    if spec.kind == "int":
        return st.number_input(label, step=1, key=key, help=help_text, **prefill)
    if spec.kind == "float":
        # %g: a learning rate of 0.001 or a scale of 25 shown as written, not rounded to two decimals.
        return st.number_input(label, format="%g", key=key, help=help_text, **prefill)
    return st.text_input(label, key=key, help=help_text, **prefill)


def method_parameters(track: str, chosen) -> dict:
    """The parameters of the chosen library methods, a folded group per method; {widget value key: value}."""
    by_method: dict[str, list[form.MethodParameterSpec]] = {}
    for spec in form.method_parameter_specs(track, chosen or []):
        by_method.setdefault(spec.method, []).append(spec)
    values = {}
    for method, specs in by_method.items():
        with st.expander(f"Parameters of {method} ({len(specs)})"):
            columns = st.columns(FORM_COLUMNS)
            for index, spec in enumerate(specs):
                with columns[index % FORM_COLUMNS]:
                    values[spec.key] = method_parameter(spec, track)
    return values


def described(key: str, chosen) -> None:
    """What each chosen option is, under its field, where the field's options have descriptions (the models)."""
    lines = [form.option_label(key, option) for option in chosen or []]
    if any(line != str(option) for line, option in zip(lines, chosen or [])):
        st.caption("; ".join(lines))


def kept(files) -> dict[str, bytes]:
    """The files of an uploader, {name: bytes}; none, with the reason, when it holds more than it takes."""
    problem = form.too_many_files(len(files or []))
    if problem:
        st.error(problem)
        return {}
    return {f.name: f.getvalue() for f in files or []}


def uploads(track: str) -> dict[str, bytes]:
    files = st.file_uploader(
        "Your own submission files (optional)", accept_multiple_files=True, type=["txt", "csv"],
        key=f"nb.uploads.{track}",
        # The browser refuses a file larger than its reader takes, before sending it.
        max_upload_size=math.ceil(MAX_SUBMISSION_UPLOAD_BYTES / 2**20),
        help="Debugging: {data_id}_{method}.txt (one training row index per line, in inspection order) and "
             "optionally time_{data_id}_{method}.txt. Selection: {task}_{method}.csv (ImageID,Confidence).")
    return kept(files)


def method_uploads(track: str) -> dict[str, bytes]:
    files = st.file_uploader(
        "Your methods as code (optional)", accept_multiple_files=True, type=["py", "txt"],
        key=f"nb.method_uploads.{track}",
        help="A NAME.py with one class: fit(train_X, train_y, val_X, val_y) and propose(budget), as a DataPerf "
             "appraiser (debugging), or select(pool_X, examples_X, budget, oracle) (selection). It runs on every "
             "task and repeat. Its libraries: a NAME.requirements.txt, or a requirements.txt for all the methods "
             "(an environment of their own, built once).")
    return kept(files)


def show_field_errors(check: form.FormCheck, specs: list[form.FieldSpec]) -> None:
    """Every field's problems as one list under the form, across its width (a message under a field of a
    narrow column would be a tall strip of words)."""
    labels = {spec.key: spec.label for spec in specs}
    lines = [f"- **{labels.get(key, key)}** (`{key}`): {message}"
             for key, messages in check.field_errors.items() for message in messages]
    if lines:
        st.error("\n".join(lines), icon="⚠️")


def limit_slot(spec: form.FieldSpec, slots: dict) -> None:
    """A place under the training size for its upper limit, written once the form is checked (the problems
    of every field are listed under the form)."""
    if spec.key == "train_size":
        slots[spec.key] = st.empty()


def form_mode(track: str, settings, dataset_folders: list[str]) -> tuple[form.FormCheck, dict[str, bytes]]:
    sweep = False
    if form.sweep_params() & set(form.default_params(track)):
        common.remember(f"nb.{track}.sweep")
        sweep = st.toggle("Sweep: several models or sizes at once", key=f"nb.{track}.sweep",
                          help="Give several values of the model, the training size or the noise level: every "
                               "combination is evaluated `repeats` times, the table and plots compare them.")
    dataset_key = f"nb.{track}.dataset.choice"
    specs = [s for s in form.field_specs(track, dataset=st.session_state.get(dataset_key),
                                         dataset_folders=dataset_folders, sweep=sweep,
                                         data_root=settings.data_dir) if s.key != "track"]
    for preset in form.presets(track):
        if st.button(f"Preset: {preset}", key=f"nb.{track}.preset.{preset}", icon=":material/stadium:",
                     help=PRESET_HELP.get(preset)):
            st.session_state.update(form.preset_widget_values(track, preset, specs))
            st.rerun()
    values, slots = {}, {}
    narrow = [s for s in specs if s.kind not in WIDE_KINDS and not s.advanced]
    wide = [s for s in specs if s.kind in WIDE_KINDS]
    chosen = st.session_state.get(dataset_key)
    # Each dataset has its own tasks: their choice is kept per dataset.
    own_dataset = chosen if chosen and chosen != form.default_params(track).get("dataset") else None
    # Two columns: in three, a model's name or a label is cut off at 1280 px.
    columns = st.columns(FORM_COLUMNS)
    for index, spec in enumerate(narrow):
        with columns[index % FORM_COLUMNS]:
            values[spec.key] = widget(spec, track)
            limit_slot(spec, slots)
    for spec in wide:
        values[spec.key] = widget(spec, track, own_dataset if spec.key == "tasks" else None)
        limit_slot(spec, slots)
        if spec.key == form.STRATEGIES_FIELD:
            values.update(method_parameters(track, values[spec.key]))
    advanced = [s for s in specs if s.advanced]
    if advanced:
        failing = set(st.session_state.get("nb.error_keys", ()))
        with st.expander("File paths and other settings", expanded=any(s.key in failing for s in advanced)):
            for spec in advanced:
                values[spec.key] = widget(spec, track)
                limit_slot(spec, slots)
    files = uploads(track) if "submissions" in values else {}
    values, inferred = form.with_uploaded_methods(values, specs, files)
    if inferred:
        st.caption(f"Methods found in the uploaded files: {', '.join(inferred)}")
    method_files = method_uploads(track)
    params, parse_errors = form.params_from_values(track, values, specs)
    params["track"] = track
    params["methods"], method_problems = form.method_entries(method_files)
    if method_problems:
        parse_errors.setdefault("methods", []).extend(method_problems)
    check = form.check_params(params, settings, files=files, method_files=method_files, parse_errors=parse_errors)
    limit = form.train_size_limit(params, settings) if "train_size" in slots else None
    if limit is not None:
        slots["train_size"].caption(f"At most {limit} for these tasks and split sizes.")
    show_field_errors(check, specs)
    st.session_state["nb.error_keys"] = list(check.field_errors)
    st.session_state["nb.last_text"] = check.text
    return check, {**form.run_files(check.setup, files), **form.method_run_files(method_files)} if check.ok else {}


def yaml_mode(track: str, settings) -> tuple[form.FormCheck, dict[str, bytes]]:
    if "nb.yaml" not in st.session_state:
        st.session_state["nb.yaml"] = st.session_state.get("nb.last_text") or ""
    text = st.text_area("task_setup.yml", key="nb.yaml", height=480,
                        help="The whole file. It is checked as you type (Ctrl+Enter applies).")
    if st.button("Start again from the form's file", icon=":material/restart_alt:"):
        st.session_state.pop("nb.yaml", None)
        st.rerun()
    files, method_files = uploads(track), method_uploads(track)
    check = form.check_yaml(text, settings, files=files, method_files=method_files)
    return check, {**form.run_files(check.setup, files), **form.method_run_files(method_files)} if check.ok else {}


def launch(check: form.FormCheck, files: dict[str, bytes], settings) -> None:
    """Store and start the run; `files` are the user's files as the run keeps them (submissions, methods)."""
    run_id = st.session_state.setdefault(PENDING_RUN, new_run_id())
    try:
        with st.spinner("Storing the run and starting it in Airflow…"):
            outcome = launch_run(check.text, run_id, settings=settings, files=files, storage=common.storage())
    except (ValueError, OSError) as error:
        st.session_state.pop(PENDING_RUN, None)
        st.error(f"The run could not be stored: {error}")
        return
    st.session_state.pop(PENDING_RUN, None)
    st.session_state["flash"] = list(outcome.warnings)
    if outcome.error:
        st.error(outcome.error)
        common.open_run_link(run_id)
        return
    st.switch_page(common.RUN, query_params={"run": run_id})


def main() -> None:
    settings = common.settings()
    st.title("New benchmark")
    st.caption("Choose the track, the data, the model and the methods. The task_setup.yml on the right is what "
               "will run; it is checked as you type.")
    tracks = form.available_tracks()
    for key in ("nb.track", "nb.advanced", "nb.yaml"):
        common.remember(key)
    top = st.columns([1, 2])
    track = top[0].selectbox("Track", tracks, key="nb.track", help=form.FIELD_INFO["track"][1])
    advanced = top[1].toggle("Advanced: edit the YAML", key="nb.advanced",
                             help="Write or paste the whole task_setup.yml; it is checked the same way.")
    folders = common.dataset_names()
    left, right = st.columns([3, 2], gap="large")
    with left:
        check, files = yaml_mode(track, settings) if advanced else form_mode(track, settings, folders)
    with right:
        # The verdict and the Run button first: the preview below may be long.
        if check.ok:
            st.success("Valid: ready to run.", icon="✅")
        else:
            count = sum(len(m) for m in check.field_errors.values()) + len(check.general_errors)
            st.error(f"{count} problem(s) to fix before it can run.", icon="🚫")
            for message in check.general_errors:
                st.error(message)
        for message in check.warnings:
            st.warning(message)
        clicked = st.button("Run benchmark", type="primary", icon=":material/play_arrow:", disabled=not check.ok,
                            key="nb.run", help=None if check.ok else "Fix the problems shown first.")
        with st.expander("task_setup.yml: the file that will run", expanded=True):
            st.code(check.text or "# the form's values cannot be written into the template yet",
                    language="yaml", line_numbers=True, wrap_lines=True)
    if clicked and check.ok:
        launch(check, files, settings)


main()

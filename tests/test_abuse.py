"""Inputs that must not take the appliance down: malformed uploads, bombs, odd names, races on run folders.

Each test is one finding of the security review (issue 13): the input is
refused with one line naming the file and the problem, and nothing is left
behind under the data root. The fuzz tests (hypothesis) feed random inputs to
the YAML loader and the checkers of users' files, which must raise only their
own error type.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from ui_fixtures import small_setup

from dataperf_appliance.interface import cli

from dataperf_appliance.stages import pipeline
from dataperf_appliance.engine.bounded import BoundedRunError, run_bounded
from dataperf_appliance.config import ConfigError
from dataperf_appliance.config.loader import load_yaml
from dataperf_appliance.engine.datasets import dataperf_files
from dataperf_appliance.engine.debugging.submissions import SubmissionError, read_submission
from dataperf_appliance.engine.selection.files import TrainingSetError, read_training_set
from dataperf_appliance.engine.settings import Settings
from dataperf_appliance.interface.ui_support import dataset_upload

FUZZ = hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", s3_bucket=None, s3_prefix="p/")


def leftovers(settings: Settings) -> list[str]:
    """Everything under datasets/ and runs/ (hidden names included): what a refused input left behind."""
    return sorted(str(p.relative_to(settings.data_dir)) for folder in (settings.datasets_dir, settings.runs_dir)
                  if folder.is_dir() for p in folder.rglob("*"))


def zipped(files: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def parquet_bytes(table: pa.Table, **options) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **options)
    return sink.getvalue().to_pybytes()


def debugging_files(train: bytes) -> dict[str, bytes]:
    """A debugging dataset of one task, its train parquet `train`, the other files valid."""
    def split(rows: int) -> bytes:
        return parquet_bytes(pa.table({"encoding": [[0.5, 1.5]] * rows, "label": [i % 2 for i in range(rows)],
                                       "filename": [f"img{i}" for i in range(rows)]}))

    truth = "ImageID,hv_label\n" + "".join(f"img{i},{i % 2}\n" for i in range(4))
    return {"embeddings/t1_train_0.3_4.parquet": train, "embeddings/t1_val_4.parquet": split(4),
            "embeddings/t1_test_4.parquet": split(4), "data/dataset_t1_train.csv": truth.encode()}


def refused(settings: Settings, files_or_zip: dict[str, bytes] | bytes) -> str:
    """The one problem an upload is refused with; asserts nothing was stored or left behind."""
    data = files_or_zip if isinstance(files_or_zip, bytes) else zipped(files_or_zip)
    check = dataset_upload.upload_dataset("up", data, settings)
    assert not check.ok and check.stored_at is None
    assert leftovers(settings) == []
    assert all("\n" not in problem for problem in check.problems)
    return check.problems[0]


# ---- uploads -------------------------------------------------------------------------------------------

ROWS = 4


@pytest.mark.parametrize("encoding, expected", [
    (pa.array([1, 2, 3, 4]), "must hold lists of floats"),
    (pa.array([None, None, None, None], type=pa.list_(pa.float64())), "row(s) have no embedding"),
    (pa.array([{"x": 1.0}] * ROWS), "must hold lists of floats"),
    (pa.array([[1.0, None]] * ROWS), "missing (null or NaN)"),
    (pa.array([["a", "b"]] * ROWS), "must be numbers"),
    (pa.array([[1.0], [1.0, 2.0], [1.0], [1.0]]), "row(s) differ"),
])
def test_an_encoding_column_of_the_wrong_kind_is_a_problem_naming_the_file(settings, encoding, expected):
    train = parquet_bytes(pa.table({"encoding": encoding, "label": [0, 1, 0, 1],
                                    "filename": [f"img{i}" for i in range(ROWS)]}))
    problem = refused(settings, debugging_files(train))
    assert "t1_train_0.3_4.parquet" in problem and expected in problem


def test_a_small_parquet_that_unpacks_to_gigabytes_is_refused_from_its_footer(settings):
    """Many row groups of zeros: under a megabyte on disk, more values than MAX_PARQUET_VALUES."""
    block = pa.table({"encoding": pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(2**20 * 64, np.float32)), 64),
                      "label": pa.array(np.zeros(2**20, np.int64)),
                      "filename": pa.array(np.full(2**20, "x", dtype=object))})
    sink = pa.BufferOutputStream()
    groups = dataperf_files.MAX_PARQUET_VALUES // (2**20 * 64) + 1
    with pq.ParquetWriter(sink, block.schema, compression="zstd") as writer:
        for _ in range(groups):
            writer.write_table(block)
    train = sink.getvalue().to_pybytes()
    assert len(train) < 2**20
    problem = refused(settings, debugging_files(train))
    assert problem.startswith("task t1 (t1_train_0.3_4.parquet): t1_train_0.3_4.parquet: ")
    assert f"{groups * 2**20:,} rows" in problem and "at most" in problem


def test_the_packing_ratio_is_checked_over_the_whole_archive(settings):
    """300 members of 1 MiB of zeros each: every member is small, the archive is a bomb."""
    data = zipped({f"embeddings/part{i}.parquet": bytes(2**20) for i in range(300)})
    assert "times larger than it is packed" in refused(settings, data)


@pytest.mark.parametrize("files, expected", [
    ({"embeddings/" + "n" * 300 + ".parquet": b"x"}, "longer than 255 bytes"),
    ({"a.parquet": b"1", "a.parquet/b.parquet": b"2"}, "of the same name"),
    ({"x/../../escape.parquet": b"1"}, "'..'"),
])
def test_odd_member_names_are_a_problem_naming_the_member(settings, files, expected):
    assert expected in refused(settings, files)


def test_a_member_given_twice_is_a_problem(settings):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        archive.writestr("a.parquet", b"1")
        archive.writestr("a.parquet", b"2")
    assert "a second file" in refused(settings, buffer.getvalue())


def test_a_full_disk_is_a_problem_naming_the_member(tmp_path, monkeypatch):
    real_open = open

    def full_disk(path, mode="r", *args, **kwargs):
        if "x" in mode or "w" in mode:
            raise OSError(28, "No space left on device")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", full_disk)
    with pytest.raises(ValueError, match=r"'a.parquet' cannot be written: No space left on device"):
        dataset_upload.unpack(zipped({"a.parquet": b"1"}), tmp_path)


def test_a_check_over_its_memory_ends_its_child_not_the_app():
    with pytest.raises(BoundedRunError, match="memory"):
        run_bounded(np.ones, (2**31,), memory_bytes=1 * 2**30)
    assert run_bounded(sum, [1, 2, 3]) == 6


# ---- run folders -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["..", ".", "../x", "/abs", "a/../../b", ".hidden", "", "manifest.json"])
def test_create_run_refuses_odd_file_names_and_leaves_nothing(settings, name):
    with pytest.raises(ValueError, match="cannot be stored in a run"):
        pipeline.create_run(small_setup(), "run-1", files={name: b"x"}, check=False, settings=settings)
    assert leftovers(settings) == []


def test_a_run_never_deletes_a_staging_folder_it_did_not_create(settings, tmp_path):
    out = tmp_path / "out" / "run-x"
    other = pipeline.staging_dir(out)
    other.mkdir(parents=True)
    (other / "theirs.txt").write_text("another run's file")
    paths = pipeline.RunPaths(run_id=out.name, final=out, staging=other, data_root=settings.data_dir,
                              source_dir=tmp_path)

    with pytest.raises(FileExistsError, match="another run is writing"):
        pipeline.start_run(paths, "text", type("Setup", (), {"seed": 1, "track": "debugging"})())
    assert (other / "theirs.txt").read_text() == "another run's file"
    assert sorted(p.name for p in other.iterdir()) == ["theirs.txt"]


def test_atomic_writes_reach_the_disk_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    dataperf_files.atomic_write_bytes(tmp_path / "f.json", b"{}")
    assert events == ["fsync", "replace"] and (tmp_path / "f.json").read_bytes() == b"{}"


# ---- configuration ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["1" * 5000, "-" + "9" * 4301, "0x" + "f" * 5000, "!!int '" + "1" * 5000 + "'"])
def test_an_integer_too_long_to_read_is_a_config_error_at_its_line(value):
    with pytest.raises(ConfigError) as raised:
        load_yaml(f"dataset: digits\nseed: {value}\n")
    assert str(raised.value).startswith("task_setup.yml:2:") and "\n" not in str(raised.value)


def test_the_cli_reports_a_huge_integer_in_one_line(tmp_path, capsys):
    path = tmp_path / "task_setup.yml"
    path.write_text(small_setup() + "\nextra: " + "7" * 5000 + "\n")
    assert cli.main(["validate", str(path)]) == cli.EXIT_INVALID
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "a number of 5,000 characters" in err


# ---- fuzzing ---------------------------------------------------------------------------------------------

@FUZZ
@given(st.text(max_size=400) | st.from_regex(r"[a-z]{1,5}: *(\[|\{|&a|\*a|!!\w+|-|[0-9]{1,6}|'|\")?.{0,40}",
                                              fullmatch=True))
def test_fuzz_yaml_loader_raises_only_config_errors(text):
    try:
        load_yaml(text)
    except ConfigError as error:
        assert str(error)


MEMBER_NAMES = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1,
                       max_size=30)
SUBMISSION_TEXT = st.text(alphabet="0123456789\n\r -x,", max_size=300).map(str.encode)
TRAINING_SET_TEXT = st.text(alphabet="ImageID,Confidence\n\r01ab\"", max_size=300).map(str.encode)


@FUZZ
@given(st.sampled_from(["mine.txt", "mine.csv"]), st.binary(max_size=300) | SUBMISSION_TEXT | TRAINING_SET_TEXT)
def test_fuzz_user_file_readers_raise_only_their_errors_naming_the_file(tmp_path_factory, name, data):
    """A submission (train size 50) or a training set (pool a, b, ab): valid, or refused line by line."""
    path = tmp_path_factory.mktemp("user") / name
    path.write_bytes(data)
    try:
        if name == "mine.txt":
            order = read_submission(path, 50)
            assert len(set(order.tolist())) == len(order) and all(0 <= i < 50 for i in order)
        else:
            assert set(read_training_set(path, {"a", "b", "ab"})["ImageID"]) <= {"a", "b", "ab"}
    except (SubmissionError, TrainingSetError) as error:
        assert error.problems and all(problem.startswith(name) for problem in error.problems)


@FUZZ
@given(st.binary(max_size=600) | st.dictionaries(MEMBER_NAMES, st.binary(max_size=50), max_size=4).map(zipped))
def test_fuzz_unpack_raises_only_value_errors_and_writes_only_inside_its_folder(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("fuzz")
    target = root / "target"
    target.mkdir()
    try:
        written = dataset_upload.unpack(data, target)
    except ValueError as error:
        assert str(error)
    else:
        assert all((target / name).resolve().is_relative_to(target.resolve()) for name in written)
    assert [p.name for p in root.iterdir()] == ["target"]


def test_a_training_set_of_millions_of_bad_rows_is_listed_in_bounded_one_line_problems(settings):
    pool = parquet_bytes(pa.table({"ImageID": ["a", "b"], "embedding": [[0.0, 1.0], [1.0, 0.0]]}))
    test = parquet_bytes(pa.table({"ImageID": ["c", "d"], "embedding": [[0.0, 1.0], [1.0, 0.0]],
                                   "Confidence": [0, 1]}))
    rows = "".join(f"{i:x},1\n" for i in range(1_000_000))
    files = {"pool.parquet": pool, "test_sets/t.parquet": test,
             "examples/alpha_example_set_t.csv": b"LabelName,ImageID,Confidence\nx,a,1\n",
             "train_sets/big.csv": ("ImageID,Confidence\n" + rows).encode()}
    check = dataset_upload.upload_dataset("up", zipped(files), settings)
    assert not check.ok and leftovers(settings) == []
    assert check.problems[0] == "train_sets/big.csv:row 1: ImageID '0' is not in the pool"
    hidden = 1_000_000 - 2 - 20  # rows "a" and "b" (10 and 11) are in the pool
    assert check.problems[-1] == f"train_sets/big.csv: ... and {hidden} more problem(s) not shown"
    assert len(check.problems) == 21 and all("\n" not in problem for problem in check.problems)

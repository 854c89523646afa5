"""The DataPerf selection files: official formats written by plain pandas, and the checks on a user's csv."""

from __future__ import annotations

import re
import string
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataperf_appliance.engine.selection import files
from dataperf_appliance.engine.selection.files import TrainingSetError, read_training_set

CORPUS = Path(__file__).parent / "bad_training_sets"
POOL_IDS = {f"img{i}" for i in range(10)}
BUDGET = 5


# --- official formats, written the way other tools write them ---------------------------------

def write_with_pandas(path: Path, ids, embeddings, labels=None) -> None:
    frame = pd.DataFrame({"ImageID": ids, "embedding": [list(map(float, row)) for row in embeddings]})
    if labels is not None:
        frame["Confidence"] = labels
    frame.to_parquet(path)


def test_pool_written_by_pandas_is_read(tmp_path):
    embeddings = np.arange(12, dtype=float).reshape(3, 4)
    write_with_pandas(tmp_path / "pool.parquet", ["a", "b", "c"], embeddings)

    pool = files.read_pool(tmp_path / "pool.parquet", dim=4)

    assert pool.image_ids.tolist() == ["a", "b", "c"]
    np.testing.assert_array_equal(pool.embeddings, embeddings)
    assert pool.labels is None and pool.dim == 4 and len(pool) == 3


@pytest.mark.parametrize("labels", [["0", "1", "1"], [0, 1, 1], [False, True, True], [0.0, 1.0, 1.0]])
def test_test_set_confidence_as_strings_or_numbers(tmp_path, labels):
    write_with_pandas(tmp_path / "test.parquet", ["a", "b", "c"], np.eye(3), labels)

    test = files.read_test_set(tmp_path / "test.parquet", dim=3)

    assert test.labels.tolist() == [0, 1, 1]
    assert test.labels.dtype == np.int64


@pytest.mark.parametrize("labels, message", [(["0", "1", "1.0"], "'1.0'"), ([0, 2, 1], "0 or 1"),
                                             (["0", "1", " 1"], "' 1'"), ([0, None, 1], "missing")])
def test_test_set_bad_confidence_names_the_file(tmp_path, labels, message):
    write_with_pandas(tmp_path / "alpha_test_set_x_3.parquet", ["a", "b", "c"], np.eye(3), labels)
    with pytest.raises(ValueError, match=rf"alpha_test_set_x_3\.parquet: .*{re.escape(message)}"):
        files.read_test_set(tmp_path / "alpha_test_set_x_3.parquet", dim=3)


def test_dim_mismatch_is_a_clear_error_naming_the_file(tmp_path):
    write_with_pandas(tmp_path / "train_emb_256_dataperf.parquet", ["a", "b"], np.ones((2, 4)))
    write_with_pandas(tmp_path / "alpha_test_set_x_256.parquet", ["c", "d"], np.ones((2, 4)), [0, 1])

    with pytest.raises(ValueError, match=r"train_emb_256_dataperf\.parquet: embeddings must have 256 values "
                                         r"\(the setup's dim is 256\).*row 1 has 4"):
        files.read_pool(tmp_path / "train_emb_256_dataperf.parquet", dim=256)
    with pytest.raises(ValueError, match=r"alpha_test_set_x_256\.parquet: embeddings must have 256 values"):
        files.read_test_set(tmp_path / "alpha_test_set_x_256.parquet", dim=256)


def test_ragged_embeddings_name_the_row(tmp_path):
    pd.DataFrame({"ImageID": ["a", "b", "c"], "embedding": [[1.0, 2.0], [1.0, 2.0], [1.0]]}).to_parquet(
        tmp_path / "pool.parquet")
    with pytest.raises(ValueError, match=r"pool\.parquet: .*row 3 has 1"):
        files.read_pool(tmp_path / "pool.parquet")


@pytest.mark.parametrize("frame, message", [
    (pd.DataFrame({"ImageID": ["a"], "emb": [[1.0]]}), "missing column"),
    (pd.DataFrame({"ImageID": ["a", "a"], "embedding": [[1.0], [2.0]]}), "appears 2 times"),
    (pd.DataFrame({"ImageID": ["a"], "embedding": [[float("nan")]]}), "NaN"),
    (pd.DataFrame({"ImageID": pd.Series([], dtype=str), "embedding": pd.Series([], dtype=object)}), "empty"),
])
def test_bad_pool_names_the_file(tmp_path, frame, message):
    frame.to_parquet(tmp_path / "my_pool.parquet")
    with pytest.raises(ValueError, match=rf"my_pool\.parquet: .*{message}"):
        files.read_pool(tmp_path / "my_pool.parquet")


def test_pool_and_test_round_trip_keep_float32(tmp_path):
    embeddings = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    files.write_pool(tmp_path / "pool.parquet", [f"i{k}" for k in range(5)], embeddings)
    files.write_test_set(tmp_path / "test.parquet", [f"t{k}" for k in range(5)], embeddings, [0, 1, 0, 1, 1])

    pool = files.read_pool(tmp_path / "pool.parquet", 3)
    test = files.read_test_set(tmp_path / "test.parquet", 3)
    assert pool.embeddings.dtype == np.float32
    np.testing.assert_array_equal(pool.embeddings, embeddings)
    np.testing.assert_array_equal(test.embeddings, embeddings)
    assert test.labels.tolist() == [0, 1, 0, 1, 1]
    # And plain pandas sees the official columns.
    frame = pd.read_parquet(tmp_path / "test.parquet")
    assert list(frame.columns) == ["ImageID", "embedding", "Confidence"]
    assert len(frame["embedding"].iloc[0]) == 3
    assert files.parquet_rows(tmp_path / "test.parquet") == 5


def test_examples_as_the_reference_ships_them(tmp_path):
    (tmp_path / "alpha_example_set_Cupcake.csv").write_text(
        "LabelName,ImageID,Confidence,OriginalURL,DisplayName\n"
        "/m/03p1r4,04e3345ac6812367,1,https://farm8.staticflickr.com/x.jpg,Cupcake\n"
        "/m/03p1r4,283b1f143f257cb2,1,https://farm3.staticflickr.com/y.jpg,Cupcake\n")
    examples = files.read_examples(tmp_path / "alpha_example_set_Cupcake.csv")
    assert examples["ImageID"].tolist() == ["04e3345ac6812367", "283b1f143f257cb2"]

    files.write_examples(tmp_path / "mine.csv", ["a", "007"], label_name="digit-3", display_name="digit-3")
    written = pd.read_csv(tmp_path / "mine.csv", dtype=str, keep_default_na=False)
    assert list(written.columns) == list(files.EXAMPLE_COLUMNS)
    assert written["ImageID"].tolist() == ["a", "007"] and set(written["Confidence"]) == {"1"}
    assert files.read_examples(tmp_path / "mine.csv")["ImageID"].tolist() == ["a", "007"]


def test_examples_keep_only_positives(tmp_path):
    pd.DataFrame({"ImageID": ["a", "b"], "Confidence": [1, 0]}).to_csv(tmp_path / "ex.csv", index=False)
    assert files.read_examples(tmp_path / "ex.csv")["ImageID"].tolist() == ["a"]
    pd.DataFrame({"ImageID": ["a"], "Confidence": [0]}).to_csv(tmp_path / "none.csv", index=False)
    with pytest.raises(ValueError, match=r"none\.csv: no example positives"):
        files.read_examples(tmp_path / "none.csv")


def test_pool_labels_file(tmp_path):
    pd.DataFrame({"ImageID": ["b", "a", "c"], "Confidence": ["1", "0", "1"]}).to_csv(tmp_path / "l.csv", index=False)
    assert files.read_pool_labels(tmp_path / "l.csv", np.array(["a", "b", "c"], dtype=object)).tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match=r"l\.csv: no label for 1 pool image\(s\), e.g. 'd'"):
        files.read_pool_labels(tmp_path / "l.csv", np.array(["a", "d"], dtype=object))


# --- training sets: what a valid file may look like -------------------------------------------------

def test_training_set_written_is_the_reference_format_and_reads_back(tmp_path):
    path = files.write_training_set(tmp_path / "Cupcake_mine.csv", ["img3", "img1"], np.array([1, 0]))
    assert path.read_text() == "ImageID,Confidence\nimg3,1\nimg1,0\n"
    frame = read_training_set(path, POOL_IDS, BUDGET)
    assert frame["ImageID"].tolist() == ["img3", "img1"]
    assert frame["Confidence"].tolist() == [1, 0] and frame["Confidence"].dtype == np.int64
    # What the reference's Spark reader gets: the header's two columns, labels as the strings '0'/'1'.
    plain = pd.read_csv(path, dtype=str)
    assert list(plain.columns) == ["ImageID", "Confidence"] and plain["Confidence"].tolist() == ["1", "0"]


@pytest.mark.parametrize("data", [
    b"ImageID,Confidence\r\nimg1,1\r\nimg2,0\r\n",  # Windows line ends
    b"\xef\xbb\xbfImageID,Confidence\nimg1,1\nimg2,0\n",  # a byte-order mark
    b"ImageID,Confidence\nimg1,1\nimg2,0",  # no final line end
    b'ImageID,Confidence\n"img1","1"\nimg2,0\n',  # quoted fields
])
def test_training_set_accepted_variants(tmp_path, data):
    (tmp_path / "t.csv").write_bytes(data)
    frame = read_training_set(tmp_path / "t.csv", POOL_IDS, BUDGET)
    assert frame["ImageID"].tolist() == ["img1", "img2"] and frame["Confidence"].tolist() == [1, 0]


def test_budget_none_means_any_number_of_rows(tmp_path):
    path = files.write_training_set(tmp_path / "t.csv", sorted(POOL_IDS), np.arange(10) % 2)
    assert len(read_training_set(path, POOL_IDS, None)) == 10
    with pytest.raises(ValueError, match="budget"):
        read_training_set(path, POOL_IDS, 0)


# --- training sets: the corpus of broken files ------------------------------------------------------

CORPUS_CASES = {
    "wrong_header.csv": "header: expected exactly 'ImageID,Confidence', found 'ImageId,Label'",
    "semicolons.csv": "header: expected exactly 'ImageID,Confidence', found 'ImageID;Confidence'",
    "no_header.csv": "header: expected exactly 'ImageID,Confidence', found 'img1,1' (the header line is missing?)",
    "empty.csv": " the file is empty",
    "header_only.csv": " no rows after the header",
    "unknown_image.csv": "row 3: ImageID 'x9' is not in the pool",
    "label_two.csv": "row 2: Confidence '2' must be 0 or 1",
    "label_float.csv": "row 1: Confidence '1.0' must be 0 or 1",
    "label_missing.csv": "row 2: Confidence '' must be 0 or 1",
    "label_word.csv": "row 1: Confidence 'yes' must be 0 or 1",
    "padded_label.csv": "row 1: Confidence ' 1' must be 0 or 1",
    "duplicate_image.csv": "row 3: duplicate ImageID 'img1' (first on row 1)",
    "over_budget.csv": "row 6: more than 5 rows; the budget is 5 images (the file has 6)",
    "blank_row.csv": "row 2: blank row",
    "three_fields.csv": "row 1: expected 2 fields (ImageID,Confidence), found 3",
    "one_field.csv": "row 2: expected 2 fields (ImageID,Confidence), found 1",
    "empty_image_id.csv": "row 1: ImageID is empty",
    "not_utf8.csv": "row 2: not UTF-8 text (byte 0xff)",
    "nul_byte.csv": "row 2: holds a NUL byte",
}


def test_corpus_is_complete():
    assert sorted(p.name for p in CORPUS.glob("*.csv")) == sorted(CORPUS_CASES)
    assert len(CORPUS_CASES) >= 10


@pytest.mark.parametrize("name", sorted(CORPUS_CASES))
def test_corpus_file_is_refused_naming_file_and_row(name):
    with pytest.raises(TrainingSetError) as caught:
        read_training_set(CORPUS / name, POOL_IDS, BUDGET)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.path == CORPUS / name
    assert f"{name}:{CORPUS_CASES[name]}" in str(error), str(error)
    assert all(problem.startswith(f"{name}:") for problem in error.problems)


def test_every_problem_is_listed_up_to_a_limit(tmp_path):
    rows = "".join(f"zz{i},1\n" for i in range(30))
    (tmp_path / "mine.csv").write_text(f"ImageID,Confidence\nimg1,1\n{rows}")
    with pytest.raises(TrainingSetError) as caught:
        read_training_set(tmp_path / "mine.csv", POOL_IDS, None)
    problems = caught.value.problems
    assert len(problems) == files.MAX_REPORTED_PROBLEMS + 1
    assert problems[0] == "mine.csv:row 2: ImageID 'zz0' is not in the pool"
    assert problems[-1] == "mine.csv: ... and 10 more problem(s) not shown"


def test_huge_file_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "MAX_TRAINING_SET_BYTES", 30)
    (tmp_path / "big.csv").write_text("ImageID,Confidence\nimg1,1\nimg2,0\n")
    with pytest.raises(TrainingSetError, match=r"big\.csv: the file has 33 bytes; a training set may have at most 30"):
        read_training_set(tmp_path / "big.csv", POOL_IDS, None)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_training_set(tmp_path / "nope.csv", POOL_IDS, BUDGET)


_ID_TEXT = st.text(alphabet=string.ascii_letters + string.digits + ' ,"-_.', min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.lists(_ID_TEXT.filter(lambda s: s.strip() == s), min_size=1, max_size=15, unique=True),
       st.data())
def test_round_trip_of_any_ids(ids, draw):
    labels = np.array(draw.draw(st.lists(st.integers(0, 1), min_size=len(ids), max_size=len(ids))))
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = files.write_training_set(Path(folder) / "t.csv", ids, labels)
        frame = read_training_set(path, set(ids), len(ids))
    assert frame["ImageID"].tolist() == ids
    assert frame["Confidence"].tolist() == labels.tolist()

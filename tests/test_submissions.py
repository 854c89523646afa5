"""DataPerf submission files: writing, reading back, and the checks on a user's file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from dataperf_appliance.engine.debugging.submissions import (
    MAX_REPORTED_PROBLEMS,
    MAX_SUBMISSION_BYTES,
    SubmissionError,
    complete_order,
    read_submission,
    read_time_file,
    submission_paths,
    write_submission,
)

TRAIN_SIZE = 200


def test_round_trip(tmp_path):
    order = np.random.default_rng(0).permutation(TRAIN_SIZE)
    path = write_submission(tmp_path / "submissions", "01g317", "knn_shapley", order, 1.25)

    assert path == tmp_path / "submissions" / "01g317_knn_shapley.txt"
    assert path.read_text().splitlines() == [str(i) for i in order]
    time_path = tmp_path / "submissions" / "time_01g317_knn_shapley.txt"
    assert float(time_path.read_text()) == 1.25  # what the reference evaluator does with it
    np.testing.assert_array_equal(read_submission(path, TRAIN_SIZE), order)
    assert read_submission(path, TRAIN_SIZE).dtype == np.int64
    assert read_time_file(time_path) == 1.25
    assert submission_paths(tmp_path / "submissions", "01g317", "knn_shapley") == (path, time_path)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, time_path.name]  # no temporary left


def test_write_replaces_an_older_submission(tmp_path):
    write_submission(tmp_path, "t", "m", np.arange(5), 1.0)
    path = write_submission(tmp_path, "t", "m", np.array([4, 3]), 2.0)
    np.testing.assert_array_equal(read_submission(path, 5), [4, 3])
    assert read_time_file(tmp_path / "time_t_m.txt") == 2.0


@pytest.mark.parametrize("order, seconds, message", [
    (np.array([], dtype=int), 1.0, "non-empty"),
    (np.array([0.0, 1.0]), 1.0, "integer"),
    (np.array([[0, 1]]), 1.0, "1-D"),
    (np.array([0, -1]), 1.0, "negative"),
    (np.array([0, 1, 0]), 1.0, "more than once"),
    (np.array([0, 1]), -1.0, "seconds"),
    (np.array([0, 1]), float("nan"), "seconds"),
])
def test_write_refuses_a_bad_order_or_time(tmp_path, order, seconds, message):
    with pytest.raises(ValueError, match=message):
        write_submission(tmp_path, "t", "m", order, seconds)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("data_id, method", [("../up", "m"), ("t", "a/b"), ("", "m"), ("t", ".hidden")])
def test_names_that_are_not_file_name_parts_are_refused(tmp_path, data_id, method):
    with pytest.raises(ValueError, match="file name"):
        write_submission(tmp_path, data_id, method, np.arange(3), 1.0)


@pytest.mark.parametrize("content, expected", [
    ("3\n1\n2\n", [3, 1, 2]),
    ("3\n1\n2", [3, 1, 2]),              # no final line end
    ("3\r\n1\r\n2\r\n", [3, 1, 2]),      # Windows line ends
    ("\ufeff3\n1\n", [3, 1]),            # a byte-order mark
    (" 3 \n\t1\n", [3, 1]),              # spaces around an index
    ("007\n", [7]),                      # leading zeros
    ("5\n", [5]),                        # a partial order of one line
])
def test_valid_files_that_are_accepted(tmp_path, content, expected):
    path = tmp_path / "mine.txt"
    path.write_bytes(content.encode("utf-8"))
    np.testing.assert_array_equal(read_submission(path, 10), expected)


# Each bad file: its content, and the one problem expected (file:line: message).
BAD_FILES = {
    "out_of_range": ("0\n1\n250\n", r"mine\.txt:3: index 250 is out of range 0\.\.199"),
    "negative": ("0\n-1\n", r"mine\.txt:2: index -1 is out of range 0\.\.199"),
    "float": ("0\n3.0\n", r"mine\.txt:2: '3\.0' is not an integer"),
    "word": ("0\n1\n2\nabc\n", r"mine\.txt:4: 'abc' is not an integer"),
    "plus_sign": ("+4\n", r"mine\.txt:1: '\+4' is not an integer"),
    "exponent": ("1e2\n", r"mine\.txt:1: '1e2' is not an integer"),
    "two_on_a_line": ("1 2\n", r"mine\.txt:1: '1 2' is not an integer"),
    "non_ascii_digit": ("\u0663\n", r"mine\.txt:1: '\u0663' is not an integer"),
    "duplicate": ("12\n5\n12\n", r"mine\.txt:3: duplicate index 12 \(first on line 1\)"),
    "blank_line_in_the_middle": ("1\n\n2\n", r"mine\.txt:2: blank line"),
    "two_final_line_ends": ("1\n2\n\n", r"mine\.txt:3: blank line"),
    "huge_number": ("9" * 5000 + "\n", r"mine\.txt:1: index 9{40}\.\.\. is out of range"),
    "empty": ("", r"mine\.txt: the file is empty"),
    "only_line_ends": ("\n\n", r"mine\.txt: the file is empty"),
    "too_many_lines": ("".join(f"{i}\n" for i in range(TRAIN_SIZE)) + "0\n",
                       r"mine\.txt:201: more than 200 lines"),
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_each_bad_file_names_the_line_at_fault(tmp_path, kind):
    content, expected = BAD_FILES[kind]
    path = tmp_path / "mine.txt"
    path.write_text(content, encoding="utf-8", newline="")
    with pytest.raises(SubmissionError) as caught:
        read_submission(path, TRAIN_SIZE)
    assert len(caught.value.problems) == 1, caught.value.problems
    assert re.match(expected, str(caught.value)), str(caught.value)
    assert caught.value.path == path


def test_bytes_that_are_not_utf8_name_their_line(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_bytes(b"1\n2\n\xff\n")
    with pytest.raises(SubmissionError, match=r"mine\.txt:3: not UTF-8 text"):
        read_submission(path, TRAIN_SIZE)


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "mine.txt"
    with path.open("wb") as handle:
        handle.truncate(MAX_SUBMISSION_BYTES + 1)  # sparse: nothing is really written
    monkeypatch.setattr(type(path), "read_bytes", lambda self: pytest.fail("the file was read"))
    with pytest.raises(SubmissionError, match=r"mine\.txt: the file has 10,485,761 bytes"):
        read_submission(path, TRAIN_SIZE)


def test_problems_are_collected_one_per_line_and_capped(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("0\nx\n250\n0\n\n" + "y\n" * 30)
    with pytest.raises(SubmissionError) as caught:
        read_submission(path, TRAIN_SIZE)
    problems = caught.value.problems
    assert problems[:4] == [
        "mine.txt:2: 'x' is not an integer (write the index with the digits 0-9 only)",
        "mine.txt:3: index 250 is out of range 0..199",
        "mine.txt:4: duplicate index 0 (first on line 1)",
        "mine.txt:5: blank line; one index per line, and only the last line may end the file",
    ]
    assert len(problems) == MAX_REPORTED_PROBLEMS + 1
    assert problems[-1] == "mine.txt: ... and 14 more problem(s) not shown"
    lines = [int(p.split(":")[1]) for p in problems[:-1]]
    assert lines == sorted(set(lines))  # one problem per line, in file order


def test_missing_submission_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_submission(tmp_path / "absent.txt", TRAIN_SIZE)


@pytest.mark.parametrize("train_size", [0, -3, 2.5, True])
def test_train_size_must_be_a_positive_integer(tmp_path, train_size):
    path = tmp_path / "mine.txt"
    path.write_text("0\n")
    with pytest.raises(ValueError, match="train_size"):
        read_submission(path, train_size)


# --- time files ---

@pytest.mark.parametrize("content, expected", [
    ("1.25", 1.25), ("1.25\n", 1.25), (" 3 \r\n", 3.0), ("0", 0.0), ("2e-3", 0.002),
])
def test_time_file_values(tmp_path, content, expected):
    path = tmp_path / "time_t_m.txt"
    path.write_text(content, newline="")
    assert read_time_file(path) == expected


def test_missing_time_file_is_none(tmp_path):
    assert read_time_file(tmp_path / "time_t_m.txt") is None


@pytest.mark.parametrize("content, message", [
    ("", "empty"),
    ("fast", r"time_t_m\.txt:1: 'fast' is not a number of seconds"),
    ("-1", r"time_t_m\.txt:1: '-1' is not a finite number of seconds >= 0"),
    ("nan", "not a finite number"),
    ("inf", "not a finite number"),
    ("1.0\n2.0\n", r"time_t_m\.txt:2: expected one number"),
    ("1" * 2000, "bytes"),
])
def test_bad_time_files(tmp_path, content, message):
    path = tmp_path / "time_t_m.txt"
    path.write_text(content)
    with pytest.raises(SubmissionError, match=message):
        read_time_file(path)


# --- completing a partial order ---

def test_complete_order_appends_the_missing_rows_in_ascending_order():
    completed = complete_order(np.array([7, 2, 5]), 8)
    np.testing.assert_array_equal(completed, [7, 2, 5, 0, 1, 3, 4, 6])
    assert completed.dtype == np.int64


def test_complete_order_keeps_a_full_order_and_completes_an_empty_one():
    full = np.random.default_rng(1).permutation(6)
    np.testing.assert_array_equal(complete_order(full, 6), full)
    np.testing.assert_array_equal(complete_order(np.array([], dtype=np.int64), 3), [0, 1, 2])


@pytest.mark.parametrize("partial, message", [
    (np.array([0, 8]), "outside"),
    (np.array([-1]), "outside"),
    (np.array([1, 1]), "more than once"),
    (np.array([0.0]), "integer"),
])
def test_complete_order_refuses_what_read_submission_would_refuse(partial, message):
    with pytest.raises(ValueError, match=message):
        complete_order(partial, 8)


def test_a_submission_error_survives_a_worker_process():
    """Raised in a worker (a cell of a run with repeats), the error comes back whole, with its problems."""
    import pickle

    error = pickle.loads(pickle.dumps(SubmissionError(Path("mine.txt"), ["mine.txt:3: duplicate index 1"])))
    assert isinstance(error, SubmissionError) and error.problems == ["mine.txt:3: duplicate index 1"]
    assert str(error) == "mine.txt:3: duplicate index 1" and error.path == Path("mine.txt")

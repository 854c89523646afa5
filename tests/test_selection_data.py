"""The embedded digits selection dataset: layout, pool/test disjointness, balance, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dataperf_appliance.engine.datasets import digits
from dataperf_appliance.engine.selection import data, files

TASKS = ["digit-3", "even-odd"]
TEST_SIZE = 80


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits-selection") / "seed-0"
    return folder, data.generate_selection_dataset(folder, TASKS, seed=0, test_size=TEST_SIZE)


def test_layout_mirrors_the_reference_data_dir(generated):
    folder, paths = generated
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert names == sorted([
        "embeddings/train_emb_128_dataperf.parquet",
        "test_sets/alpha_test_set_digit-3_128.parquet", "test_sets/alpha_test_set_even-odd_128.parquet",
        "examples/alpha_example_set_digit-3.csv", "examples/alpha_example_set_even-odd.csv",
        "train_sets/random_500_digit-3.csv", "train_sets/random_500_even-odd.csv",
        "labels/pool_labels_digit-3.csv", "labels/pool_labels_even-odd.csv",
    ])
    assert set(paths) == set(TASKS)
    assert set(paths["digit-3"]) == {"pool", "test", "examples", "labels", "train_csv"}


def test_pool_and_test_sets_are_disjoint_and_balanced(generated):
    _, paths = generated
    pool = files.read_pool(paths["digit-3"]["pool"], data.DIGITS_DIM)
    held_out = set(digits.image_ids()) - set(pool.image_ids)
    assert len(pool) + len(held_out) == 1797
    for task in TASKS:
        test = files.read_test_set(paths[task]["test"], data.DIGITS_DIM)
        assert len(test) == TEST_SIZE
        assert set(test.image_ids) <= held_out  # never a pool image
        assert test.labels.sum() == TEST_SIZE // 2
        np.testing.assert_array_equal(test.labels, data.pool_labels(task, test.image_ids.tolist()))
        index = [int(i.split("-")[1]) for i in test.image_ids]
        np.testing.assert_array_equal(test.embeddings, digits.embeddings()[index])


def test_pool_is_stratified_by_digit(generated):
    _, paths = generated
    pool = files.read_pool(paths["digit-3"]["pool"])
    digit_of_image = np.select([digits.positive_mask(f"digit-{k}") for k in range(10)], list(range(10)))
    rows = [int(image_id.split("-")[1]) for image_id in pool.image_ids]
    share = np.bincount(digit_of_image[rows], minlength=10) / len(rows)
    assert np.all(np.abs(share - 0.1) < 0.01)


def test_examples_labels_and_random_set(generated):
    _, paths = generated
    pool = files.read_pool(paths["digit-3"]["pool"])
    pool_ids = set(pool.image_ids)
    random_sets = []
    for task in TASKS:
        examples = files.read_examples(paths[task]["examples"])
        assert len(examples) == data.DEFAULT_EXAMPLES
        assert set(examples["ImageID"]) <= pool_ids
        assert data.pool_labels(task, examples["ImageID"].tolist()).tolist() == [1] * data.DEFAULT_EXAMPLES
        raw = pd.read_csv(paths[task]["examples"], dtype=str)
        assert list(raw.columns) == list(files.EXAMPLE_COLUMNS)

        labels = files.read_pool_labels(paths[task]["labels"], pool.image_ids)
        np.testing.assert_array_equal(labels, data.pool_labels(task, pool.image_ids.tolist()))

        train = files.read_training_set(paths[task]["train_csv"], pool_ids, None)
        assert len(train) == data.RANDOM_TRAIN_SIZE
        np.testing.assert_array_equal(train["Confidence"], data.pool_labels(task, train["ImageID"].tolist()))
        random_sets.append(train["ImageID"].tolist())
    assert random_sets[0] == random_sets[1]  # one random draw for every task, as the reference's one file


def test_generation_is_idempotent_and_deterministic(generated, tmp_path):
    folder, paths = generated
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    mtimes = {p: p.stat().st_mtime_ns for p in before}
    data.generate_selection_dataset(folder, TASKS, seed=0, test_size=TEST_SIZE)
    assert {p: p.stat().st_mtime_ns for p in before} == mtimes  # nothing rewritten

    other = tmp_path / "again"
    data.generate_selection_dataset(other, TASKS, seed=0, test_size=TEST_SIZE)
    assert {p.relative_to(folder): b for p, b in before.items()} == {
        p.relative_to(other): p.read_bytes() for p in other.rglob("*") if p.is_file()}


def test_seeds_differ(tmp_path):
    a, _ = data.split_pool(0)
    b, _ = data.split_pool(1)
    assert not np.array_equal(a, b)


def test_another_test_size_redraws_the_test_set(tmp_path):
    paths = data.generate_selection_dataset(tmp_path, ["digit-3"], seed=0, test_size=40)
    assert files.parquet_rows(paths["digit-3"]["test"]) == 40
    data.generate_selection_dataset(tmp_path, ["digit-3"], seed=0, test_size=60)
    assert files.parquet_rows(paths["digit-3"]["test"]) == 60


def test_size_problems():
    assert data.size_problems("digit-3", train_size=100, test_size=100) == []
    assert data.size_problems("digit-3", train_size=100, test_size=data.max_test_size("digit-3")) == []
    [(field, message)] = data.size_problems("digit-3", train_size=100, test_size=data.max_test_size("digit-3") + 1)
    assert field == "test_size" and "at most" in message
    assert data.size_problems("digit-3", train_size=5000, test_size=10)[0][0] == "train_size"
    assert data.size_problems("cat", train_size=1, test_size=2)[0][0] == "tasks"
    with pytest.raises(ValueError, match="at most"):
        data.generate_selection_dataset(__import__("pathlib").Path("/nonexistent"), ["digit-3"], seed=0,
                                        test_size=10_000)


def test_pool_labels():
    assert data.pool_labels("digit-0", ["digits-0000", "digits-0001"]).tolist() == [1, 0]
    with pytest.raises(ValueError, match="not a digits image id"):
        data.pool_labels("digit-0", ["x"])
    with pytest.raises(ValueError, match="unknown digits task"):
        data.pool_labels("digit-x", ["digits-0000"])


def test_folder_paths_stay_inside(tmp_path):
    with pytest.raises(ValueError, match="inside the dataset folder"):
        data.inside(tmp_path, "../secret.parquet", "emb_file")
    with pytest.raises(ValueError, match="inside the dataset folder"):
        data.inside(tmp_path, "/etc/passwd", "emb_file")
    with pytest.raises(ValueError, match="must be 'digits' or the name of a folder"):
        data.dataset_dir(tmp_path, "../x")
    assert data.dataset_dir(tmp_path, "digits", seed=3) == tmp_path / "datasets" / "digits-selection" / "seed-3"

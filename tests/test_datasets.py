"""Datasets: the embedded digits, the synthetic one, and official DataPerf files read unchanged."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from dataperf_appliance.engine import datasets
from dataperf_appliance.engine.datasets import digits, synthetic
from dataperf_appliance.engine.datasets.dataperf_files import read_embedding_parquet

SPEC = datasets.DebuggingTaskSpec("digit-3", train_size=200, noise_level=0.3, val_size=40, test_size=100)


def test_digits_task_files_are_in_the_dataperf_debugging_format(tmp_path):
    files = datasets.prepare_debugging_task(tmp_path, "digits", SPEC, seed=0)
    folder = tmp_path / "datasets" / "digits" / "seed-0" / "train-200-val-40-test-100"
    assert files["train"] == folder / "embeddings" / "digit-3_train_0.3_200.parquet"
    assert files["val"] == folder / "embeddings" / "digit-3_val_40.parquet"
    assert files["test"] == folder / "embeddings" / "digit-3_test_100.parquet"
    assert files["groundtruth"] == folder / "data" / "dataset_digit-3_train.csv"

    train = pd.read_parquet(files["train"])
    assert list(train.columns) == ["encoding", "label", "filename"]
    assert len(train) == 200 and len(train["encoding"].iloc[0]) == digits.EMBEDDING_DIM
    truth = pd.read_csv(files["groundtruth"])
    assert list(truth.columns) == ["ImageID", "hv_label"]
    assert truth["ImageID"].tolist() == train["filename"].tolist()
    # exactly round(0.3 * 200) labels flipped, and the ground truth is balanced
    assert int((truth["hv_label"].to_numpy() != train["label"].to_numpy()).sum()) == 60
    assert truth["hv_label"].sum() == 100
    for split, size in (("val", 40), ("test", 100)):
        frame = pd.read_parquet(files[split])
        assert len(frame) == size and frame["label"].sum() == size // 2
    ids = [set(pd.read_parquet(files[s])["filename"]) for s in ("train", "val", "test")]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])


def test_draws_of_other_sizes_keep_their_own_files(tmp_path):
    # A train_size sweep, then a run at one of its sizes: that run reads exactly the files of its own draw
    # (DataPerf names the ground truth, the val and the test file without the train size).
    larger = dataclasses.replace(SPEC, train_size=220)
    first = datasets.prepare_debugging_task(tmp_path, "digits", SPEC, seed=0)
    contents = {name: path.read_bytes() for name, path in first.items()}
    datasets.prepare_debugging_task(tmp_path, "digits", larger, seed=0)
    again = datasets.prepare_debugging_task(tmp_path, "digits", SPEC, seed=0)
    assert {name: path.read_bytes() for name, path in again.items()} == contents
    task = datasets.load_debugging_task(again, SPEC)
    assert len(task.y_train) == 200


def test_ground_truth_labels_are_the_real_digits(tmp_path):
    files = datasets.prepare_debugging_task(tmp_path, "digits", SPEC, seed=0)
    truth = pd.read_csv(files["groundtruth"])
    _, target = digits._digits()
    index = truth["ImageID"].str.removeprefix("digits-").astype(int)
    assert ((target[index] == 3).astype(int) == truth["hv_label"]).all()


def test_embeddings_are_a_deterministic_function_of_the_image():
    images, _ = digits._digits()
    first = digits.embed(images[:5])
    assert np.array_equal(first, digits.embed(images[:5]))
    assert np.array_equal(first[2], digits.embed(images[2:3])[0])


def test_generation_is_reproducible_and_seed_dependent(tmp_path):
    a = datasets.prepare_debugging_task(tmp_path / "a", "digits", SPEC, seed=7)
    b = datasets.prepare_debugging_task(tmp_path / "b", "digits", SPEC, seed=7)
    c = datasets.prepare_debugging_task(tmp_path / "c", "digits", SPEC, seed=8)
    read = lambda files: pd.read_parquet(files["train"])  # noqa: E731
    assert read(a).equals(read(b))
    assert not read(a)["filename"].equals(read(c)["filename"])


@pytest.mark.parametrize("data_id, sizes, field", [
    ("digit-3", (200, 40, 100), None),
    ("digit-0", (300, 100, 500), "train_size"),     # 450 positives needed, 178 exist
    ("even-odd", (300, 100, 500), None),            # DataPerf's full sizes fit
    ("digit-12", (10, 10, 10), "data_id"),
])
def test_size_problems_of_the_digits(data_id, sizes, field):
    problems = datasets.size_problems("digits", data_id, dict(zip(("train_size", "val_size", "test_size"), sizes)),
                                      None)
    assert [p[0] for p in problems] == ([] if field is None else [field])


def test_sizes_the_pool_cannot_give_fail_before_any_file_is_written(tmp_path):
    spec = datasets.DebuggingTaskSpec("digit-0", 300, 0.3, 100, 500)
    with pytest.raises(ValueError, match="positive"):
        datasets.prepare_debugging_task(tmp_path, "digits", spec, seed=0)
    assert not list(tmp_path.rglob("*.parquet"))


def test_synthetic_dataset_has_the_dimension_asked(tmp_path):
    spec = datasets.DebuggingTaskSpec("synthetic-4", 500, 0.2, 100, 200)
    files = datasets.prepare_debugging_task(tmp_path, "synthetic", spec, seed=1, dim=32)
    X, y, ids = read_embedding_parquet(files["train"])
    assert X.shape == (500, 32) and set(np.unique(y)) == {0, 1}
    assert datasets.size_problems("synthetic", "synth", {"train_size": 5, "val_size": 5, "test_size": 5}, None)
    assert synthetic.is_task_id("synthetic-0")


def write_official_task(folder, data_id, noise_token, n_train=30, n_val=10, n_test=12, dim=2048):
    """DataPerf files written with plain pandas, independently of our generator."""
    rng = np.random.default_rng(0)
    emb = folder / "embeddings"
    emb.mkdir(parents=True)
    (folder / "data").mkdir()

    def frame(n, prefix):
        return pd.DataFrame({"encoding": [rng.normal(size=dim).astype(np.float32).tolist() for _ in range(n)],
                             "label": rng.integers(0, 2, size=n), "filename": [f"{prefix}{i:03d}" for i in range(n)]})

    train = frame(n_train, "img")
    train.to_parquet(emb / f"{data_id}_train_{noise_token}_{n_train}.parquet")
    frame(n_val, "val").to_parquet(emb / f"{data_id}_val_{n_val}.parquet")
    frame(n_test, "test").to_parquet(emb / f"{data_id}_test_{n_test}.parquet")
    truth = train[["filename"]].rename(columns={"filename": "ImageID"})
    truth["hv_label"] = 1 - train["label"]  # every label wrong: easy to check
    truth.iloc[::-1].to_csv(folder / "data" / f"dataset_{data_id}_train.csv", index=False)  # any row order
    return train


@pytest.mark.parametrize("noise_level, token", [(0.3, "0.3"), (0.0, "0.0"), (0.0, "0")])
def test_official_files_are_read_unchanged(tmp_path, noise_level, token):
    train = write_official_task(tmp_path / "datasets" / "official", "01g317", token)
    spec = datasets.DebuggingTaskSpec("01g317", 30, noise_level, 10, 12)
    assert datasets.size_problems("official", "01g317", {"train_size": 30, "val_size": 10, "test_size": 12},
                                  tmp_path, noise_level=noise_level) == []
    task = datasets.load_debugging_task(datasets.prepare_debugging_task(tmp_path, "official", spec, seed=0), spec)
    assert task.X_train.shape == (30, 2048)
    assert task.train_ids.tolist() == train["filename"].tolist()
    assert np.array_equal(task.y_train, train["label"].to_numpy())
    assert task.mislabeled.all()
    assert [d["name"] for d in datasets.list_datasets(tmp_path)][-1] == "official"


def test_official_folder_missing_a_file_is_named(tmp_path):
    write_official_task(tmp_path / "datasets" / "official", "01g317", "0.3")
    problems = datasets.size_problems("official", "01g317", {"train_size": 30, "val_size": 11, "test_size": 12},
                                      tmp_path, noise_level=0.3)
    assert problems == [("val_size", "dataset 'official' has no file embeddings/01g317_val_11.parquet")]


def test_string_labels_are_accepted_like_integers(tmp_path):
    frame = pd.DataFrame({"encoding": [[0.0, 1.0], [1.0, 0.0]], "label": ["0", "1"], "filename": ["a", "b"]})
    frame.to_parquet(tmp_path / "x.parquet")
    _, labels, _ = read_embedding_parquet(tmp_path / "x.parquet")
    assert labels.tolist() == [0, 1]
    frame.assign(label=["0", "2"]).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="0 or 1"):
        read_embedding_parquet(tmp_path / "bad.parquet")

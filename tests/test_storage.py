"""The S3 sync of the data root, against a real moto server reached over HTTP (AWS_ENDPOINT_URL)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import time
import uuid
from pathlib import Path

import boto3
import pytest

from dataperf_appliance.settings import DEFAULT_S3_PREFIX, Settings
from dataperf_appliance.storage import (DatasetListing, RunListing, Storage, StorageError, SyncReport,
                                        open_storage)

PREFIX = DEFAULT_S3_PREFIX


# ---- fixtures and helpers ------------------------------------------------------------------------

@pytest.fixture
def s3(aws_env):
    """A plain boto3 client on the moto server, to set up and inspect the bucket from outside."""
    return boto3.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"])


@pytest.fixture
def bucket(s3) -> str:
    """A new, empty bucket for this test."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    return name


def settings_for(root: Path, bucket: str | None) -> Settings:
    return Settings(data_dir=root, s3_bucket=bucket, s3_prefix=PREFIX)


def write(path: Path, content: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def make_run(root: Path, run_id: str, *, state: str = "success") -> Path:
    """A published run folder with the files of the run layout (DESIGN.md)."""
    folder = root / "runs" / run_id
    write(folder / "task_setup.yml", f"run: {run_id}\n")
    write(folder / "results.json", json.dumps({"run_id": run_id, "tasks": {"t1": 0.5}}))
    write(folder / "plots" / "fraction_fixes.png", b"\x89PNG\r\n" + os.urandom(2048))
    write(folder / "submissions" / "random" / "t1.txt", "\n".join(str(i) for i in range(100)))
    write(folder / "manifest.json", json.dumps({"run_id": run_id, "state": state}))
    return folder


def make_dataset(root: Path, name: str) -> Path:
    folder = root / "datasets" / name
    write(folder / "embeddings" / "a_train_0.3_100.parquet", os.urandom(4096))
    write(folder / "groundtruth" / "dataset_a_train.csv", "ImageID,hv_label\nx,1\n")
    return folder


def tree(folder: Path) -> dict[str, bytes]:
    """Relative path -> content of every file under `folder` (hidden ones included, to catch leftovers)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def bucket_tree(s3, bucket: str, key_prefix: str = "") -> dict[str, bytes]:
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix)
            for o in page.get("Contents", [])]
    return {key[len(key_prefix):]: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def record_calls(storage: Storage, operation: str) -> list[str]:
    """The keys of every `operation` call the storage's client makes from now on (once per call, not per retry)."""
    keys: list[str] = []
    storage.client.meta.events.register(f"provide-client-params.s3.{operation}",
                                        lambda params, **_: keys.append(params["Key"]))
    return keys


# ---- upload --------------------------------------------------------------------------------------

def test_upload_run_and_dataset_mirror_the_data_root_with_sha256_metadata(tmp_path, s3, bucket):
    run = make_run(tmp_path, "20260101-000000-aaaaaa")
    dataset = make_dataset(tmp_path, "mine")
    storage = open_storage(settings_for(tmp_path, bucket))
    assert storage.enabled

    run_report = storage.upload_run(run.name)
    dataset_report = storage.upload_dataset("mine")

    assert bucket_tree(s3, bucket, f"{PREFIX}runs/{run.name}/") == tree(run)
    assert bucket_tree(s3, bucket, f"{PREFIX}datasets/mine/") == tree(dataset)
    assert len(run_report.uploaded) == 5 and run_report.skipped == ()
    assert run_report.bytes == sum(len(content) for content in tree(run).values())
    assert len(dataset_report.uploaded) == 2
    head = s3.head_object(Bucket=bucket, Key=f"{PREFIX}runs/{run.name}/plots/fraction_fixes.png")
    assert head["Metadata"]["sha256"] == hashlib.sha256((run / "plots" / "fraction_fixes.png").read_bytes()).hexdigest()


def test_second_upload_skips_unchanged_files_and_uploads_changed_and_new_ones(tmp_path, bucket):
    run = make_run(tmp_path, "run-1")
    storage = Storage.from_settings(settings_for(tmp_path, bucket))
    storage.upload_run("run-1")

    again = storage.upload_run("run-1")
    assert again.uploaded == () and len(again.skipped) == 5 and again.bytes == 0

    # Same size, other content: found by checksum, not by size.
    write(run / "task_setup.yml", "run: RUN-1\n")
    write(run / "plots" / "new.png", b"png")
    puts = record_calls(storage, "PutObject")
    changed = storage.upload_run("run-1")
    assert sorted(changed.uploaded) == [f"{PREFIX}runs/run-1/plots/new.png", f"{PREFIX}runs/run-1/task_setup.yml"]
    assert sorted(puts) == sorted(changed.uploaded)
    assert len(changed.skipped) == 4


def test_manifest_is_uploaded_last(tmp_path, bucket):
    make_run(tmp_path, "run-order")
    write(tmp_path / "runs" / "run-order" / "zzz" / "last-by-name.txt", "z")
    storage = Storage.from_settings(settings_for(tmp_path, bucket))
    puts = record_calls(storage, "PutObject")

    storage.upload_run("run-order")

    assert len(puts) == 6
    assert puts[-1] == f"{PREFIX}runs/run-order/manifest.json"


def test_object_whose_etag_is_not_an_md5_is_compared_by_its_sha256_metadata(tmp_path, s3, bucket):
    """Multipart (or SSE-KMS) objects have no MD5 ETag: the stored sha256 decides, with one HEAD."""
    content = os.urandom(1000)
    make_dataset(tmp_path, "mp")
    write(tmp_path / "datasets" / "mp" / "big.bin", content)
    key = f"{PREFIX}datasets/mp/big.bin"
    sha256 = hashlib.sha256(content).hexdigest()
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, Metadata={"sha256": sha256})
    part = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=content)
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert "-" in s3.head_object(Bucket=bucket, Key=key)["ETag"]
    storage = Storage.from_settings(settings_for(tmp_path, bucket))
    heads = record_calls(storage, "HeadObject")

    report = storage.upload_dataset("mp")

    assert key in report.skipped and key not in report.uploaded
    assert heads == [key]


def test_staging_folders_and_hidden_files_are_never_uploaded(tmp_path, s3, bucket):
    make_run(tmp_path, "run-done")
    staging = make_run(tmp_path, ".run-wip.partial")
    write(tmp_path / "runs" / "run-done" / ".manifest.json.abc.tmp", "half")
    write(tmp_path / "runs" / ".run-x.download-123" / "manifest.json", "{}")
    storage = Storage.from_settings(settings_for(tmp_path, bucket))

    storage.upload_tree(tmp_path)

    keys = set(bucket_tree(s3, bucket))
    assert keys == {f"{PREFIX}runs/run-done/{name}" for name in tree(tmp_path / "runs" / "run-done")
                    if not name.startswith(".")}
    with pytest.raises(ValueError, match="hidden"):
        storage.upload_tree(staging)
    assert [listing.run_id for listing in storage.list_runs()] == ["run-done"]


# ---- a fresh instance on the same bucket -----------------------------------------------------------

def test_fresh_empty_data_root_lists_and_opens_every_earlier_run(tmp_path, bucket):
    old_root, new_root = tmp_path / "old", tmp_path / "new"
    ok, failed = make_run(old_root, "20260101-000000-aaaaaa"), make_run(old_root, "20260102-000000-bbbbbb",
                                                                        state="failed")
    dataset = make_dataset(old_root, "mine")
    old = Storage.from_settings(settings_for(old_root, bucket))
    old.upload_run(ok.name), old.upload_run(failed.name), old.upload_dataset("mine")

    new = Storage.from_settings(settings_for(new_root, bucket))
    assert new.list_runs() == [RunListing(ok.name, "s3", "success"), RunListing(failed.name, "s3", "failed")]
    assert new.list_datasets() == [DatasetListing("mine", "s3")]

    opened = new.download_run(ok.name)
    assert opened == new_root / "runs" / ok.name and tree(opened) == tree(ok)
    assert sorted(p.name for p in (new_root / "runs").iterdir()) == [ok.name]  # no download folder left
    gets = record_calls(new, "GetObject")
    assert new.download_run(ok.name) == opened and gets == []  # already on disk: no request

    assert new.restore_history() == [failed.name]
    assert tree(new_root / "runs" / failed.name) == tree(failed)
    assert new.restore_history() == []
    assert new.list_runs() == [RunListing(ok.name, "both", "success"), RunListing(failed.name, "both", "failed")]

    assert new.download_dataset("mine") == new_root / "datasets" / "mine"
    assert tree(new_root / "datasets" / "mine") == tree(dataset)
    gets.clear()
    assert new.download_dataset("mine") is not None and gets == []  # unchanged files are not fetched again
    assert new.download_dataset("absent") is None
    assert new.list_datasets() == [DatasetListing("mine", "both")]


def test_run_whose_upload_is_incomplete_is_listed_but_not_downloaded(tmp_path, s3, bucket):
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}runs/run-half/results.json", Body=b"{}")
    storage = Storage.from_settings(settings_for(tmp_path, bucket))

    assert storage.list_runs() == [RunListing("run-half", "s3", None)]
    with pytest.raises(StorageError, match="no manifest.json"):
        storage.download_run("run-half")
    assert storage.restore_history() == []
    assert not (tmp_path / "runs" / "run-half").exists()
    with pytest.raises(StorageError, match="neither on disk nor in"):
        storage.download_run("run-nowhere")


# ---- disk only -----------------------------------------------------------------------------------

def test_without_a_bucket_disk_alone_is_the_store(tmp_path, aws_env):
    run = make_run(tmp_path, "run-local")
    make_dataset(tmp_path, "mine")
    storage = Storage.from_settings(settings_for(tmp_path, None))

    assert not storage.enabled and storage.client is None
    assert storage.upload_run("run-local") == SyncReport()
    assert storage.upload_tree(tmp_path) == SyncReport()
    assert storage.list_runs() == [RunListing("run-local", "local", "success")]
    assert storage.list_datasets() == [DatasetListing("mine", "local")]
    assert storage.download_run("run-local") == run
    assert storage.download_dataset("mine") == tmp_path / "datasets" / "mine"
    assert storage.download_dataset("absent") is None
    assert storage.restore_history() == []
    with pytest.raises(StorageError, match="no bucket is configured"):
        storage.download_run("run-elsewhere")


# ---- safety and errors -----------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["../etc", "a/b", "..", ".hidden", "", "x/../../y"])
def test_unsafe_run_ids_and_dataset_names_are_refused(tmp_path, bucket, bad):
    storage = Storage.from_settings(settings_for(tmp_path, bucket))
    for call in (storage.upload_run, storage.download_run, storage.upload_dataset, storage.download_dataset):
        with pytest.raises(ValueError):
            call(bad)


def test_keys_that_would_escape_their_folder_and_paths_outside_the_root_are_refused(tmp_path, s3, bucket):
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}datasets/evil/../../../escape.txt", Body=b"x")
    storage = Storage.from_settings(settings_for(tmp_path / "root", bucket))

    with pytest.raises(StorageError, match="outside its folder"):
        storage.download_dataset("evil")
    assert not list(tmp_path.rglob("escape.txt"))
    with pytest.raises(ValueError, match="not inside the data root"):
        storage.upload_tree(tmp_path)


def test_missing_bucket_is_a_storage_error_naming_it(tmp_path, aws_env):
    make_run(tmp_path, "run-1")
    storage = Storage.from_settings(settings_for(tmp_path, "no-such-bucket-here"))
    with pytest.raises(StorageError, match="bucket 'no-such-bucket-here' does not exist"):
        storage.upload_run("run-1")


def test_unreachable_endpoint_is_a_storage_error(tmp_path, aws_env, monkeypatch):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    make_run(tmp_path, "run-1")
    storage = Storage.from_settings(settings_for(tmp_path, "any"))
    started = time.monotonic()
    with pytest.raises(StorageError, match="unreachable"):
        storage.upload_run("run-1")
    assert time.monotonic() - started < 15


def test_stalled_endpoint_fails_in_bounded_time_and_a_retried_upload_completes(tmp_path, s3, bucket, moto_server):
    """The server is SIGSTOPped in the middle of a publish, as a frozen endpoint would be."""
    run = make_run(tmp_path, "run-stall")
    for index in range(4):
        write(run / "submissions" / f"extra-{index}.txt", f"extra {index}")
    storage = Storage.from_settings(settings_for(tmp_path, bucket))  # the production timeouts and retries
    puts: list[str] = []

    def stall_on_third_put(params, **_):
        puts.append(params["Key"])
        if len(puts) == 3:
            os.kill(moto_server.process.pid, signal.SIGSTOP)

    storage.client.meta.events.register("provide-client-params.s3.PutObject", stall_on_third_put)
    started = time.monotonic()
    try:
        with pytest.raises(StorageError, match="unreachable"):
            storage.upload_run("run-stall")
        elapsed = time.monotonic() - started
    finally:
        os.kill(moto_server.process.pid, signal.SIGCONT)  # the server is shared by the whole session
    print(f"stalled upload failed after {elapsed:.1f}s")
    assert len(puts) == 3 and elapsed < 30

    # The task is retried: a new process, a new client.
    retried = Storage.from_settings(settings_for(tmp_path, bucket)).upload_run("run-stall")

    assert set(puts[:2]) <= set(retried.skipped)
    assert retried.uploaded[-1] == f"{PREFIX}runs/run-stall/manifest.json"
    assert bucket_tree(s3, bucket) == {f"{PREFIX}runs/run-stall/{name}": content for name, content in tree(run).items()}

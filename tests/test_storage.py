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

from dataperf_appliance.engine.settings import DEFAULT_S3_PREFIX, Settings
from dataperf_appliance.engine.storage import (DatasetListing, RestoreReport, RunListing, Storage, StorageError,
                                        SyncReport, open_storage)
from dataperf_appliance.interface.ui_support import run_list

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
    """A published run folder with the files of the run layout (docs/architecture.md)."""
    folder = root / "runs" / run_id
    write(folder / "task_setup.yml", f"run: {run_id}\n")
    write(folder / "results.json", json.dumps({"run_id": run_id, "tasks": {"t1": {"fraction_fixes": 0.5}}}))
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


def kms_style_etags(storage: Storage) -> None:
    """Make every ETag the storage's client sees opaque, as SSE-KMS makes them (moto always returns MD5s)."""
    def rewrite(parsed, **_):
        for item in parsed.get("Contents", []):
            item["ETag"] = '"' + hashlib.sha256(item["ETag"].encode()).hexdigest()[:32] + '"'
        if "ETag" in parsed:
            parsed["ETag"] = '"' + hashlib.sha256(parsed["ETag"].encode()).hexdigest()[:32] + '"'

    for operation in ("ListObjectsV2", "HeadObject", "GetObject", "PutObject"):
        storage.client.meta.events.register(f"after-call.s3.{operation}", lambda parsed, **kw: rewrite(parsed))


def test_with_kms_style_etags_unchanged_files_are_neither_uploaded_nor_downloaded_again(tmp_path, bucket):
    """Under SSE-KMS an ETag is not the MD5 of the content: the stored sha256 decides, both ways."""
    old = Storage.from_settings(settings_for(tmp_path / "old", bucket))
    kms_style_etags(old)
    dataset = make_dataset(tmp_path / "old", "kms")
    assert len(old.upload_dataset("kms").uploaded) == 2
    again = old.upload_dataset("kms")
    assert again.uploaded == () and len(again.skipped) == 2

    new = Storage.from_settings(settings_for(tmp_path / "new", bucket))
    kms_style_etags(new)
    new.download_dataset("kms")
    gets = record_calls(new, "GetObject")
    new.download_dataset("kms")  # the next run on the same instance
    assert gets == []
    assert tree(tmp_path / "new" / "datasets" / "kms") == tree(dataset)

    write(tmp_path / "new" / "datasets" / "kms" / "groundtruth" / "dataset_a_train.csv", "ImageID,hv_label\ny,0\n")
    new.download_dataset("kms")  # same size, other content: fetched again
    assert gets == [f"{PREFIX}datasets/kms/groundtruth/dataset_a_train.csv"]
    assert tree(tmp_path / "new" / "datasets" / "kms") == tree(dataset)


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

    assert new.restore_history().restored == (failed.name,)
    assert tree(new_root / "runs" / failed.name) == tree(failed)
    assert new.restore_history() == RestoreReport()
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
    assert storage.restore_history().restored == ()
    assert not (tmp_path / "runs" / "run-half").exists()
    with pytest.raises(StorageError, match="neither on disk nor in"):
        storage.download_run("run-nowhere")


# ---- deleting a dataset -------------------------------------------------------------------------------

def test_deleting_a_dataset_removes_it_on_disk_and_in_the_bucket_and_runs_still_open(tmp_path, s3, bucket):
    from dataperf_appliance.interface.ui_support import run_detail

    settings = settings_for(tmp_path, bucket)
    storage = Storage.from_settings(settings)
    make_dataset(tmp_path, "mine")
    make_dataset(tmp_path, "other")
    run = make_run(tmp_path, "20260101-000000-bbbbbb")
    for name in ("mine", "other"):
        storage.upload_dataset(name)
    storage.upload_run(run.name)

    assert storage.delete_dataset("mine") == 2
    assert not (tmp_path / "datasets" / "mine").exists() and not list((tmp_path / "datasets").glob(".*"))
    assert bucket_tree(s3, bucket, f"{PREFIX}datasets/mine/") == {}
    assert storage.list_datasets() == [DatasetListing("other", "both")]  # the other one untouched
    assert bucket_tree(s3, bucket, f"{PREFIX}runs/{run.name}/") == tree(run)
    # A run needs its own folder only: it opens from disk, and from the bucket on a fresh data root.
    assert run_detail.load_run(settings, run.name).results == {"run_id": run.name,
                                                               "tasks": {"t1": {"fraction_fixes": 0.5}}}
    fresh = settings_for(tmp_path / "fresh", bucket)
    assert run_detail.load_run(fresh, run.name, storage=Storage.from_settings(fresh)).manifest["state"] == "success"
    with pytest.raises(ValueError, match="generated"):
        storage.delete_dataset("digits")
    with pytest.raises(ValueError):
        storage.delete_dataset("../runs")
    # Without a bucket, the folder on disk alone.
    make_dataset(tmp_path, "local-only")
    assert Storage.from_settings(settings_for(tmp_path, None)).delete_dataset("local-only") == 0
    assert not (tmp_path / "datasets" / "local-only").exists()


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
    assert storage.restore_history().restored == ()
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


# ---- a bucket that cannot be trusted ---------------------------------------------------------------

def plant_bad_runs(s3, bucket: str) -> dict[str, str]:
    """Runs with one bad object each (beside a manifest): run id -> what the error names."""
    manifest = json.dumps({"state": "success"}).encode()
    bad = {
        "r-dotdot": ("x/../../escape.txt", b"x", None),
        "r-checksum": ("results.json", b"{}", hashlib.sha256(b"other").hexdigest()),
        "r-long": ("n" * 300 + ".txt", b"x", None),
        "r-nested": ("a", b"file", None),
    }
    for run_id, (name, body, sha256) in bad.items():
        s3.put_object(Bucket=bucket, Key=f"{PREFIX}runs/{run_id}/manifest.json", Body=manifest)
        s3.put_object(Bucket=bucket, Key=f"{PREFIX}runs/{run_id}/{name}", Body=body,
                      Metadata={"sha256": sha256} if sha256 else {})
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}runs/r-nested/a/b", Body=b"under a file")
    return {run_id: name for run_id, (name, _, _) in bad.items()}


def test_one_bad_run_in_the_bucket_is_skipped_and_every_other_run_restored(tmp_path, s3, bucket):
    old = Storage.from_settings(settings_for(tmp_path / "old", bucket))
    good = [make_run(tmp_path / "old", run_id) for run_id in ("r-a-good", "r-z-good")]
    for run in good:
        old.upload_run(run.name)
    bad = plant_bad_runs(s3, bucket)
    root = tmp_path / "new"
    storage = Storage.from_settings(settings_for(root, bucket))

    report = storage.restore_history()

    assert report.restored == ("r-z-good", "r-a-good")  # newest first (a run id starts with its time)
    assert [run_id for run_id, _ in report.skipped] == sorted(bad, reverse=True)
    for run_id, reason in report.skipped:
        assert f"{PREFIX}runs/{run_id}/" in reason and "\n" not in reason
    for run in good:
        assert tree(root / "runs" / run.name) == tree(run)
    assert sorted(p.name for p in (root / "runs").iterdir()) == ["r-a-good", "r-z-good"]  # nothing half-written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "old"]  # nothing outside the data root
    assert storage.restore_history() == RestoreReport(skipped=report.skipped)  # the same again, no error


@pytest.mark.parametrize("run_id", ["r-dotdot", "r-checksum", "r-long", "r-nested"])
def test_opening_a_bad_run_is_a_storage_error_naming_the_key(tmp_path, s3, bucket, run_id):
    name = plant_bad_runs(s3, bucket)[run_id]
    storage = Storage.from_settings(settings_for(tmp_path, bucket))
    with pytest.raises(StorageError, match=f"runs/{run_id}/{name[:20]}"):
        storage.download_run(run_id)
    assert list((tmp_path / "runs").iterdir()) == []


def test_the_runs_page_loads_with_bad_runs_in_the_bucket_and_says_how_many_were_skipped(tmp_path, s3, bucket):
    old = Storage.from_settings(settings_for(tmp_path / "old", bucket))
    old.upload_run(make_run(tmp_path / "old", "r-good").name)
    plant_bad_runs(s3, bucket)
    settings = settings_for(tmp_path / "new", bucket)
    storage = Storage.from_settings(settings)

    restored, notes = run_list.restore_finished(storage)
    collection = run_list.collect_runs(settings, storage=storage, airflow_runs=lambda: [])

    assert restored == ["r-good"]
    assert len(notes) == 1 and notes[0].startswith("4 run(s) in S3 skipped")
    assert {row.run_id for row in collection.rows} == {"r-good", "r-checksum", "r-dotdot", "r-long", "r-nested"}


@pytest.mark.parametrize("results", [{"tasks": {"t1": 0.5}}, {"tasks": {"t1": {"strategies": [1]}}},
                                     {"tasks": {"t1": {"strategies": {"a": 3}}}}, [], "text"])
def test_a_run_whose_files_are_not_as_the_appliance_writes_them_is_listed(tmp_path, results):
    run = make_run(tmp_path, "r-odd")
    write(run / "results.json", json.dumps(results))
    write(run / "manifest.json", json.dumps({"state": "success", "stages": ["not", "a", "mapping"]}))
    rows = run_list.collect_runs(settings_for(tmp_path, None), airflow_runs=lambda: []).rows
    assert [(row.run_id, row.state in {"success", "unreadable"}) for row in rows] == [("r-odd", True)]


# ---- bounded reads from the bucket ----------------------------------------------------------------------------

NESTED_MANIFEST = b"[" * 200_000  # the finding's 200 KB of nested `[`: a RecursionError in json.loads


def test_a_nested_manifest_in_the_bucket_lists_as_unreadable_and_breaks_nothing(tmp_path, s3, bucket):
    from dataperf_appliance.interface.ui_support import compare, run_detail

    old = Storage.from_settings(settings_for(tmp_path / "old", bucket))
    old.upload_run(make_run(tmp_path / "old", "r-good").name)
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}runs/r-nested/manifest.json", Body=NESTED_MANIFEST)
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}runs/r-nested/results.json", Body=b"{}")
    settings = settings_for(tmp_path / "new", bucket)
    storage = Storage.from_settings(settings)

    assert {r.run_id: r.state for r in storage.list_runs()} == {"r-good": "success", "r-nested": "unreadable"}
    restored, notes = run_list.restore_finished(storage)  # what the Runs page does first
    rows = {row.run_id: row for row in run_list.collect_runs(settings, storage=storage, airflow_runs=lambda: []).rows}
    assert (restored, notes) == (["r-good"], [])  # not success: left in the bucket
    assert (rows["r-nested"].state, rows["r-nested"].where) == ("unreadable", "S3")
    assert "manifest.json in S3" in rows["r-nested"].error
    # Opened (the Run page downloads it): unreadable, naming its manifest; Compare's logic does not raise.
    detail = run_detail.load_run(settings, "r-nested", storage=storage)
    assert detail.state == "unreadable" and "r-nested/manifest.json is nested too deep" in detail.unreadable
    runs = [run_detail.load_run(settings, "r-good", storage=storage), detail]
    assert compare.metrics_table(runs) == [] and compare.headline_pivot(runs) == ("fraction_fixes", [])
    assert [row["parameter"] for row in compare.differing_params(runs)] == ["run"]  # the nested one has none
    # The copy on disk lists as unreadable too, with the file named.
    rows = {row.run_id: row for row in run_list.collect_runs(settings, storage=storage, airflow_runs=lambda: []).rows}
    assert rows["r-nested"].state == "unreadable" and "manifest.json" in rows["r-nested"].error
    # At the next start, restore skips it, naming the run and its manifest, and restores the others.
    fresh = Storage.from_settings(settings_for(tmp_path / "fresh", bucket))
    report = fresh.restore_history()
    assert report.restored == ("r-good",)
    assert [(run_id, "manifest.json" in reason) for run_id, reason in report.skipped] == [("r-nested", True)]
    assert sorted(p.name for p in (tmp_path / "fresh" / "runs").iterdir()) == ["r-good"]


def test_a_manifest_over_its_limit_in_the_bucket_is_neither_read_nor_downloaded(tmp_path, s3, bucket, monkeypatch):
    import dataperf_appliance.engine.storage as storage_module

    old = Storage.from_settings(settings_for(tmp_path / "old", bucket))
    run = make_run(tmp_path / "old", "r-big-manifest")
    old.upload_run(run.name)
    size = (run / "manifest.json").stat().st_size
    monkeypatch.setattr(storage_module, "MAX_MANIFEST_BYTES", size - 1)
    storage = Storage.from_settings(settings_for(tmp_path / "new", bucket))
    gets = record_calls(storage, "GetObject")
    assert [r.state for r in storage.list_runs()] == ["unreadable"]
    with pytest.raises(StorageError, match=f"run r-big-manifest .*its manifest.json is {size} bytes, over the "
                                           f"{size - 1} allowed"):
        storage.download_run("r-big-manifest")
    assert gets == [f"{PREFIX}runs/r-big-manifest/manifest.json"]  # its listing's state only; never downloaded
    [(run_id, reason)] = storage.restore_history().skipped
    assert run_id == "r-big-manifest" and f"manifest.json is {size} bytes" in reason
    assert not (tmp_path / "new" / "runs").exists()


def test_a_run_over_its_limit_in_the_bucket_is_not_downloaded(tmp_path, bucket, monkeypatch):
    import dataperf_appliance.engine.storage as storage_module

    old = Storage.from_settings(settings_for(tmp_path / "old", bucket))
    run = make_run(tmp_path / "old", "r-large")
    old.upload_run(run.name)
    size = sum(len(content) for content in tree(run).values())
    monkeypatch.setattr(storage_module, "MAX_RUN_BYTES", size - 1)
    storage = Storage.from_settings(settings_for(tmp_path / "new", bucket))
    with pytest.raises(StorageError, match=f"run r-large in .* is {size:,} bytes, over the {size - 1:,} a run may be"):
        storage.download_run("r-large")
    assert storage.restore_history().skipped[0][0] == "r-large"
    # Whatever the listing says: objects longer than it claimed stop the download at the limit, nothing kept.
    listed = storage._list_objects(f"{PREFIX}runs/r-large/")
    understated = {key: type(obj)(key, 1) for key, obj in listed.items()}
    with pytest.raises(StorageError, match=f"longer than the .* bytes left of its run's {size - 1:,}"):
        storage._download_run("r-large", understated)
    assert list((tmp_path / "new" / "runs").iterdir()) == []
    monkeypatch.setattr(storage_module, "MAX_RUN_BYTES", size)
    assert tree(storage.download_run("r-large")) == tree(run)


def test_restore_stops_when_its_time_is_up_and_leaves_the_older_runs_for_later(tmp_path, bucket, caplog):
    old = Storage.from_settings(settings_for(tmp_path / "old", bucket))
    run_ids = ["20260101-000000-aaaaaa", "20260102-000000-bbbbbb", "20260103-000000-cccccc"]
    for run_id in run_ids:
        old.upload_run(make_run(tmp_path / "old", run_id).name)
    runs_dir = tmp_path / "new" / "runs"
    storage = Storage.from_settings(settings_for(tmp_path / "new", bucket))

    # A clock whose time is up once one run is in place: the newest is restored, the others left for later.
    def one_run_long() -> float:
        return 100.0 if runs_dir.is_dir() and any(not p.name.startswith(".") for p in runs_dir.iterdir()) else 0.0

    report = storage.restore_history(time_budget_s=50, clock=one_run_long)
    assert report.restored == (run_ids[2],) and report.skipped == ()
    assert report.deferred == (run_ids[1], run_ids[0])
    assert f"2 run(s) in {storage.location} left for later" in caplog.text and run_ids[0] in caplog.text
    # Time up halfway through a run (after its first object): that run is dropped whole, and left for later.
    for run_id in run_ids[1:]:
        (runs_dir / run_id).rename(tmp_path / run_id) if (runs_dir / run_id).exists() else None

    def one_object_long() -> float:
        return 100.0 if any(path.is_file() for path in runs_dir.rglob("*")) else 0.0

    report = storage.restore_history(time_budget_s=50, clock=one_object_long)
    assert report.restored == () and report.deferred == (run_ids[2], run_ids[1], run_ids[0])
    assert list(runs_dir.iterdir()) == []  # no half-written run, no hidden download folder
    # A run left for later is downloaded when it is opened.
    assert tree(storage.download_run(run_ids[0])) == tree(tmp_path / "old" / "runs" / run_ids[0])
    # The Runs page's own restore is bounded too: out of time, it says how many it left.
    restored, notes = run_list.restore_finished(storage, time_budget_s=0)
    assert restored == [] and notes == ["2 finished run(s) are still in S3 only: each is brought to disk when "
                                        "opened, the others at the next refresh"]

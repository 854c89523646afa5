"""Sync the data root with S3: ``s3://$APPLIANCE_S3_BUCKET/$APPLIANCE_S3_PREFIX``.

The bucket mirrors the data root, key for path::

    <data root>/datasets/<dataset>/<path>   <prefix>datasets/<dataset>/<path>
    <data root>/runs/<run_id>/<path>        <prefix>runs/<run_id>/<path>
    <data root>/method-envs/<key>/          <prefix>method-envs/<key>.tar.gz (a method's environment, packed)

Hidden names (``.<run_id>.partial`` staging folders, ``.<name>.tmp`` files)
are never uploaded, and the sync only adds or replaces objects: it never
deletes, so the bucket keeps the whole history and a fresh, empty data root
pointed at the same bucket lists and opens every earlier run. The one deletion
is a user's explicit choice on the Datasets page (`delete_dataset`): a run keeps
its own folder (its task_setup.yml, results, plots and submissions), so it still
opens.

Uploads are idempotent, so a failed sync is simply run again (the Airflow task
retries): a file is uploaded only when it is new or its content changed. Every
object carries the file's sha256 in its metadata (``x-amz-meta-sha256``). One
paginated listing of the folder gives each object's size; when the sizes of a
file and its object agree, one HEAD reads the object's sha256, and the two are
the same when the sha256 is. The ETag is never used: under SSE-KMS (the
deployed bucket) and for multipart uploads it is not the content's MD5. The
same check spares a download of a file already on disk. There is no local
index to go stale when the bucket or the data root is replaced.

A run's ``manifest.json`` is uploaded last, so a reader of the bucket that sees
a manifest with state ``success`` sees a complete run. A run is downloaded into
a hidden folder and renamed into place, so a local ``runs/<run_id>/`` is always
complete, whether it was made here or downloaded. The bucket is not trusted:
a key that would leave its folder, a content that does not match its sha256 or
a key the disk cannot hold fails that run's download with a StorageError naming
the key, and `restore_history` skips that run and restores the others.

Reads from the bucket are bounded: a manifest.json is read only up to
`bounded.MAX_MANIFEST_BYTES` and used only when it is a JSON object (else the
run's state is `unreadable`), and a run whose objects add up to more than
`bounded.MAX_RUN_BYTES` is not downloaded. `restore_history`, which runs before
the services start, stops starting downloads after `RESTORE_TIME_BUDGET_S`,
newest runs first; the runs it leaves are downloaded when they are opened or
listed (`download_run`).

Every S3 request fails in bounded time: short connect/read timeouts and
botocore's ``standard`` retry mode (a few attempts, exponential backoff with
jitter, for throttling, 5xx and connection errors). Errors reach the caller as
one type, StorageError. With no bucket set, disk alone is the store and every
sync is a no-op.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import HTTPClientError

from dataperf_appliance.engine.bounded import MAX_MANIFEST_BYTES, MAX_RUN_BYTES, Unreadable, json_object, read_json_object
from dataperf_appliance.config import catalog
from dataperf_appliance.config.names import MAX_RUN_ID_LENGTH, is_safe_name
from dataperf_appliance.engine.methods.environments import ARCHIVE_SUFFIX, ENVIRONMENTS_FOLDER
from dataperf_appliance.engine.runs import MANIFEST, UNREADABLE, check_run_id, staging_dir
from dataperf_appliance.engine.settings import Settings, load_settings

logger = logging.getLogger(__name__)

DATASETS, RUNS = "datasets", "runs"
#: The most keys one DeleteObjects request takes (S3's limit).
DELETE_BATCH = 1000
SHA256_METADATA = "sha256"  # stored as x-amz-meta-sha256

# Bounded failure: a stalled endpoint costs about TOTAL_ATTEMPTS * READ_TIMEOUT_S per request
# (15 s), a PutObject one second more per attempt (botocore waits 1 s for "100 Continue"): 18 s.
# Backoff between attempts is botocore's, under a second for connection errors.
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 5.0
TOTAL_ATTEMPTS = 3

MAX_SINGLE_PUT_BYTES = 5 * 1024**3  # S3's limit for one PutObject
MAX_NAME_BYTES = 255  # the longest file name of Linux file systems (NAME_MAX)
#: How long `restore_history` starts new downloads for: it runs before the services start, whose start the image's
#: health check allows 300 s (and scripts/start.sh 600 s), after Airflow's own setup.
RESTORE_TIME_BUDGET_S = 120.0
_CHUNK = 1024 * 1024


class StorageError(RuntimeError):
    """The store cannot do what was asked: S3 unreachable, bucket missing, access denied, run not found."""


@dataclass(frozen=True)
class SyncReport:
    """What one upload did: the keys uploaded and skipped (unchanged), and the bytes sent."""

    uploaded: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    bytes: int = 0


@dataclass(frozen=True)
class RunListing:
    """A run known to the store. where: "local", "s3" or "both"; state: the manifest's, None if unknown,
    runs.UNREADABLE when the manifest cannot be used."""

    run_id: str
    where: str
    state: str | None = None


@dataclass(frozen=True)
class DatasetListing:
    """A dataset known to the store. where: "local", "s3" or "both"."""

    name: str
    where: str


@dataclass(frozen=True)
class RestoreReport:
    """What `restore_history` did: the runs restored, the runs skipped with the reason of each, and the runs left
    in the bucket for later (its time was up), which are downloaded when opened."""

    restored: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    deferred: tuple[str, ...] = ()


@dataclass(frozen=True)
class _FileDigest:
    size: int
    sha256: str


@dataclass(frozen=True)
class _RemoteObject:
    key: str
    size: int


def open_storage(settings: Settings | None = None) -> Storage:
    """The store of `settings` (default: read from the environment)."""
    return Storage.from_settings(settings)


class Storage:
    """The data root, synced with an S3 bucket when one is configured.

    Thread-safe: the boto3 client is made once, in the constructor, from a
    session of its own.
    """

    def __init__(self, settings: Settings, *, connect_timeout: float = CONNECT_TIMEOUT_S,
                 read_timeout: float = READ_TIMEOUT_S, total_attempts: int = TOTAL_ATTEMPTS) -> None:
        self.settings = settings
        self.bucket = settings.s3_bucket
        self.prefix = settings.s3_prefix
        self.endpoint_url = os.environ.get("AWS_ENDPOINT_URL") or None
        self.client = None
        if self.bucket:
            config = Config(
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                retries={"total_max_attempts": total_attempts, "mode": "standard"},
                # moto and MinIO serve buckets by path, not as virtual hosts.
                s3={"addressing_style": "path" if self.endpoint_url else "auto"},
            )
            # A session of our own: boto3's default session is not safe to share between threads.
            self.client = boto3.session.Session().client("s3", endpoint_url=self.endpoint_url, config=config)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **options) -> Storage:
        """The store of `settings` (default: read from the environment); `options` go to the constructor."""
        return cls(settings or load_settings(), **options)

    @classmethod
    def disk_only(cls, data_root: Path) -> Storage:
        """The store of a data root without a bucket: every sync does nothing."""
        return cls(Settings(data_dir=Path(data_root), s3_bucket=None, s3_prefix=""))

    @property
    def enabled(self) -> bool:
        """True when a bucket is configured; False means disk alone is the store."""
        return self.client is not None

    @property
    def location(self) -> str:
        """Where the bucket is, for messages: ``s3://bucket/prefix`` (and the endpoint when not AWS)."""
        where = f"s3://{self.bucket}/{self.prefix}"
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where

    # ---- upload --------------------------------------------------------------------------------

    def upload_run(self, run_id: str) -> SyncReport:
        """Upload the new or changed files of the published run ``runs/<run_id>/``, manifest.json last."""
        folder = self.settings.runs_dir / check_run_id(run_id)
        if not folder.is_dir():
            raise StorageError(f"run {run_id} is not published at {folder}: nothing to upload")
        return self.upload_tree(folder)

    def upload_dataset(self, name: str) -> SyncReport:
        """Upload the new or changed files of ``datasets/<name>/``."""
        folder = self.settings.datasets_dir / _check_name(name, "dataset name")
        if not folder.is_dir():
            raise StorageError(f"dataset {name} is not on disk at {folder}: nothing to upload")
        return self.upload_tree(folder)

    def upload_tree(self, local_dir: Path) -> SyncReport:
        """Upload the files under `local_dir` (a folder of the data root) that are new or changed.

        Hidden files and folders are skipped; every folder's manifest.json goes
        after all other files. Stops at the first failure (StorageError): what
        was uploaded stays, and running it again uploads only the rest.
        """
        if not self.enabled:
            return SyncReport()
        local_dir = Path(local_dir).resolve()
        relative = self._relative_to_root(local_dir)
        if not local_dir.is_dir():
            raise StorageError(f"{local_dir} is not a folder: nothing to upload")
        key_prefix = self.prefix + (f"{relative.as_posix()}/" if relative.parts else "")
        return self._sync_files(local_dir, key_prefix, _files_to_upload(local_dir))

    def upload_submitted_run(self, run_id: str) -> SyncReport:
        """Copy what was submitted for a run that is not published yet to ``<prefix>runs/<run_id>/``.

        The files of the staging folder ``runs/.<run_id>.partial/`` (its
        task_setup.yml and the user's submission files) are uploaded, never its
        manifest.json: a run without a manifest in the bucket is an incomplete
        upload to every reader (`list_runs` gives it state None, `download_run`
        and `restore_history` leave it alone), so the submitted file is kept
        even if the instance is lost, and `upload_run` completes the same
        folder once the run is published.
        """
        if not self.enabled:
            return SyncReport()
        staging = staging_dir(self.settings.runs_dir / check_run_id(run_id))
        if not staging.is_dir():
            raise StorageError(f"run {run_id} has no staging folder {staging}: nothing to upload")
        files = [path for path in _files_to_upload(staging) if path.name != MANIFEST]
        return self._sync_files(staging, self._key(RUNS, run_id) + "/", files)

    def _sync_files(self, local_dir: Path, key_prefix: str, files: list[Path]) -> SyncReport:
        """Upload those of `files` (under `local_dir`) that are new or changed, to `key_prefix` + their path."""
        remote = self._list_objects(key_prefix)
        uploaded, skipped, sent = [], [], 0
        for path in files:
            key = key_prefix + path.relative_to(local_dir).as_posix()
            digest = _digest(path)
            if self._is_unchanged(digest, remote.get(key)):
                skipped.append(key)
                continue
            self._put(path, key, digest)
            uploaded.append(key)
            sent += digest.size
        report = SyncReport(tuple(uploaded), tuple(skipped), sent)
        logger.info("synced %s to %s: %d uploaded (%d bytes), %d unchanged",
                    local_dir, self.location, len(uploaded), sent, len(skipped))
        return report

    # ---- methods' environments ---------------------------------------------------------------

    def _environment_key(self, key: str) -> str:
        return self._key(ENVIRONMENTS_FOLDER, _check_name(key, "environment key") + ARCHIVE_SUFFIX)

    def has_environment(self, key: str) -> bool:
        """True when the bucket keeps the packed environment `key` (False without a bucket)."""
        if not self.enabled:
            return False
        object_key = self._environment_key(key)
        return object_key in self._list_objects(object_key)

    def upload_environment(self, key: str, archive: Path) -> bool:
        """Keep the packed environment `key` (`archive`) in the bucket unless one is there; True when sent.

        A packed environment is never replaced: the same key is the same requirements, and packing the same
        folder twice does not give the same bytes (the archive's times), so a second upload would add nothing.
        """
        if not self.enabled or self.has_environment(key):  # kept meanwhile by another worker
            return False
        self._put(Path(archive), self._environment_key(key), _digest(Path(archive)))
        logger.info("method environment %s kept in %s", key, self.location)
        return True

    def download_environment(self, key: str, archive: Path) -> bool:
        """Write the packed environment `key` to `archive` when the bucket has it; False when it has not."""
        if not self.has_environment(key):
            return False
        self._get(self._environment_key(key), Path(archive))
        logger.info("method environment %s restored from %s", key, self.location)
        return True

    # ---- listing -------------------------------------------------------------------------------

    def list_runs(self, *, with_state: bool = True) -> list[RunListing]:
        """Every published run on disk or in the bucket, by run id.

        The state comes from the local manifest, or for a run only in the bucket
        from its manifest there (one small GET each; None when it has none yet,
        i.e. its upload is incomplete). `with_state=False` skips those GETs.
        """
        local = _local_children(self.settings.runs_dir)
        remote = self._remote_children(RUNS)
        listings = []
        for run_id in sorted(set(local) | set(remote)):
            state = None
            if with_state:
                state = (_manifest_state(self.settings.runs_dir / run_id / MANIFEST) if run_id in local
                         else self._remote_manifest_state(run_id))
            listings.append(RunListing(run_id, _where(run_id in local, run_id in remote), state))
        return listings

    def list_datasets(self) -> list[DatasetListing]:
        """Every dataset folder on disk or in the bucket, by name."""
        local = _local_children(self.settings.datasets_dir)
        remote = self._remote_children(DATASETS)
        return [DatasetListing(name, _where(name in local, name in remote))
                for name in sorted(set(local) | set(remote))]

    def delete_dataset(self, name: str) -> int:
        """Delete ``datasets/<name>/`` from the bucket, then from disk; the number of objects deleted.

        The bucket first: when it cannot be reached the folder on disk stays and
        the deletion can be tried again. On disk the folder is renamed to a hidden
        name first, so it disappears at once and a failure leaves no half folder
        listed. A generated dataset is refused (it would be made again).
        """
        name = _check_name(name, "dataset name")
        if name in catalog.GENERATED_DATASET_FOLDERS:
            raise ValueError(f"dataset {name} is generated by the appliance, not stored: nothing to delete")
        deleted = 0
        if self.enabled:
            keys = list(self._list_objects(self._key(DATASETS, name) + "/"))
            with self._s3_errors(f"deleting dataset {name}"):
                for start in range(0, len(keys), DELETE_BATCH):
                    batch = [{"Key": key} for key in keys[start:start + DELETE_BATCH]]
                    response = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch,
                                                                                      "Quiet": True})
                    if response.get("Errors"):
                        first = response["Errors"][0]
                        raise StorageError(f"deleting dataset {name}: {len(response['Errors'])} object(s) not "
                                           f"deleted, e.g. {first.get('Key')} ({first.get('Code')})")
                    deleted += len(batch)
        folder = self.settings.datasets_dir / name
        if folder.is_dir():
            doomed = folder.with_name(f".{name}.deleting")
            if doomed.exists():
                shutil.rmtree(doomed)
            folder.rename(doomed)
            shutil.rmtree(doomed)
        logger.info("dataset %s deleted: %d objects from %s, and its folder on disk", name, deleted, self.location)
        return deleted

    # ---- download ------------------------------------------------------------------------------

    def download_run(self, run_id: str) -> Path:
        """The folder of run `run_id`, downloaded from the bucket first if it is not on disk.

        A run on disk is returned as it is (a local ``runs/<run_id>/`` is always
        complete). Otherwise the run is downloaded into a hidden folder and
        renamed into place. Raises StorageError when the run is nowhere, or its
        upload to the bucket is incomplete (no manifest.json there yet).
        """
        final = self.settings.runs_dir / check_run_id(run_id)
        if final.is_dir():
            return final
        if not self.enabled:
            raise StorageError(f"run {run_id} is not on disk at {final} and no bucket is configured")
        objects = self._list_objects(self._key(RUNS, run_id) + "/")
        if not objects:
            raise StorageError(f"run {run_id} is neither on disk nor in {self.location}")
        return self._download_run(run_id, objects)

    def download_dataset(self, name: str) -> Path | None:
        """Bring ``datasets/<name>/`` up to date with the bucket; its folder, or None if the bucket has none of it.

        Only files missing or different on disk are downloaded, each written
        atomically; local files the bucket lacks are kept. Without a bucket:
        the local folder if there is one, else None.
        """
        folder = self.settings.datasets_dir / _check_name(name, "dataset name")
        if not self.enabled:
            return folder if folder.is_dir() else None
        key_prefix = self._key(DATASETS, name) + "/"
        objects = self._list_objects(key_prefix)
        if not objects:
            return None
        count = self._download_objects(objects, key_prefix, folder)
        logger.info("dataset %s: %d files downloaded from %s", name, count, self.location)
        return folder

    def restore_history(self, *, time_budget_s: float = RESTORE_TIME_BUDGET_S,
                        clock: Callable[[], float] = time.monotonic) -> RestoreReport:
        """Download every run in the bucket that is not on disk, each on its own, newest first, for at most
        `time_budget_s` seconds.

        Whole runs: the UI opens any run from disk, and a run folder is always
        complete. Runs whose upload is incomplete (no manifest.json in the
        bucket) are left out; a run that cannot be downloaded (an unsafe key, a
        wrong checksum, a key the disk cannot hold, a manifest that cannot be
        used, over `bounded.MAX_RUN_BYTES` in all) is logged and skipped, and
        the others are restored. When the time is up (checked before each
        object), the run being downloaded is dropped and it and the runs not
        started are left for later, logged: each is downloaded when it is
        opened (`download_run`), or listed on the Runs page if it succeeded.
        Only a failure to list the bucket raises.
        """
        if not self.enabled:
            return RestoreReport()
        deadline = clock() + time_budget_s
        key_prefix = self.prefix + RUNS + "/"
        by_run: dict[str, dict[str, _RemoteObject]] = {}
        for key, obj in self._list_objects(key_prefix).items():
            run_id = key[len(key_prefix):].split("/", 1)[0]
            by_run.setdefault(run_id, {})[key] = obj
        restored, skipped, deferred = [], [], []
        # Newest first (a run id starts with its creation time): when the time is up, the recent history is here.
        for run_id, objects in sorted(by_run.items(), reverse=True):
            if _check_name_or_none(run_id) is None or (self.settings.runs_dir / run_id).is_dir():
                continue
            if self._key(RUNS, run_id, MANIFEST) not in objects:
                logger.warning("run %s in %s has no %s (upload incomplete): not restored",
                               run_id, self.location, MANIFEST)
                continue
            if clock() >= deadline:
                deferred.append(run_id)
                continue
            try:
                # One small GET spares downloading a whole run that would list as unreadable (one over its
                # limit is refused by _download_run, from the listing alone).
                if objects[self._key(RUNS, run_id, MANIFEST)].size <= MAX_MANIFEST_BYTES and \
                        self._remote_manifest_state(run_id) == UNREADABLE:
                    raise StorageError(f"run {run_id}: its {MANIFEST} in {self.location} is not a JSON object as the "
                                       "appliance writes it: not restored")
                self._download_run(run_id, objects, deadline=deadline, clock=clock)
            except _OutOfTime:
                deferred.append(run_id)
                continue
            except StorageError as error:
                logger.error("run %s in %s skipped: %s", run_id, self.location, error)
                skipped.append((run_id, str(error)))
                continue
            restored.append(run_id)
        if deferred:
            logger.warning("%d run(s) in %s left for later, the %.0f s of the restore spent (each is downloaded "
                           "when opened): %s", len(deferred), self.location, time_budget_s, ", ".join(deferred))
        return RestoreReport(tuple(restored), tuple(skipped), tuple(deferred))

    # ---- internals -----------------------------------------------------------------------------

    def _key(self, *parts: str) -> str:
        return self.prefix + "/".join(parts)

    def _relative_to_root(self, local_dir: Path) -> PurePosixPath:
        root = self.settings.data_dir.resolve()
        if not local_dir.is_relative_to(root):
            raise ValueError(f"{local_dir} is not inside the data root {root}")
        relative = PurePosixPath(local_dir.relative_to(root).as_posix())
        if any(part.startswith(".") for part in relative.parts):
            raise ValueError(f"{local_dir} is hidden (a staging or temporary folder): it is never uploaded")
        return relative

    @contextlib.contextmanager
    def _s3_errors(self, action: str) -> Iterator[None]:
        """Turn botocore's errors into StorageError with a message that says what to check."""
        try:
            yield
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code == "NoSuchBucket":
                raise StorageError(f"{action}: bucket {self.bucket!r} does not exist ({self.location})") from error
            if code in {"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
                raise StorageError(f"{action}: access denied to {self.location} ({code}); check the credentials "
                                   "of the standard AWS chain (the instance role on EC2)") from error
            raise StorageError(f"{action}: S3 error {code or 'unknown'} from {self.location}: {error}") from error
        except NoCredentialsError as error:
            raise StorageError(f"{action}: no AWS credentials found in the standard chain") from error
        except (BotoConnectionError, HTTPClientError) as error:
            raise StorageError(f"{action}: S3 endpoint {self.endpoint_url or 'of AWS'} unreachable "
                               f"(gave up after the retries): {error}") from error
        except BotoCoreError as error:
            raise StorageError(f"{action}: {error}") from error

    def _list_objects(self, key_prefix: str) -> dict[str, _RemoteObject]:
        """Every object under `key_prefix` (one paginated listing): key -> size and ETag."""
        objects = {}
        with self._s3_errors(f"listing {key_prefix!r}"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=key_prefix):
                for item in page.get("Contents", []):
                    objects[item["Key"]] = _RemoteObject(item["Key"], item["Size"])
        return objects

    def _remote_children(self, folder: str) -> set[str]:
        """The valid names directly under ``<prefix><folder>/`` in the bucket (one delimited listing)."""
        if not self.enabled:
            return set()
        key_prefix = self._key(folder) + "/"
        names = set()
        with self._s3_errors(f"listing {key_prefix!r}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=key_prefix, Delimiter="/")
            for page in pages:
                for common in page.get("CommonPrefixes", []):
                    name = _check_name_or_none(common["Prefix"][len(key_prefix):].rstrip("/"))
                    if name is not None:
                        names.add(name)
        return names

    def _remote_manifest_state(self, run_id: str) -> str | None:
        """The state in the run's manifest in the bucket: None when it has none, UNREADABLE when it is larger
        than MAX_MANIFEST_BYTES (not read) or not a JSON object."""
        key = self._key(RUNS, run_id, MANIFEST)
        with self._s3_errors(f"reading {key!r}"):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                    return None
                raise
            with contextlib.closing(response["Body"]) as body:
                # One byte more than allowed tells a body longer than its Content-Length said.
                data = b"" if response.get("ContentLength", 0) > MAX_MANIFEST_BYTES else \
                    body.read(MAX_MANIFEST_BYTES + 1)
        if not data or len(data) > MAX_MANIFEST_BYTES:
            return UNREADABLE
        try:
            return _state_of(json_object(data, key))
        except Unreadable:
            return UNREADABLE

    def _is_unchanged(self, digest: _FileDigest, remote: _RemoteObject | None) -> bool:
        """True when the object `remote` holds the content described by `digest`: same size, same stored sha256."""
        if remote is None or remote.size != digest.size:
            return False
        with self._s3_errors(f"reading the metadata of {remote.key!r}"):
            head = self.client.head_object(Bucket=self.bucket, Key=remote.key)
        return head.get("Metadata", {}).get(SHA256_METADATA) == digest.sha256

    def _put(self, path: Path, key: str, digest: _FileDigest) -> None:
        if digest.size > MAX_SINGLE_PUT_BYTES:
            raise StorageError(f"{path} is {digest.size} bytes, above the {MAX_SINGLE_PUT_BYTES} of one S3 upload")
        with self._s3_errors(f"uploading {path.name} to {key!r}"), path.open("rb") as body:
            # botocore rewinds `body` itself before each retry.
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentLength=digest.size,
                                   Metadata={SHA256_METADATA: digest.sha256})

    def _download_run(self, run_id: str, objects: dict[str, _RemoteObject], *, deadline: float | None = None,
                      clock: Callable[[], float] = time.monotonic) -> Path:
        """Download `objects` (one run's) into a hidden folder and rename it into place.

        Refused (StorageError) when the run is over MAX_RUN_BYTES in all or its manifest over
        MAX_MANIFEST_BYTES; _OutOfTime when `deadline` (of `clock`) passes, nothing of the run kept.
        """
        final = self.settings.runs_dir / run_id
        key_prefix = self._key(RUNS, run_id) + "/"
        manifest = objects.get(self._key(RUNS, run_id, MANIFEST))
        if manifest is None:
            raise StorageError(f"run {run_id} in {self.location} has no {MANIFEST}: its upload is incomplete")
        if manifest.size > MAX_MANIFEST_BYTES:
            raise StorageError(f"run {run_id} in {self.location}: its {MANIFEST} is {manifest.size:,} bytes, over "
                               f"the {MAX_MANIFEST_BYTES:,} allowed: not downloaded")
        total = sum(obj.size for obj in objects.values())
        if total > MAX_RUN_BYTES:
            raise StorageError(f"run {run_id} in {self.location} is {total:,} bytes, over the {MAX_RUN_BYTES:,} a "
                               "run may be: not downloaded")
        self.settings.runs_dir.mkdir(parents=True, exist_ok=True)
        # A folder of its own per download: two sessions may open the same run at once.
        download = Path(tempfile.mkdtemp(prefix=f".{run_id}.download-", dir=self.settings.runs_dir))
        try:
            self._download_objects(objects, key_prefix, download, max_bytes=MAX_RUN_BYTES, deadline=deadline,
                                   clock=clock)
            try:
                os.rename(download, final)
            except OSError as error:
                if not final.is_dir():
                    raise StorageError(f"run {run_id}: cannot move its download into place at {final}: "
                                       f"{error.strerror or error}") from error
                # Another download of the same run won the race: use its copy.
        finally:
            shutil.rmtree(download, ignore_errors=True)
        logger.info("run %s downloaded from %s", run_id, self.location)
        return final

    def _download_objects(self, objects: dict[str, _RemoteObject], key_prefix: str, dest: Path, *,
                          max_bytes: int | None = None, deadline: float | None = None,
                          clock: Callable[[], float] = time.monotonic) -> int:
        """Write each object under `key_prefix` to its path under `dest` unless that file is there; the count.

        With `max_bytes`, the objects written may add up to that many bytes (StorageError past it, whatever
        the listing said); with `deadline` (of `clock`), _OutOfTime once it has passed, before the next object.
        """
        written, left = 0, max_bytes
        for key, obj in sorted(objects.items(), key=lambda item: _manifest_last(item[0])):
            relative = _safe_relative_path(key[len(key_prefix):], key)
            if relative is None:
                continue
            if deadline is not None and clock() >= deadline:
                raise _OutOfTime(key)
            path = dest / relative
            with _disk_errors(key):
                if path.is_file() and self._is_unchanged(_digest(path), obj):
                    continue
                size = self._get(key, path, max_bytes=left)
            if left is not None:
                left -= size
            written += 1
        return written

    def _get(self, key: str, path: Path, *, max_bytes: int | None = None) -> int:
        """Download one object to `path` through a hidden temporary file; check its sha256 when it has one.

        Its size; StorageError, nothing written, when it is longer than `max_bytes`.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
        try:
            sha256, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as out, self._s3_errors(f"downloading {key!r}"):
                response = self.client.get_object(Bucket=self.bucket, Key=key)
                for chunk in response["Body"].iter_chunks(_CHUNK):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        response["Body"].close()
                        raise StorageError(f"downloading {key!r}: longer than the {max_bytes:,} bytes left of "
                                           f"its run's {MAX_RUN_BYTES:,}")
                    sha256.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())  # on disk before the rename makes it the file
            expected = response.get("Metadata", {}).get(SHA256_METADATA)
            if expected and expected != sha256.hexdigest():
                raise StorageError(f"downloading {key!r}: content does not match its sha256 {expected}")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size


class _OutOfTime(Exception):
    """A download stopped because its deadline passed (the key it would have fetched next); not a failure."""


@contextlib.contextmanager
def _disk_errors(key: str) -> Iterator[None]:
    """Turn a filesystem error while writing the object `key` to disk into a StorageError naming the key."""
    try:
        yield
    except OSError as error:
        raise StorageError(f"downloading {key!r}: it cannot be written to disk: {error.strerror or error}") from error


# ---- helpers -----------------------------------------------------------------------------------

def _check_name(name: str, what: str) -> str:
    """`name` if it is safe as one folder name and one key segment (the rule of run ids), else ValueError."""
    try:
        return check_run_id(name)
    except (ValueError, TypeError):
        raise ValueError(f"{what} {name!r} must be 1-128 of A-Z a-z 0-9 . _ - and not start with . _ or -") from None


def _check_name_or_none(name: str) -> str | None:
    return name if is_safe_name(name, max_length=MAX_RUN_ID_LENGTH) else None


def _where(local: bool, remote: bool) -> str:
    return "both" if local and remote else "local" if local else "s3"


def _local_children(folder: Path) -> set[str]:
    """The valid, visible folder names directly under `folder` (staging and download folders are hidden)."""
    if not folder.is_dir():
        return set()
    return {p.name for p in folder.iterdir() if p.is_dir() and _check_name_or_none(p.name) is not None}


def _manifest_state(path: Path) -> str | None:
    """The state in the manifest at `path`: None when there is none, UNREADABLE when it cannot be used."""
    try:
        return _state_of(read_json_object(path, MAX_MANIFEST_BYTES))
    except FileNotFoundError:
        return None
    except (OSError, Unreadable):
        return UNREADABLE


def _state_of(manifest: dict) -> str | None:
    """A manifest's state: None when it has none, UNREADABLE when it is not text."""
    state = manifest.get("state")
    return state if state is None or isinstance(state, str) else UNREADABLE


def _manifest_last(key_or_path: str) -> tuple[bool, str]:
    return PurePosixPath(key_or_path).name == MANIFEST, key_or_path


def _files_to_upload(local_dir: Path) -> list[Path]:
    """The visible regular files under `local_dir` (hidden names pruned at every level), manifest.json last."""
    files = []
    for folder, subfolders, names in os.walk(local_dir):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        files.extend(Path(folder) / name for name in names if not name.startswith("."))
    files = [path for path in files if path.is_file()]
    return sorted(files, key=lambda path: _manifest_last(path.relative_to(local_dir).as_posix()))


def _safe_relative_path(relative_key: str, key: str) -> PurePosixPath | None:
    """The path a key stands for in its folder: None to skip (folder markers, hidden names); StorageError if unsafe."""
    if relative_key == "" or relative_key.endswith("/"):
        return None
    parts = relative_key.split("/")
    if any(part in {"", ".", ".."} or "\\" in part or "\0" in part for part in parts):
        raise StorageError(f"refusing to download {key!r}: it would write outside its folder")
    if any(len(part.encode()) > MAX_NAME_BYTES for part in parts):
        raise StorageError(f"refusing to download {key!r}: a name in it is longer than {MAX_NAME_BYTES} bytes")
    if any(part.startswith(".") for part in parts):
        return None
    return PurePosixPath(*parts)


def _digest(path: Path) -> _FileDigest:
    """Size and sha256 of a file, in one read."""
    sha256, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha256.update(chunk)
            size += len(chunk)
    return _FileDigest(size, sha256.hexdigest())

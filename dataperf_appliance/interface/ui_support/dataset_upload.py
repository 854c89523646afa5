"""Checking an uploaded DataPerf dataset before it is stored, and storing it.

A dataset arrives as one zip of its folder (the way a folder travels through a
browser). It is unpacked into a hidden folder beside ``<data root>/datasets/``,
checked there with the same readers a run uses, and only when every file
passes is it renamed into place as ``datasets/<name>/`` and uploaded to S3. A
refused upload leaves nothing behind, and says why.

The archive is untrusted: its size, its packing ratio, every member's path and
every parquet footer are checked before anything is unpacked or read, and
the unpacking and checking run in a child process with a memory and a time
limit (bounded.py), so no upload can exhaust the app's memory.

The layouts recognized are the tracks' (`Track.dataset_folder`, in
dataperf_appliance/tracks/: the DataPerf formats of dataperf-formats.md).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from dataperf_appliance.engine.bounded import BoundedRunError, run_bounded
from dataperf_appliance.engine.settings import Settings
from dataperf_appliance.config import catalog
from dataperf_appliance.config.names import MAX_NAME_LENGTH, SAFE_NAME_RULE, is_safe_name
from dataperf_appliance.engine.upload_limits import MAX_ARCHIVE_BYTES

MAX_UNPACKED_BYTES = 2 * 1024**3
MAX_FILES = 20_000
MAX_RATIO = 200  # unpacked / packed size of the whole archive: more is a zip bomb, not a dataset
RATIO_FREE_BYTES = 2**20  # an archive that unpacks to less is small whatever its ratio
MAX_NAME_BYTES = 255  # the longest file name of Linux file systems (NAME_MAX)
_LAYOUT_FOLDERS = {"embeddings", "data", "examples", "test_sets", "train_sets", "labels"}
_SKIPPED = ("__MACOSX/", ".DS_Store")


@dataclass
class DatasetCheck:
    """The outcome of an upload: ok with its kind and tasks, or refused with every reason found."""

    name: str
    kind: str | None = None
    tasks: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    stored_at: Path | None = None
    synced: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_name(name: str, existing: set[str]) -> list[str]:
    """Problems of a new dataset's name: unsafe, reserved for generated data, or taken."""
    if not is_safe_name(name):
        return [f"the name {name!r} is not usable: 1-{MAX_NAME_LENGTH} characters; {SAFE_NAME_RULE}"]
    if name in catalog.GENERATED_DATASET_FOLDERS:
        return [f"{name!r} is the name of a generated dataset; choose another"]
    if name in existing:
        return [f"a dataset named {name!r} exists already (on disk or in S3); choose another name"]
    return []


# ---- unpacking ------------------------------------------------------------------------------------

def _member_path(info: zipfile.ZipInfo) -> PurePosixPath | None:
    """The safe relative path of a zip member; None to skip it; ValueError when it would leave the folder."""
    name = info.filename
    if not name:
        raise ValueError("a zip member without a name")
    if info.is_dir() or name.startswith(_SKIPPED) or PurePosixPath(name).name in _SKIPPED:
        return None
    if "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise ValueError(f"{name!r}: an absolute or Windows path; the zip must hold relative paths")
    parts = PurePosixPath(name).parts
    if any(part in ("..", ".") for part in parts):
        raise ValueError(f"{name!r}: a path with '..' would leave the dataset folder")
    if any(len(part.encode()) > MAX_NAME_BYTES for part in parts):
        raise ValueError(f"{name[:60]!r}...: a name longer than {MAX_NAME_BYTES} bytes")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ValueError(f"{name!r}: a symbolic link; the zip must hold plain files")
    if not parts or any(part.startswith(".") for part in parts):
        return None
    return PurePosixPath(*parts)


def unpack(data: bytes | Path, target: Path) -> list[str]:
    """Unpack a zip (its bytes, or its file) into `target` (safely: no escape, bounded size); the paths written.

    A single top folder that wraps everything (the zip of a folder) is removed.
    Raises ValueError with the reason when the archive is not acceptable or
    cannot be written (a full disk), naming the member.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        raise ValueError("the file is not a zip archive; zip the dataset folder and upload the .zip") from None
    with archive:
        members = []
        for info in archive.infolist():
            if info.flag_bits & 0x1:
                raise ValueError(f"{info.filename!r} is encrypted")
            path = _member_path(info)
            if path is not None:
                members.append((info, path))
        if not members:
            raise ValueError("the zip holds no files")
        if len(members) > MAX_FILES:
            raise ValueError(f"the zip holds {len(members):,} files; at most {MAX_FILES:,}")
        total = sum(info.file_size for info, _ in members)
        if total > MAX_UNPACKED_BYTES:
            raise ValueError(f"the zip unpacks to {total:,} bytes; at most {MAX_UNPACKED_BYTES:,}")
        packed = sum(info.compress_size for info, _ in members)
        if total > RATIO_FREE_BYTES and total > MAX_RATIO * packed:
            raise ValueError(f"the zip unpacks {total / max(packed, 1):,.0f} times larger than it is packed "
                             f"(at most {MAX_RATIO}): refused as a zip bomb")
        tops = {path.parts[0] for _, path in members}
        strip = (len(tops) == 1 and all(len(path.parts) > 1 for _, path in members)
                 and next(iter(tops)) not in _LAYOUT_FOLDERS)
        written = []
        for info, path in members:
            relative = PurePosixPath(*path.parts[1:]) if strip else path
            destination = target / relative
            try:
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, open(destination, "xb") as sink:
                    remaining = info.file_size
                    while chunk := source.read(min(1024 * 1024, remaining + 1)):
                        remaining -= len(chunk)
                        if remaining < 0:
                            raise ValueError(f"{info.filename!r} is larger than the zip says")
                        sink.write(chunk)
            except FileExistsError:
                raise ValueError(f"{info.filename!r}: a second file, or a folder, of the same name") from None
            except OSError as error:  # a full disk, a file where a folder should be
                raise ValueError(f"{info.filename!r} cannot be written: {error.strerror or error}") from None
            except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as error:
                raise ValueError(f"{info.filename!r} cannot be unpacked: {error}") from None
            written.append(relative.as_posix())
    return sorted(written)


# ---- checking ---------------------------------------------------------------------------------------

def check_folder(folder: Path, check: DatasetCheck) -> None:
    """Recognize the dataset's layout (the first track in `TRACKS` whose layout it is) and read every file of
    it; its kind (the track), tasks and problems go to `check`."""
    from dataperf_appliance.tracks import TRACKS

    if not any(folder.rglob("*.parquet")):
        check.problems.append("no parquet file: a DataPerf dataset has its embeddings in parquet files "
                              "(debugging: embeddings/<data_id>_train_<noise>_<size>.parquet; selection: a "
                              "candidate pool with ImageID and embedding)")
        return
    for track in TRACKS.values():
        found = track.dataset_folder(folder) if track.dataset_folder else None
        if found is not None:
            check.kind, check.tasks = track.name, found.tasks
            check.problems += found.problems
            return
    check.problems.append("the files are in no track's layout")


# ---- the whole upload ---------------------------------------------------------------------------------

def unpack_and_check(name: str, archive: Path, work: Path) -> DatasetCheck:
    """Unpack the zip file `archive` into `work` and check every file: the untrusted part of an upload."""
    check = DatasetCheck(name=name)
    try:
        check.files = unpack(archive, work)
    except ValueError as error:
        check.problems.append(str(error))
        return check
    check_folder(work, check)
    return check


def _remove(work: Path | None, archive: Path | None) -> None:
    """Remove what an upload wrote (its hidden folder and zip), whatever is left of them."""
    if work is not None:
        shutil.rmtree(work, ignore_errors=True)
    if archive is not None:
        archive.unlink(missing_ok=True)


def existing_datasets(settings: Settings, storage=None) -> set[str]:
    names = set()
    if settings.datasets_dir.is_dir():
        names |= {p.name for p in settings.datasets_dir.iterdir() if p.is_dir() and not p.name.startswith(".")}
    if storage is not None and storage.enabled:
        names |= {listing.name for listing in storage.list_datasets()}
    return names


def upload_dataset(name: str, data: bytes, settings: Settings, *, storage=None) -> DatasetCheck:
    """Check the zip `data` as dataset `name`; if it passes, store it under datasets/ and upload it to S3.

    Returns the check: `ok` with `stored_at` set, or the problems that refused
    it (nothing is stored then, also when S3 cannot be listed).
    """
    from dataperf_appliance.engine.storage import StorageError

    check = DatasetCheck(name=name)
    try:
        existing = existing_datasets(settings, storage)
    except StorageError as error:
        check.problems.append(f"S3 cannot be listed, so the name cannot be checked against it: {error}")
        return check
    check.problems += check_name(name, existing)
    if len(data) > MAX_ARCHIVE_BYTES:
        check.problems.append(f"the zip has {len(data):,} bytes; at most {MAX_ARCHIVE_BYTES:,}")
    if check.problems:
        return check
    work = archive = None
    try:
        settings.datasets_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".upload-{name}-", dir=settings.datasets_dir))
        archive = work.parent / f"{work.name}.zip"
        archive.write_bytes(data)
    except OSError as error:
        check.problems.append(f"the upload cannot be written to {settings.datasets_dir}: {error.strerror or error}")
        _remove(work, archive)
        return check
    try:
        try:
            check = run_bounded(unpack_and_check, name, archive, work)
        except BoundedRunError as error:
            check.problems.append(f"the dataset cannot be checked: {error}")
        if check.problems:
            return check
        final = settings.datasets_dir / name
        try:
            os.chmod(work, 0o755)
            os.rename(work, final)
        except OSError as error:
            check.problems.append(f"a dataset named {name!r} appeared meanwhile; choose another name"
                                  if final.exists() else f"{final} cannot be stored: {error.strerror or error}")
            return check
        check.stored_at = final
    finally:
        _remove(work, archive)
    if storage is not None and storage.enabled:
        try:
            storage.upload_dataset(name)
            check.synced = True
        except StorageError as error:
            check.warnings.append(f"stored on disk, but not uploaded to S3: {error}")
    return check


def dataset_rows(settings: Settings, storage=None) -> tuple[list[dict], list[str]]:
    """Every dataset: generated ones, folders on disk and in S3, with kind, tasks and where; and notes."""
    from dataperf_appliance.engine.datasets import list_datasets

    notes = []
    where: dict[str, str] = {}
    if storage is not None and storage.enabled:
        from dataperf_appliance.engine.storage import StorageError

        try:
            where = {listing.name: listing.where for listing in storage.list_datasets()}
        except StorageError as error:
            notes.append(f"S3 could not be listed: {error}")
    rows = []
    for item in list_datasets(settings.data_dir):
        name = item["name"]
        local = (settings.datasets_dir / name).is_dir()
        rows.append({"dataset": name, "kind": item["kind"],
                     "tasks": ", ".join(item["tasks"]),
                     "where": _where_label(where.get(name), local, item["kind"]),
                     "description": item["description"] if item["kind"] != "folder" else ""})
    listed = {row["dataset"] for row in rows}
    for name, place in sorted(where.items()):
        if name not in listed and name not in catalog.GENERATED_DATASET_FOLDERS:
            rows.append({"dataset": name, "kind": "folder", "tasks": "", "where": "S3",
                         "description": "in S3 only: brought to disk by the first run that uses it"})
    return rows, notes


def _where_label(s3: str | None, local: bool, kind: str) -> str:
    if s3 == "both" or (s3 == "s3" and local):
        return "disk + S3"
    if s3 == "s3":
        return "S3"
    if local:
        return "disk"
    return "generated on demand" if kind != "folder" else "disk"


def deletable_datasets(rows: list[dict]) -> list[str]:
    """The datasets of `dataset_rows` a user may delete: the stored folders (not the generated ones)."""
    return [row["dataset"] for row in rows if row["kind"] == "folder"]


def delete_dataset(name: str, settings: Settings, *, storage=None) -> str:
    """Delete the dataset folder `name` in S3 (when a bucket is set) and on disk; a sentence saying what was
    deleted. Runs that used it keep their own folders. Raises ValueError for a name that is not a stored
    dataset, StorageError when the bucket cannot be reached (then nothing on disk was deleted)."""
    from dataperf_appliance.engine.storage import Storage

    store = storage if storage is not None else Storage.disk_only(settings.data_dir)
    objects = store.delete_dataset(name)
    where = f"on disk and {objects} object(s) in S3" if store.enabled else "on disk"
    return f"Deleted dataset **{name}** {where}. Runs that used it still open; their official-format export needs it."
